"""Secrets and PII (reliability F15): after a full run with faults, look everywhere.

Events are recorded through ``track()`` with raw emails and phone numbers, sent to the real
sandbox through every kind of trouble, and then the whole database, every log record of
every logger at DEBUG, and the HTML of every admin page are searched for the access tokens
and the raw PII.  Reprs, exceptions and Django's error reports are checked too.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import pkgutil
import traceback
from importlib import import_module

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from pinterest_capi import client, crypto, delivery, track
from pinterest_capi.exceptions import TokenDecryptionError
from pinterest_capi.models import AdAccount, DeliveryAttempt, EventStatus, OutboxEvent
from pinterest_capi.sandbox import Fault
from tests.conftest import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN

pytestmark = pytest.mark.django_db

SECOND_ID, SECOND_TOKEN = "549755885176", "pina_sandbox_TOKEN_second"
WRONG_TOKEN = "pina_WRONG_token_typed_by_someone_7731"
ADMIN_TOKEN = "pina_ADMIN_entered_TOKEN_5521"

PEOPLE = {
    "demo": [
        ("Secret.Buyer+42@Example.com", "+44 20 7946 0999"),
        ("ANOTHER.Shopper@Example.co.uk", "020 7946 0123"),
    ],
    "other": [("Hidden.Customer@Example.org", "+1 (415) 555-0134")],
}
# Each raw phone number in the forms it might leak in: as written, E.164, digits only.
PHONE_FORMS = {
    "+44 20 7946 0999": ["+442079460999", "442079460999", "2079460999"],
    "020 7946 0123": ["+442079460123", "442079460123", "02079460123", "2079460123"],
    "+1 (415) 555-0134": ["+14155550134", "14155550134", "4155550134", "(415) 555-0134"],
}


def secret_needles() -> list[str]:
    """Everything that must appear nowhere; compared case-insensitively."""
    needles = [SANDBOX_TOKEN, SECOND_TOKEN, WRONG_TOKEN, ADMIN_TOKEN]
    for people in PEOPLE.values():
        for email, phone in people:
            needles += [email, email.split("@")[0], phone, *PHONE_FORMS[phone]]
    return needles


def leaks(haystack: str) -> list[str]:
    low = haystack.lower()
    return [n for n in secret_needles() if n.lower() in low]


class EverythingHandler(logging.Handler):
    """Keeps every record fully formatted: message, arguments, extras, exception, stack."""

    STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message"}

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in vars(record).items() if k not in self.STANDARD}
        self.texts.append(f"{self.format(record)} args={record.args!r} extra={extras!r}")


@pytest.fixture
def all_logs(caplog):
    """Every logger at DEBUG into one handler (and caplog), restored afterwards."""
    handler = EverythingHandler()
    root = logging.getLogger()
    saved = []
    loggers = [root] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        saved.append((lg, lg.level, lg.disabled))
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
        if lg is root or not lg.propagate:
            lg.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield handler
    finally:
        for lg, level, disabled in saved:
            lg.setLevel(level)
            lg.disabled = disabled
            lg.removeHandler(handler)


def dump_database() -> tuple[str, int, int]:
    """Every row of every table, via introspection and ``SELECT *``: works on both backends.

    Returns (text, tables, rows).  Bytes (PostgreSQL bytea, SQLite blobs) are decoded too.
    """
    parts, tables, rows = [], 0, 0
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            tables += 1
            cursor.execute(f"SELECT * FROM {qn(table)}")  # noqa: S608 - names from the catalogue
            for row in cursor.fetchall():
                rows += 1
                cells = [
                    bytes(v).decode("latin-1") if isinstance(v, (bytes, memoryview)) else str(v)
                    for v in row
                ]
                parts.append(f"{table}\t" + "\t".join(cells))
    if connection.vendor == "sqlite":  # the engine's own dump as well, schema included
        parts.extend(connection.connection.iterdump())
    return "\n".join(parts), tables, rows


def admin_pages(admin_client) -> dict[str, str]:
    """The HTML of every admin page of the app: index, lists, each change/history page, add."""
    urls = [reverse("admin:index"), reverse("admin:app_list", args=["pinterest_capi"])]
    for model in (AdAccount, OutboxEvent, DeliveryAttempt):
        name = f"admin:pinterest_capi_{model._meta.model_name}"
        urls.append(reverse(f"{name}_changelist"))
        for pk in model.objects.values_list("pk", flat=True):
            urls += [reverse(f"{name}_change", args=[pk]), reverse(f"{name}_history", args=[pk])]
    urls.append(reverse("admin:pinterest_capi_adaccount_add"))
    urls.append(reverse("admin:pinterest_capi_adaccount_changelist") + "?q=demo")
    urls.append(reverse("admin:pinterest_capi_outboxevent_changelist") + "?status=failed")
    pages = {}
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        pages[url] = response.content.decode()
    return pages


def run_everything_with_faults(account, second_account, sandbox, admin_client) -> None:
    """Record through track(), send through 401/500/429/partial/drop, fix, repeat until done."""
    tokens = {account.pk: SANDBOX_TOKEN, second_account.pk: SECOND_TOKEN}
    for tenant, people in PEOPLE.items():
        for n, (email, phone) in enumerate(people):
            user = {"em": email, "ph": phone, "client_ip_address": "203.0.113.9"}
            track(
                "checkout",
                tenant=tenant,
                user_data=user,
                custom_data={"currency": "GBP", "value": "42.00", "order_id": f"{tenant}-{n}"},
            )
            track("add_to_cart", tenant=tenant, user_data=user, custom_data={"currency": "GBP"})
            track("signup", tenant=tenant, user_data=user)
    # A mistyped token that Pinterest refuses, before the faults.
    second_account.set_token(WRONG_TOKEN)
    second_account.save()
    faults = [
        sandbox.faults.add(Fault(status=401, times=1, ad_account_id=SANDBOX_ACCOUNT_ID)),
        sandbox.faults.add(Fault(status=500, times=1)),
        sandbox.faults.add(Fault(status=429, retry_after="1", times=1)),
        sandbox.faults.add(
            Fault(event_status={0: "failed"}, message="Invalid value (test)", times=1)
        ),
        sandbox.faults.add(Fault(drop=True, times=1)),
    ]
    for _round in range(30):
        delivery.flush(until_empty=True)
        open_rows = OutboxEvent.objects.exclude(status__in=[EventStatus.SENT, EventStatus.FAILED])
        if not open_rows.exists() and all(f.fired for f in faults):
            break
        AdAccount.objects.update(paused_until=None)
        for acct in AdAccount.objects.exclude(auth_error=""):
            acct.set_token(tokens[acct.pk])
            acct.save()
    else:
        pytest.fail("the outbox did not drain")
    assert [f.fired for f in faults] == [1] * len(faults)

    # A token typed into the admin's write-only field (a real POST), then used.
    sandbox.add_account(SANDBOX_ACCOUNT_ID, ADMIN_TOKEN)
    page = reverse("admin:pinterest_capi_adaccount_change", args=[account.pk])
    response = admin_client.post(
        page,
        {
            "tenant": account.tenant,
            "name": account.name,
            "ad_account_id": account.ad_account_id,
            "access_token": ADMIN_TOKEN,
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    email, phone = PEOPLE["demo"][0]
    track("lead", tenant="demo", user_data={"em": email, "ph": phone})
    delivery.flush(until_empty=True)


def test_tokens_and_raw_pii_appear_nowhere_after_a_full_run(
    account, second_account, sandbox, admin_client, all_logs, caplog
):
    run_everything_with_faults(account, second_account, sandbox, admin_client)

    outcomes = set(DeliveryAttempt.objects.values_list("outcome", flat=True))
    assert {"auth_error", "server_error", "rate_limited", "partial", "connection_error"} <= outcomes
    assert OutboxEvent.objects.filter(status=EventStatus.FAILED).count() == 1
    assert sandbox.ledger.requests(ad_account_id=SANDBOX_ACCOUNT_ID)[-1]["status_code"] == 200
    account.refresh_from_db()
    assert account.get_token() == ADMIN_TOKEN  # the admin's token is the one stored and used

    dump, tables, rows = dump_database()
    pages = admin_pages(admin_client)
    html = "\n".join(pages.values())
    logs = "\n".join(all_logs.texts) + "\n" + caplog.text
    logs += "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    print(
        f"\nF15 evidence: database {len(dump):,} chars ({tables} tables, {rows} rows); "
        f"logs {len(all_logs.texts)} records, {len(logs):,} chars; "
        f"admin {len(pages)} pages, {len(html):,} chars"
    )

    # The searches see real content (a search of nothing proves nothing).
    hashed_email = hashlib.sha256(b"secret.buyer+42@example.com").hexdigest()
    assert hashed_email in dump and account.token_ciphertext in dump
    assert "Invalid value (test)" in dump and "django_admin_log" in dump
    assert any("paused" in t for t in all_logs.texts)  # delivery's warning after the 401
    assert any(r.name.startswith("pinterest_capi.sandbox") for r in caplog.records)
    assert "…5521" in html and "Invalid value (test)" in html and hashed_email in html
    assert len(all_logs.texts) > 20 and len(pages) > 20

    assert leaks(dump) == [], "in the database"
    assert leaks(logs) == [], "in the logs"
    for url, page in pages.items():
        assert leaks(page) == [], url


def test_reprs_results_and_decryption_errors_hold_no_token(account, sandbox, settings):
    assert leaks(repr(account) + str(account)) == []
    body = b'{"data":[]}'
    refused = client.post_events(SANDBOX_ACCOUNT_ID, WRONG_TOKEN, body)
    accepted = client.post_events(SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN, body)
    tags = client.get_conversion_tags(SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN)
    assert refused.status_code == 401 and accepted.status_code in (200, 400, 422)
    for result in (refused, accepted, tags):
        assert leaks(repr(result) + str(result) + result.message + result.excerpt) == []

    ciphertext = account.token_ciphertext
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
    }
    for attempt in (account.get_token, lambda: crypto.decrypt(ciphertext)):
        with pytest.raises(TokenDecryptionError) as err:
            attempt()
        exc = err.value
        text = repr(exc) + str(exc) + repr(exc.args)
        text += "".join(traceback.format_exception(exc))
        assert exc.__cause__ is None and exc.__suppress_context__
        assert leaks(text) == [] and ciphertext not in text
    with pytest.raises(TokenDecryptionError) as err:
        crypto.rotate(ciphertext)
    assert ciphertext not in repr(err.value) + str(err.value)


def _functions(module):
    """Module-level functions and methods of classes defined in ``module``."""
    for name, obj in vars(module).items():
        if inspect.isfunction(obj) and obj.__module__ == module.__name__:
            yield name, obj
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            for attr, member in vars(obj).items():
                member = getattr(member, "__func__", member)
                if inspect.isfunction(member):
                    yield f"{name}.{attr}", member


def _sensitive_names(func) -> tuple[str, ...] | None:
    """How Django recognises the decorator: its frame is a function named
    ``sensitive_variables_wrapper``, whose closure holds the names (``func.sensitive_variables``
    is only set on the first call)."""
    if func.__code__.co_name != "sensitive_variables_wrapper":
        return None
    return tuple(inspect.getclosurevars(func).nonlocals["variables"])


def test_token_holding_functions_of_client_and_delivery_are_sensitive_variables():
    modules = [client, crypto, delivery]
    if hasattr(delivery, "__path__"):  # delivery became a package
        modules += [
            import_module(info.name)
            for info in pkgutil.walk_packages(delivery.__path__, delivery.__name__ + ".")
        ]
    holders = {}
    for module in modules:
        for name, func in _functions(module):
            code = inspect.unwrap(func).__code__
            held = {"token", "plaintext"} & set(code.co_varnames)
            if held:
                holders[f"{module.__name__}.{name}"] = (func, held)
    names = set(holders)
    assert {"pinterest_capi.client.post_events", "pinterest_capi.client._request"} <= names
    assert "pinterest_capi.crypto.encrypt" in names
    assert any(".delivery" in n for n in names), names  # the cycle that calls get_token()
    for name, (func, held) in holders.items():
        marked = _sensitive_names(func)
        assert marked is not None and held <= set(marked), f"{name} holds {held} unmarked"
    # The Authorization header is set by an auth object whose repr hides the token.
    assert "token" in _sensitive_names(client._request)
    assert "pina" not in repr(client._BearerAuth("pina_secret"))


def test_an_error_report_from_inside_the_client_stars_the_token(settings):
    """A real exception inside client._request, reported the way Django mails a 500."""
    settings.DEBUG = False
    with pytest.raises(TypeError) as err:
        client.post_events(SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN, 12345)  # not bytes
    report = ExceptionReporter(None, err.type, err.value, err.tb).get_traceback_text()
    assert "_request" in report and "********" in report
    assert leaks(report) == []


def test_a_bad_api_base_url_is_an_error_value_not_an_exception_with_the_token(settings):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "API_BASE_URL": "http://127.0.0.1:80a/v5"}
    result = client.post_events(SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN, b'{"data":[]}')
    assert result.error == "invalid_url" and result.maybe_sent is False
    assert "API_BASE_URL" in result.message
    assert leaks(repr(result)) == []


def test_an_admin_500_while_saving_a_token_does_not_report_it(admin_user, settings):
    settings.DEBUG = False
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "ENCRYPTION_KEYS": []}  # save fails
    browser = Client(raise_request_exception=False)
    browser.force_login(admin_user)
    response = browser.post(
        reverse("admin:pinterest_capi_adaccount_add"),
        {"tenant": "t", "name": "n", "ad_account_id": "123", "access_token": ADMIN_TOKEN},
    )
    assert response.status_code == 500
    reporter = ExceptionReporter(response.wsgi_request, *response.exc_info)
    assert leaks(reporter.get_traceback_text() + reporter.get_traceback_html()) == []
