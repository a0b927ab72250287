"""Key rotation (reliability F12): ``pinterest_capi_rotate_keys`` against the real sandbox.

The worker keeps sending while keys rotate: a real thread flushes in a loop over
loopback while another records events and the command rewrites every token.
"""

from __future__ import annotations

import io
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.urls import reverse

from pinterest_capi import delivery, track
from pinterest_capi.exceptions import ConfigurationError
from pinterest_capi.management.commands.pinterest_capi_rotate_keys import (
    SKIPPED_EXIT_CODE,
    UNDECRYPTABLE_REASON,
    Command,
)
from pinterest_capi.models import (
    AdAccount,
    AttemptOutcome,
    DeliveryAttempt,
    EventStatus,
    OutboxEvent,
)
from pinterest_capi.sandbox import Fault
from tests.conftest import make_outbox_events

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
STRANGER_KEY = Fernet.generate_key().decode()


def use_keys(settings, *keys: str) -> None:
    """Switch ENCRYPTION_KEYS; read lazily, so threads of this process see it at once."""
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "ENCRYPTION_KEYS": list(keys)}


def rotate(**options) -> str:
    out = io.StringIO()
    call_command("pinterest_capi_rotate_keys", stdout=out, **options)
    return out.getvalue()


def make_accounts(sandbox, count: int, *, tenants: int = 1, start: int = 0) -> list[AdAccount]:
    accounts = []
    for i in range(start, start + count):
        ad_account_id, token = str(549755890000 + i), f"pina_rotation_TOKEN_{i:04d}"
        sandbox.add_account(ad_account_id, token)
        account = AdAccount(tenant=f"shop{i % tenants}", ad_account_id=ad_account_id)
        account.set_token(token)
        account.save()
        accounts.append(account)
    return accounts


@contextmanager
def sqlite_file_for_threads(directory: Path) -> Iterator[None]:
    """Point new connections at a file copy of the SQLite test database (schema only).

    pytest-django's SQLite test database lives in memory in shared-cache mode, where a
    concurrent writer makes the others fail at once with "table is locked" (SQLITE_LOCKED
    ignores the busy timeout).  Deployments use a file in WAL mode with IMMEDIATE
    transactions and a busy timeout, where writers wait: that is what this test must run
    against.  Connections opened by threads inside the block use the file; the main thread's
    connection keeps the in-memory database (closing it would destroy it).  PostgreSQL: no-op.
    """
    if connection.vendor != "sqlite":
        yield
        return
    settings_dict = connections.settings[DEFAULT_DB_ALIAS]
    assert settings_dict is connection.settings_dict
    memory_name = settings_dict["NAME"]
    path = directory / "rotation.sqlite3"
    connection.ensure_connection()
    target = sqlite3.connect(path)
    try:
        connection.connection.backup(target)
    finally:
        target.close()
    settings_dict["NAME"] = str(path)
    try:
        yield
    finally:
        settings_dict["NAME"] = memory_name


def in_a_thread(fn: Callable[[], None]) -> None:
    """Run ``fn`` in its own thread (own connection), re-raising what it raises."""

    def target() -> None:
        try:
            fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(target).result(timeout=240)


def only_new_key_decrypts(ciphertext: str) -> bool:
    Fernet(NEW_KEY).decrypt(ciphertext.encode())
    try:
        Fernet(OLD_KEY).decrypt(ciphertext.encode())
    except InvalidToken:
        return True
    return False


@pytest.mark.django_db(transaction=True)
def test_keys_rotate_while_the_worker_keeps_sending(sandbox, capi_settings, settings, tmp_path):
    with sqlite_file_for_threads(tmp_path):
        in_a_thread(lambda: rotate_while_sending(sandbox, settings))


