"""Management commands, settings, checks and token encryption."""

from __future__ import annotations

import gc
import io
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from pinterest_capi import crypto, tasks
from pinterest_capi.checks import check_settings
from pinterest_capi.conf import DEFAULTS, app_settings
from pinterest_capi.exceptions import ConfigurationError, TokenDecryptionError
from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
from tests.conftest import SANDBOX_ACCOUNT_ID, SANDBOX_TOKEN, make_outbox_events

ROOT = Path(__file__).resolve().parent.parent


def test_readme_settings_table_lists_every_default():
    readme = (ROOT / "README.md").read_text()
    table = {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", readme, re.MULTILINE)
    }
    assert set(table) == set(DEFAULTS), set(table) ^ set(DEFAULTS)
    for key, default in DEFAULTS.items():
        assert table[key] == repr(default), (key, table[key], repr(default))


def test_settings_are_read_lazily(settings):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "BATCH_SIZE": 17}
    assert app_settings.BATCH_SIZE == 17
    with pytest.raises(AttributeError):
        app_settings.NOT_A_SETTING  # noqa: B018


def test_checks_report_typos_and_bad_values(settings):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "BATCH_SIZ": 5, "BATCH_SIZE": 5000}
    ids = {m.id for m in check_settings()}
    assert {"pinterest_capi.W001", "pinterest_capi.E003"} <= ids
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "ENCRYPTION_KEYS": []}
    assert "pinterest_capi.E001" in {m.id for m in check_settings()}


@pytest.mark.parametrize("lanes", [0, 17, "2", 2.0, True])
def test_checks_refuse_a_bad_flush_lanes_naming_the_key(settings, lanes):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "FLUSH_LANES": lanes}
    messages = {m.id: m.msg for m in check_settings()}
    assert "FLUSH_LANES" in messages["pinterest_capi.E008"]
    assert repr(lanes) in messages["pinterest_capi.E008"]


def test_checks_accept_flush_lanes_from_1_to_16(settings):
    for lanes in (1, 2, 16):
        settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "FLUSH_LANES": lanes}
        assert "pinterest_capi.E008" not in {m.id for m in check_settings()}


def test_checks_report_unimportable_hooks_and_bad_consent_mode(settings):
    settings.PINTEREST_CAPI = {
        **settings.PINTEREST_CAPI,
        "CONSENT_HOOK": "nowhere.consent_hook",
        "CONSENT_DENIED": "maybe",
    }
    settings.PINTEREST_CAPI["API_BASE_URL"] = "http://127.0.0.1:80a/v5"
    messages = {m.id: m.msg for m in check_settings()}
    assert "API_BASE_URL" in messages["pinterest_capi.E007"]
    assert "CONSENT_HOOK" in messages["pinterest_capi.E006"]
    assert "maybe" in messages["pinterest_capi.E005"]


def test_checks_are_clean_for_the_demo_settings():
    assert [m.id for m in check_settings()] == []


def test_tokens_are_encrypted_and_rotate_across_keys(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "ENCRYPTION_KEYS": [old_key]}
    ciphertext = crypto.encrypt("pina_secret")
    assert "pina_secret" not in ciphertext
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "ENCRYPTION_KEYS": [new_key, old_key]}
    assert crypto.decrypt(ciphertext) == "pina_secret"
    rotated = crypto.rotate(ciphertext)
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "ENCRYPTION_KEYS": [new_key]}
    assert crypto.decrypt(rotated) == "pina_secret"
    with pytest.raises(TokenDecryptionError) as err:
        crypto.decrypt(ciphertext)
    assert "pina_secret" not in str(err.value)


def test_missing_keys_name_the_setting(settings):
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "ENCRYPTION_KEYS": []}
    with pytest.raises(ConfigurationError, match="ENCRYPTION_KEYS"):
        crypto.encrypt("x")


@pytest.mark.django_db
def test_account_add_reads_the_token_from_the_environment(monkeypatch):
    monkeypatch.setenv("PINTEREST_ACCESS_TOKEN", "pina_from_env_1234")
    out = io.StringIO()
    call_command(
        "pinterest_capi_account",
        "add",
        "--tenant",
        "t1",
        "--ad-account-id",
        "123",
        "--name",
        "Main",
        "--test-mode",
        stdout=out,
    )
    acct = AdAccount.objects.get(tenant="t1")
    assert acct.get_token() == "pina_from_env_1234" and acct.test_mode
    assert "pina_from_env_1234" not in out.getvalue() and "…1234" in out.getvalue()
    assert "pina_from_env_1234" not in acct.token_ciphertext


@pytest.mark.django_db
def test_account_add_reads_the_token_from_stdin(monkeypatch):
    monkeypatch.delenv("PINTEREST_ACCESS_TOKEN", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("pina_from_stdin_5678\n"))
    call_command(
        "pinterest_capi_account",
        "add",
        "--tenant",
        "t2",
        "--ad-account-id",
        "456",
        stdout=io.StringIO(),
    )
    assert AdAccount.objects.get(tenant="t2").get_token() == "pina_from_stdin_5678"
    out = io.StringIO()
    call_command("pinterest_capi_account", "list", stdout=out)
    assert "456" in out.getvalue() and "pina_from_stdin_5678" not in out.getvalue()


