"""Operator commands: resend, purge's progress, and the offline-conversion backfill.

Everything runs the real commands against the real database, and the backfilled events are
delivered to the real sandbox server over loopback and checked against Pinterest's schema.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from pinterest_capi import delivery
from pinterest_capi.backfill import EventSpool
from pinterest_capi.events import sha256_hex
from pinterest_capi.management.commands.pinterest_capi_resend import Command as ResendCommand
from pinterest_capi.models import EventStatus, OutboxEvent
from tests.conftest import make_outbox_events
from tests.pinterest_schema import validate_request_body

pytestmark = pytest.mark.django_db


def run(name: str, *args: str, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


# ----------------------------------------------------------------------------------- resend


def fail(rows, *, days_ago: int = 0, event_name: str | None = None) -> None:
    updates = {"status": EventStatus.FAILED, "attempts": 8, "last_error": "Gave up"}
    if days_ago:
        updates["created_at"] = timezone.now() - timedelta(days=days_ago)
    if event_name:
        updates["event_name"] = event_name
    OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(**updates)


def test_resend_filters_by_tenant_account_name_and_dates_and_dry_run_changes_nothing(
    account, second_account
):
    ours = make_outbox_events(account, 10)
    theirs = make_outbox_events(second_account, 4, start=100)
    fail(ours[:4])  # today, checkout
    fail(ours[4:6], days_ago=10)  # old checkouts
    fail(ours[6:8], event_name="lead")
    fail(theirs)  # the other tenant
    out, _ = run("pinterest_capi_resend", "--dry-run")
    assert "Would requeue 12 failed events" in out
    assert OutboxEvent.objects.filter(status=EventStatus.FAILED).count() == 12

    since = (timezone.localdate() - timedelta(days=2)).isoformat()
    out, _ = run("pinterest_capi_resend", "--tenant", "demo", "--event-name", "checkout",
                 "--since", since, "--dry-run")  # fmt: skip
    assert "Would requeue 4 failed events" in out
    until = (timezone.localdate() - timedelta(days=5)).isoformat()
    out, _ = run("pinterest_capi_resend", "--tenant", "demo", "--until", until, "--dry-run")
    assert "Would requeue 2 failed events" in out

    out, err = run("pinterest_capi_resend", "--tenant", "demo", "--event-name", "checkout",
                   "--since", since, "--batch-size", "3")  # fmt: skip
    assert "Requeued 4 failed events" in out
    assert "4/4 failed events requeued" in err  # the progress goes to stderr
    requeued = OutboxEvent.objects.filter(pk__in=[r.pk for r in ours[:4]])
    assert set(requeued.values_list("status", "attempts")) == {(EventStatus.PENDING, 0)}
    assert OutboxEvent.objects.filter(status=EventStatus.FAILED).count() == 8

    out, _ = run("pinterest_capi_resend", "--account", second_account.ad_account_id)
    assert "Requeued 4 failed events" in out
    assert not OutboxEvent.objects.filter(account=second_account, status="failed").exists()
    out, _ = run("pinterest_capi_resend", "--tenant", "nobody")
    assert "Requeued 0 failed events" in out


def test_resent_events_keep_their_ids_and_reach_the_sandbox(account, sandbox):
    rows = make_outbox_events(account, 5)
    delivery.flush(until_empty=True)
    fail(rows[:2])
    run("pinterest_capi_resend")
    delivery.flush(until_empty=True)
    ids = sandbox.ledger.event_ids()
    assert sorted(ids) == sorted([r.event_id for r in rows] + [r.event_id for r in rows[:2]])
    assert not OutboxEvent.objects.exclude(status=EventStatus.SENT).exists()


def test_resend_pending_makes_waiting_events_due_now_keeping_their_attempts(account):
    rows = make_outbox_events(account, 3)
    later = timezone.now() + timedelta(hours=1)
    OutboxEvent.objects.filter(pk__in=[r.pk for r in rows[:2]]).update(
        attempts=3, next_attempt_at=later
    )
    assert delivery.due_count() == 1
    out, _ = run("pinterest_capi_resend", "--status", "pending")
    assert "Requeued 3 pending events" in out
    assert delivery.due_count() == 3
    assert sorted(OutboxEvent.objects.values_list("attempts", flat=True)) == [0, 3, 3]


def test_resend_rejects_bad_options_and_explains_itself():
    with pytest.raises(CommandError, match="--since"):
        run("pinterest_capi_resend", "--since", "last tuesday")
    with pytest.raises(CommandError, match="digits"):
        run("pinterest_capi_resend", "--account", "abc")
    with pytest.raises(CommandError, match="before --until"):
        run("pinterest_capi_resend", "--since", "2025-03-02", "--until", "2025-03-01")
    text = ResendCommand().create_parser("manage.py", "pinterest_capi_resend").format_help()
    for option in ("--status", "--account", "--tenant", "--event-name", "--since", "--until",
                   "--dry-run", "SAME event_id", "Examples:"):  # fmt: skip
        assert option in text


# ----------------------------------------------------------------------------------- purge


def test_purge_shows_progress_on_stderr(account):
    rows = make_outbox_events(account, 12)
    old = timezone.now() - timedelta(days=40)
    OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(
        status=EventStatus.SENT, created_at=old, sent_at=old
    )
    out, err = run("pinterest_capi_purge", "--batch-size", "5")
    assert "Deleted 12 sent events" in out
    assert "12/12 sent events deleted" in err and "5/12" not in out
    assert OutboxEvent.objects.count() == 0
    _, err = run("pinterest_capi_purge", verbosity=0)
    assert err == ""


# ----------------------------------------------------------------------------------- backfill

COLUMNS = ["event_name", "event_time", "event_id", "order_id", "value", "currency", "email",
           "phone", "first_name", "last_name", "city", "state", "zip", "country", "external_id",
           "content_ids", "num_items"]  # fmt: skip


def conversion(n: int, **overrides) -> dict[str, str]:
    row = {
        "event_time": str(int(time.time()) - 3600 - n),
        "order_id": f"S{n}",
        "value": "19.90",
        "currency": "EUR",
        "email": f"Store.Buyer{n}@Example.com",
        "phone": "+44 20 7946 0000",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "city": "London",
        "zip": "SW1A 1AA",
        "country": "GB",
        "content_ids": "sku-1; sku-2",
        "num_items": "2",
    }
    row.update(overrides)
    return row


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_backfill_records_offline_events_that_the_sandbox_accepts(account, sandbox, tmp_path):
    rows = [conversion(n) for n in range(5)]
    rows[1].update(event_id="store-visit-7", event_name="lead", event_time="")
    rows[1]["event_time"] = (timezone.now() - timedelta(days=2)).isoformat()
    path = write_csv(tmp_path / "offline.csv", rows)
    out, err = run("pinterest_capi_backfill", str(path), "--tenant", "demo")
    assert "Validated 5 rows" in out and "5 valid, 0 invalid" in out
    assert "Recorded 5 new outbox events" in out and "5/5 conversions recorded" in err
    events = {e.event_id: e.payload_dict for e in OutboxEvent.objects.all()}
    assert set(events) == {"checkout-S0", "store-visit-7", "checkout-S2", "checkout-S3",
                           "checkout-S4"}  # fmt: skip
    first = events["checkout-S0"]
    assert first["action_source"] == "offline"
    assert first["user_data"]["em"] == [sha256_hex("store.buyer0@example.com")]
    assert first["user_data"]["ph"] == [sha256_hex("442079460000")]
    assert first["custom_data"] == {"currency": "EUR", "value": "19.90", "order_id": "S0",
                                    "content_ids": ["sku-1", "sku-2"], "num_items": 2}  # fmt: skip
    assert events["store-visit-7"]["event_name"] == "lead"
    dump = " ".join(OutboxEvent.objects.values_list("payload", flat=True))
    assert "Buyer0" not in dump and "7946" not in dump  # raw PII never stored

    summary = delivery.flush(until_empty=True)
    assert summary.sent == 5 and summary.failed == 0
    received = [item["event"] for item in sandbox.ledger.events()]
    assert {e["event_id"] for e in received} == set(events)
    assert {e["action_source"] for e in received} == {"offline"}
    validate_request_body({"data": received})


def test_backfill_reports_every_bad_row_by_line_and_writes_nothing(account, tmp_path):
    rows = [conversion(n) for n in range(6)]
    rows[1]["email"] = ""  # line 3
    rows[2]["event_time"] = str(int(time.time()) - 8 * 86400)  # line 4: too old for Pinterest
    rows[3]["currency"] = "euro"  # line 5
    rows[4].update(order_id="", event_id="")  # line 6
    rows[5]["num_items"] = "two"  # line 7
    path = write_csv(tmp_path / "bad.csv", rows)
    out = io.StringIO()
    with pytest.raises(CommandError, match="5 invalid rows: nothing was written"):
        call_command("pinterest_capi_backfill", str(path), stdout=out, stderr=io.StringIO())
    report = out.getvalue()
    assert "line 3: email: is required" in report
    assert "line 4: event_time: is more than 7 days in the past" in report
    assert "line 5: currency: must be a three-letter ISO-4217 code" in report
    assert "line 6: event_id: give event_id or order_id" in report
    assert "line 7: num_items: must be a whole number" in report
    assert "line 2:" not in report and "1 valid, 5 invalid" in report
    assert "Buyer" not in report and "7946" not in report  # never the raw values
    assert OutboxEvent.objects.count() == 0

    out, _ = run("pinterest_capi_backfill", str(path), "--skip-invalid")
    assert "Recorded 1 new outbox events" in out and "5 invalid rows skipped" in out
    assert list(OutboxEvent.objects.values_list("event_id", flat=True)) == ["checkout-S0"]


def test_backfill_rerun_dry_run_and_whole_file_errors(account, second_account, tmp_path):
    path = write_csv(tmp_path / "offline.csv", [conversion(n) for n in range(3)])
    out, _ = run("pinterest_capi_backfill", str(path), "--dry-run")
    assert "3 events would be recorded" in out and OutboxEvent.objects.count() == 0
    run("pinterest_capi_backfill", str(path))
    out, _ = run("pinterest_capi_backfill", str(path))  # the same file again
    assert "Recorded 0 new outbox events" in out and "3 were already in the outbox" in out
    assert OutboxEvent.objects.count() == 3
    # The phone region option: a number without a country code, read as a UK number.
    path = write_csv(tmp_path / "uk.csv", [conversion(9, phone="020 7946 0000")])
    run("pinterest_capi_backfill", str(path), "--default-phone-region", "GB")
    payload = OutboxEvent.objects.get(event_id="checkout-S9").payload_dict
    assert payload["user_data"]["ph"] == [sha256_hex("442079460000")]
    # Whole-file problems stop before any row is judged.
    bad = tmp_path / "typo.csv"
    bad.write_text("event_time,emial,order_id\n1,a@b.c,1\n")
    with pytest.raises(CommandError, match="unknown column.*emial"):
        run("pinterest_capi_backfill", str(bad))
    with pytest.raises(CommandError, match="no active ad account"):
        run("pinterest_capi_backfill", str(path), "--tenant", "nobody")
    with pytest.raises(CommandError, match="No such file"):
        run("pinterest_capi_backfill", str(tmp_path / "missing.csv"))


def test_backfill_keeps_the_validated_events_in_a_file_once_they_outgrow_memory(
    account, tmp_path, monkeypatch
):
    """A big file's built events wait on disk (JSON lines), not as dicts in the process."""
    monkeypatch.setattr(EventSpool, "IN_MEMORY", 2048)  # a few events' worth
    closed: list[tuple[bool, int]] = []  # each spool as the command closed it
    close = EventSpool.close

    def noted_close(spool: EventSpool) -> None:
        closed.append((spool.on_disk, len(spool)))
        close(spool)

    monkeypatch.setattr(EventSpool, "close", noted_close)
    path = write_csv(tmp_path / "offline.csv", [conversion(n) for n in range(25)])
    out, _ = run("pinterest_capi_backfill", str(path), "--batch-size", "4")
    assert closed == [(True, 25)]
    assert "Recorded 25 new outbox events" in out
    stored = sorted(OutboxEvent.objects.values_list("event_id", flat=True))
    assert stored == sorted(f"checkout-S{n}" for n in range(25))


