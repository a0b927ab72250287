"""``manage.py pinterest_capi_purge``: delete sent events past the retention window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models.functions import Now

from pinterest_capi import outbox
from pinterest_capi.conf import app_settings
from pinterest_capi.models import EventStatus, OutboxEvent
from pinterest_capi.progress import Progress


class Command(BaseCommand):
    help = (
        "Delete `sent` outbox events older than RETENTION_DAYS (or --days), in batches. "
        "Pending and failed events are never deleted; their counts are reported. "
        "A progress bar goes to stderr (--verbosity 0 hides it)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, help="Override RETENTION_DAYS.")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--dry-run", action="store_true", help="Count only; delete nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else app_settings.RETENTION_DAYS
        if days < 0:
            raise CommandError("--days: must be zero or more.")
        cutoff = Now() - timedelta(days=days)
        old = OutboxEvent.objects.filter(created_at__lt=cutoff)
        to_delete = old.filter(status=EventStatus.SENT, sent_at__lt=cutoff).count()
        if options["dry_run"]:
            self.stdout.write(f"Would delete {to_delete} sent events older than {days} days.")
        else:
            with Progress(
                to_delete,
                stream=self.stderr,
                label="sent events deleted",
                enabled=options["verbosity"] > 0,
            ) as progress:
                count = outbox.purge_sent(
                    days, batch_size=options["batch_size"], on_batch=progress.advance
                )
            self.stdout.write(f"Deleted {count} sent events older than {days} days.")
        kept = old.exclude(status=EventStatus.SENT).count()
        if kept:
            self.stdout.write(
                self.style.WARNING(
                    f"{kept} events older than {days} days are not sent (pending/failed) and "
                    "were kept: see the admin."
                )
            )