def rotate_while_sending(sandbox, settings) -> None:
    """Record, flush and rotate at once; then drop the old key: each event sent exactly once."""
    use_keys(settings, OLD_KEY)
    accounts = make_accounts(sandbox, 24, tenants=4)
    stop = threading.Event()
    problems: list[str] = []
    recorded = threading.Event()

    def flusher() -> None:
        try:
            while not stop.is_set():
                summary = delivery.flush(until_empty=True)
                problems.extend(summary.errors)
                if not summary.claimed:
                    time.sleep(0.005)
        except Exception as exc:  # the test reports it; the thread must not die silently
            problems.append(f"flusher: {exc!r}")
        finally:
            connection.close()

    def recorder() -> None:
        try:
            for n in range(80):
                track(
                    "checkout",
                    tenant=f"shop{n % 4}",
                    user_data={"em": f"rotation{n}@example.com"},
                    custom_data={"currency": "GBP", "value": "12.50", "order_id": f"R{n}"},
                    event_id=f"rotation-{n}",
                )
                if n == 10:
                    recorded.set()
                time.sleep(0.002)
        except Exception as exc:
            problems.append(f"recorder: {exc!r}")
        finally:
            recorded.set()
            connection.close()

    # The first request is held on the wire: that worker decrypted a token under [old] and
    # keeps using it while every ciphertext is rewritten underneath it.
    release = threading.Event()
    held = sandbox.faults.add(Fault(hold=release, times=1))
    threads = [threading.Thread(target=flusher), threading.Thread(target=recorder)]
    for thread in threads:
        thread.start()
    try:
        assert recorded.wait(10)
        assert sandbox.ledger.wait_for_requests(1, timeout=10)
        # Steps 1-2: new key first, old key kept; "deployed" to the running worker at once.
        use_keys(settings, NEW_KEY, OLD_KEY)
        output = rotate(batch_size=3, progress_every=6)
        release.set()
        threads[1].join(30)
        deadline = time.monotonic() + 30
        while OutboxEvent.objects.exclude(status=EventStatus.SENT).exists():
            assert time.monotonic() < deadline, "the worker did not drain the outbox"
            time.sleep(0.05)
    finally:
        release.set()
        stop.set()
        for thread in threads:
            thread.join(30)
    assert problems == []
    assert held.fired == 1
    assert "Re-encrypted 24 tokens (24 were on an older key); 0 skipped." in output
    assert output.count("/24 accounts") == 4  # progress at 6, 12, 18, 24

    # Step 4: the old key is gone; the worker must still send every account.
    use_keys(settings, NEW_KEY)
    for account in AdAccount.objects.all():
        assert only_new_key_decrypts(account.token_ciphertext)
    for n in range(80, 88):
        track(
            "signup",
            tenant=f"shop{n % 4}",
            user_data={"em": f"rotation{n}@example.com"},
            event_id=f"rotation-{n}",
        )
    summary = delivery.flush(until_empty=True)
    assert summary.errors == [] and summary.failed == 0

    expected = Counter(
        (ad_account_id, event_id)
        for ad_account_id, event_id in OutboxEvent.objects.values_list(
            "account__ad_account_id", "event_id"
        )
    )
    assert len(expected) == 88 * 6  # every event of a tenant goes to each of its 6 accounts
    delivered = Counter(
        (e["ad_account_id"], e["event"]["event_id"])
        for e in sandbox.ledger.events()
        if e["status"] == "processed"
    )
    assert delivered == expected  # each once: nothing lost, nothing twice
    assert not OutboxEvent.objects.exclude(status=EventStatus.SENT).exists()
    assert not AdAccount.objects.exclude(auth_error="").exists()
    assert not DeliveryAttempt.objects.exclude(outcome=AttemptOutcome.SUCCESS).exists()
    assert {a.pk for a in accounts} == set(AdAccount.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_token_of_an_unknown_key_is_reported_flagged_and_the_others_rotated(
    sandbox, capi_settings, settings, admin_client
):
    use_keys(settings, OLD_KEY)
    good_a, stranger, good_b = make_accounts(sandbox, 3)
    foreign = Fernet(STRANGER_KEY).encrypt(b"pina_rotation_TOKEN_0001").decode()
    AdAccount.objects.filter(pk=stranger.pk).update(token_ciphertext=foreign)
    use_keys(settings, NEW_KEY, OLD_KEY)

    with pytest.raises(CommandError) as err:
        rotate(batch_size=2)
    assert err.value.returncode == SKIPPED_EXIT_CODE != 0
    assert f"ids {stranger.pk}." in str(err.value)
    assert foreign not in str(err.value)

    stranger.refresh_from_db()
    assert stranger.token_ciphertext == foreign  # left as it was
    assert stranger.auth_error == UNDECRYPTABLE_REASON and stranger.auth_error_at is not None
    for account in (good_a, good_b):
        account.refresh_from_db()
        assert account.auth_error == ""
        assert only_new_key_decrypts(account.token_ciphertext)

    # F12: the reason is in the admin, and the other accounts keep sending.
    page = admin_client.get(
        reverse("admin:pinterest_capi_adaccount_change", args=[stranger.pk])
    ).content.decode()
    assert UNDECRYPTABLE_REASON in page
    listing = admin_client.get(reverse("admin:pinterest_capi_adaccount_changelist"))
    assert UNDECRYPTABLE_REASON in listing.content.decode()
    for n, account in enumerate((good_a, stranger, good_b)):
        make_outbox_events(account, 2, start=10 * n)
    use_keys(settings, NEW_KEY)
    delivery.flush(until_empty=True)
    sent_to = {r["ad_account_id"] for r in sandbox.ledger.requests()}
    assert sent_to == {good_a.ad_account_id, good_b.ad_account_id}
    assert set(OutboxEvent.objects.filter(account=stranger).values_list("status", flat=True)) == {
        EventStatus.PENDING
    }


@pytest.mark.django_db
def test_wrong_key_flags_only_that_account_with_the_reason_in_the_admin(
    account, second_account, sandbox, admin_client
):
    """F12 through the flush: A's token was encrypted with a key we do not have."""
    foreign = Fernet(STRANGER_KEY).encrypt(b"pina_sandbox_TOKEN_9f3c").decode()
    AdAccount.objects.filter(pk=account.pk).update(token_ciphertext=foreign)
    make_outbox_events(account, 3)
    make_outbox_events(second_account, 3, start=100)
    delivery.flush(until_empty=True)

    account.refresh_from_db()
    assert "cannot be decrypted" in account.auth_error
    assert {r["ad_account_id"] for r in sandbox.ledger.requests()} == {"549755885176"}
    assert set(
        OutboxEvent.objects.filter(account=second_account).values_list("status", flat=True)
    ) == {EventStatus.SENT}
    assert set(OutboxEvent.objects.filter(account=account).values_list("status", flat=True)) == {
        EventStatus.PENDING
    }
    page = admin_client.get(
        reverse("admin:pinterest_capi_adaccount_change", args=[account.pk])
    ).content.decode()
    assert account.auth_error in page and "token refused" in page
    assert foreign not in page
    attempt = DeliveryAttempt.objects.get(account=account)
    assert attempt.outcome == AttemptOutcome.CONFIG_ERROR
    attempt_page = admin_client.get(
        reverse("admin:pinterest_capi_deliveryattempt_change", args=[attempt.pk])
    ).content.decode()
    assert "cannot be decrypted" in attempt_page and foreign not in attempt_page


@pytest.mark.django_db
def test_adding_back_the_missing_key_unflags_the_account(account, sandbox, settings):
    use_keys(settings, STRANGER_KEY)
    account.set_token("pina_sandbox_TOKEN_9f3c")
    account.save()
    use_keys(settings, NEW_KEY)
    make_outbox_events(account, 2)
    delivery.flush(until_empty=True)
    account.refresh_from_db()
    assert account.auth_error.startswith("Token cannot be decrypted")

    use_keys(settings, NEW_KEY, STRANGER_KEY)
    output = rotate()
    assert "Cleared the decryption error of 1 accounts" in output
    account.refresh_from_db()
    assert account.auth_error == "" and only_new_key_decrypts(account.token_ciphertext)
    delivery.flush(until_empty=True)
    assert sorted(sandbox.ledger.event_ids()) == ["checkout-T0", "checkout-T1"]


@pytest.mark.django_db
def test_dry_run_reports_and_changes_nothing(sandbox, capi_settings, settings):
    use_keys(settings, OLD_KEY)
    accounts = make_accounts(sandbox, 4)
    use_keys(settings, NEW_KEY, OLD_KEY)
    accounts[3].set_token("pina_rotation_TOKEN_0003")  # already on the new key
    accounts[3].save()
    foreign = Fernet(STRANGER_KEY).encrypt(b"x").decode()
    AdAccount.objects.filter(pk=accounts[0].pk).update(token_ciphertext=foreign)
    before = dict(AdAccount.objects.values_list("pk", "token_ciphertext"))

    with pytest.raises(CommandError) as err:
        rotate(dry_run=True)
    assert err.value.returncode == SKIPPED_EXIT_CODE
    assert f"ids {accounts[0].pk}." in str(err.value) and "would be flagged" in str(err.value)
    assert dict(AdAccount.objects.values_list("pk", "token_ciphertext")) == before
    assert not AdAccount.objects.exclude(auth_error="").exists()

    AdAccount.objects.filter(pk=accounts[0].pk).delete()
    output = rotate(dry_run=True)
    assert "3 tokens decrypt (2 with an older key), 0 cannot be decrypted" in output
    assert "Nothing was changed" in output
    assert dict(AdAccount.objects.values_list("pk", "token_ciphertext")) == {
        pk: c for pk, c in before.items() if pk != accounts[0].pk
    }


@pytest.mark.django_db
def test_no_usable_key_stops_before_touching_any_row(account, settings):
    before = AdAccount.objects.get().token_ciphertext
    use_keys(settings)
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEYS"):
        rotate()
    use_keys(settings, "not-a-fernet-key")
    with pytest.raises(ConfigurationError, match="not a valid Fernet key"):
        rotate()
    account.refresh_from_db()
    assert account.token_ciphertext == before and account.auth_error == ""


def test_help_explains_the_procedure():
    text = Command().create_parser("manage.py", "pinterest_capi_rotate_keys").format_help()
    steps = [text.index(f"  {n}. ") for n in range(1, 5)]
    assert steps == sorted(steps)  # the numbered lines survive as written
    assert "FIRST in ENCRYPTION_KEYS; keep the old key" in text
    assert "Deploy" in text and "remove the old key" in text
    assert "--dry-run" in text and "--batch-size" in text and "--progress-every" in text
