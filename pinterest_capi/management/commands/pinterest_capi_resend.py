"""``manage.py pinterest_capi_resend``: requeue failed (or waiting) events matching filters.

The admin's resend action works on a page of selected rows; after an outage or a fixed
token an operator needs "every failed checkout of tenant X since Monday" instead.  Rows are
requeued through :func:`pinterest_capi.outbox.requeue_matching` in short pk batches so the
worker keeps sending meanwhile, and every resend keeps its event_id (Pinterest deduplicates).
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.db.models import QuerySet
from django.utils import timezone

from pinterest_capi import outbox
from pinterest_capi.models import EventStatus, OutboxEvent
from pinterest_capi.progress import Progress


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the examples in --help kept as written."""


def _day_start(text: str, option: str, *, next_day: bool = False) -> datetime:
    """Midnight (current time zone) of a YYYY-MM-DD date, or an ISO 8601 datetime as given.

    ``--until`` takes a date inclusively: its bound is the midnight *after* it.
    """
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip()) + timedelta(days=1 if next_day else 0)
            return timezone.make_aware(datetime.combine(day, time.min))
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(f"{option}: give a date (YYYY-MM-DD) or an ISO 8601 datetime.") from None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = """Requeue outbox events so the worker sends them again, with the SAME event_id
(Pinterest deduplicates an event it had in fact recorded).

By default every `failed` event is requeued: status pending, due now, a fresh
attempt budget.  --status pending instead makes events waiting for a retry
backoff due now (their attempt count is kept).  Events in flight (a worker holds
them) and sent events are never touched.  Filters combine (AND); --since and
--until compare the time the event was recorded, --until's date inclusively.

Examples:
  manage.py pinterest_capi_resend --dry-run
  manage.py pinterest_capi_resend --tenant shop1 --event-name checkout --since 2025-03-01
  manage.py pinterest_capi_resend --account 549755885175 --status pending

Rows are updated in batches (--batch-size) so the worker is never blocked for
long; a progress bar goes to stderr (--verbosity 0 hides it)."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--status",
            choices=[EventStatus.FAILED, EventStatus.PENDING],
            default=EventStatus.FAILED,
            help="Which events: failed (default) or pending (make them due now).",
        )
        parser.add_argument("--account", help="Only this Pinterest ad account id (digits).")
        parser.add_argument("--tenant", help="Only the ad accounts of this tenant.")
        parser.add_argument("--event-name", help="Only this event name, e.g. checkout.")
        parser.add_argument(
            "--since", help="Only events recorded on or after this date (YYYY-MM-DD) or time."
        )
        parser.add_argument(
            "--until", help="Only events recorded on or before this date (inclusive) or time."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Print how many events match; change nothing."
        )
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Rows per UPDATE (default 1000)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size: must be 1 or more.")
        status = options["status"]
        events = self._matching(options).filter(status=status)
        count = events.count()
        described = f"{status} event{'' if count == 1 else 's'}"
        if options["dry_run"]:
            self.stdout.write(f"Would requeue {count} {described}. Nothing was changed.")
            return
        with Progress(
            count,
            stream=self.stderr,
            label=f"{status} events requeued",
            enabled=options["verbosity"] > 0,
        ) as progress:
            requeue = (
                outbox.requeue_matching
                if status == EventStatus.FAILED
                else outbox.make_due_matching
            )
            requeued = requeue(events, batch_size=options["batch_size"], progress=progress.update)
        self.stdout.write(
            self.style.SUCCESS(
                f"Requeued {requeued} {status} event{'' if requeued == 1 else 's'}: "
                "due now, the worker sends them with their original event_ids."
            )
        )
        if requeued < count:
            self.stdout.write(
                f"{count - requeued} matching events changed state meanwhile (a worker took "
                "them) and were left alone."
            )

    def _matching(self, options: dict[str, Any]) -> QuerySet[OutboxEvent]:
        events = OutboxEvent.objects.all()
        if options["account"]:
            account_id = str(options["account"]).strip()
            if not account_id.isdigit():
                raise CommandError("--account: a Pinterest ad account id is digits only.")
            events = events.filter(account__ad_account_id=account_id)
        if options["tenant"]:
            events = events.filter(account__tenant=options["tenant"])
        if options["event_name"]:
            events = events.filter(event_name=options["event_name"].strip())
        since = _day_start(options["since"], "--since") if options["since"] else None
        until = _day_start(options["until"], "--until", next_day=True) if options["until"] else None
        if since is not None and until is not None and since >= until:
            raise CommandError("--since must come before --until.")
        if since is not None:
            events = events.filter(created_at__gte=since)
        if until is not None:
            events = events.filter(created_at__lt=until)
        return events