@pytest.mark.django_db
def test_account_add_rejects_bad_ids_and_missing_tokens(monkeypatch):
    monkeypatch.setenv("PINTEREST_ACCESS_TOKEN", "pina_x")
    with pytest.raises(CommandError, match="--ad-account-id"):
        call_command("pinterest_capi_account", "add", "--tenant", "t", "--ad-account-id", "12ab")
    monkeypatch.delenv("PINTEREST_ACCESS_TOKEN")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="No access token"):
        call_command("pinterest_capi_account", "add", "--tenant", "t", "--ad-account-id", "12")


@pytest.mark.django_db
def test_flush_command_delivers_until_empty(account, sandbox):
    make_outbox_events(account, 1500)
    out = io.StringIO()
    call_command("pinterest_capi_flush", "--until-empty", stdout=out)
    assert "sent 1500" in out.getvalue()
    assert OutboxEvent.objects.filter(status=EventStatus.SENT).count() == 1500
    assert SANDBOX_TOKEN not in out.getvalue()


@pytest.mark.django_db
def test_sweep_schedule_exists_after_migrate_and_is_idempotent():
    from django_q.models import Schedule

    assert Schedule.objects.filter(name=tasks.SCHEDULE_NAME).count() == 1
    call_command("pinterest_capi_schedule", stdout=io.StringIO())
    call_command("pinterest_capi_schedule", stdout=io.StringIO())
    schedule = Schedule.objects.get(name=tasks.SCHEDULE_NAME)
    assert schedule.func == tasks.SWEEP_TASK and schedule.repeats == -1


@pytest.mark.django_db
def test_flush_task_returns_a_summary_and_never_raises_on_api_errors(account, sandbox, settings):
    from pinterest_capi.sandbox import Fault

    make_outbox_events(account, 3)
    sandbox.faults.add(Fault(status=500))
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "MAX_ATTEMPTS": 2}
    result = tasks.flush_task()
    assert result["failed"] == 3 and result["errors"] == []


@pytest.mark.django_db(transaction=True)
def test_commit_nudges_a_django_q2_flush(account, sandbox, settings):
    """NUDGE=async with django-q2 in sync mode: the real async_task path runs the flush."""
    from django.db import transaction

    from pinterest_capi import track

    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "NUDGE": "async"}
    with transaction.atomic():
        track("signup", user_data={"em": "new@example.com"}, event_id="signup-77")
        assert sandbox.ledger.event_ids() == []  # nothing leaves before the commit
    assert sandbox.ledger.event_ids() == ["signup-77"]
    assert OutboxEvent.objects.get().status == EventStatus.SENT


@pytest.mark.django_db
def test_only_one_nudge_is_pending_at_a_time(settings, monkeypatch):
    from django.core.cache import cache
    from django_q.conf import Conf
    from django_q.models import OrmQ

    # django-q2 reads Q_CLUSTER once at import: switch its sync mode off directly so tasks
    # really go to the ORM broker's queue.
    monkeypatch.setattr(Conf, "SYNC", False)
    settings.PINTEREST_CAPI = {**settings.PINTEREST_CAPI, "NUDGE": "async"}
    cache.delete(tasks.NUDGE_KEY)
    for _ in range(5):
        tasks.nudge_flush()
    assert OrmQ.objects.count() == 1
    tasks.flush_task()  # what the worker runs: it clears the key once nothing is left
    assert cache.get(tasks.NUDGE_KEY) is None
    tasks.nudge_flush()
    assert OrmQ.objects.count() == 2


def test_sandbox_fixture_constants_are_consistent():
    assert SANDBOX_ACCOUNT_ID.isdigit() and SANDBOX_TOKEN.startswith("pina_")


@pytest.mark.django_db
def test_purge_deletes_only_old_sent_events(account):
    from datetime import timedelta

    from django.utils import timezone

    rows = make_outbox_events(account, 8)
    old = timezone.now() - timedelta(days=40)
    states = [EventStatus.SENT, EventStatus.PENDING, EventStatus.FAILED, EventStatus.IN_FLIGHT]
    for row, state in zip(rows[:4], states, strict=True):
        OutboxEvent.objects.filter(pk=row.pk).update(
            status=state, created_at=old, sent_at=old if state == EventStatus.SENT else None
        )
    OutboxEvent.objects.filter(pk=rows[4].pk).update(
        status=EventStatus.SENT, sent_at=timezone.now()
    )
    out = io.StringIO()
    call_command("pinterest_capi_purge", "--dry-run", stdout=out)
    assert "Would delete 1 sent" in out.getvalue()
    call_command("pinterest_capi_purge", stdout=out)
    assert "Deleted 1 sent" in out.getvalue() and "3 events older than 30 days" in out.getvalue()
    assert not OutboxEvent.objects.filter(pk=rows[0].pk).exists()
    assert OutboxEvent.objects.count() == 7


@pytest.mark.django_db(transaction=True)
def test_flush_command_run_as_its_own_process_freezes_what_is_loaded_call_command_does_not(
    account, sandbox
):
    """``manage.py pinterest_capi_flush`` (run_from_argv) takes the loaded modules out of the
    garbage collector's way; call_command() from a long-running process leaves its GC alone."""
    from pinterest_capi.management.commands.pinterest_capi_flush import Command

    make_outbox_events(account, 3)
    gc.unfreeze()
    try:
        call_command("pinterest_capi_flush", stdout=io.StringIO())
        assert gc.get_freeze_count() == 0
        command = Command(stdout=io.StringIO())
        command.run_from_argv(
            ["manage.py", "pinterest_capi_flush", "--until-empty", "--skip-checks"]
        )
        assert gc.get_freeze_count() > 10_000
        assert OutboxEvent.objects.filter(status=EventStatus.SENT).count() == 3
    finally:
        gc.unfreeze()