def test_the_event_spool_gives_back_what_it_took_in_order_and_in_batches(monkeypatch):
    monkeypatch.setattr(EventSpool, "IN_MEMORY", 1024)
    spool = EventSpool()
    taken = [
        {"event_name": "lead", "event_id": f"lead-{n}", "custom_data": {"value": f"{n}.50"}}
        for n in range(30)
    ]
    for event in taken:
        spool.append(event)
    assert spool.on_disk
    batches = list(spool.batches(7))
    assert [len(b) for b in batches] == [7, 7, 7, 7, 2]
    assert [e for b in batches for e in b] == taken
    assert [e for b in spool.batches(100) for e in b] == taken  # read again from the start
    spool.close()


@pytest.mark.slow
def test_backfill_of_100000_rows_with_some_invalid(account, tmp_path):
    total, bad_every = 100_000, 997
    now = int(time.time())
    path = tmp_path / "big.csv"
    invalid_lines = set()
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for n in range(total):
            email = "" if n % bad_every == 0 else f"buyer{n}@example.com"
            if not email:
                invalid_lines.add(n + 2)
            writer.writerow(["checkout", now - 600 - n % 3600, "", f"B{n}", "12.50", "USD", email,
                             "+1 415 555 0100", "Ada", "Byron", "San Francisco", "CA", "94107",
                             "US", f"cust-{n}", "sku-1;sku-2", 2])  # fmt: skip
    started = time.monotonic()
    out, _ = run("pinterest_capi_backfill", str(path), "--skip-invalid")
    elapsed = time.monotonic() - started
    print(f"\nbackfill of {total:,} rows ({len(invalid_lines)} invalid): {elapsed:.1f} s")
    reported = {int(line.split(":")[0].split()[1]) for line in out.splitlines()
                if line.startswith("line ")}  # fmt: skip
    assert reported == invalid_lines
    valid = total - len(invalid_lines)
    assert f"Recorded {valid} new outbox events" in out
    assert OutboxEvent.objects.filter(status=EventStatus.PENDING).count() == valid
    assert elapsed < 180
