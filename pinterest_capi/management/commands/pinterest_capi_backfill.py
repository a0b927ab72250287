"""``manage.py pinterest_capi_backfill FILE.csv``: record offline conversions from a CSV file.

Validation first, then writing: every row is judged (see :mod:`pinterest_capi.backfill`) and
nothing is written while any row is invalid, unless ``--skip-invalid`` says to record the good
ones anyway.  Rows are recorded in bulk batches, idempotently by event_id, so a re-run of the
same file (after a crash, or by mistake) writes no duplicates.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pinterest_capi import outbox
from pinterest_capi.backfill import COLUMNS, BadFileError, Validation, validate_csv
from pinterest_capi.conf import app_settings
from pinterest_capi.models import AdAccount
from pinterest_capi.progress import Progress
from pinterest_capi.tenants import resolve_tenant


class Command(BaseCommand):
    help = (
        "Record offline conversions (action_source offline) from a CSV file, one row per "
        f"conversion. Columns (header line, any order): {', '.join(COLUMNS)}; event_time and "
        "email are required, and event_id or order_id (event_id defaults to "
        "<event_name>-<order_id>). Every row is validated first and a report lists each bad "
        "row by line number; nothing is written if any row is invalid, unless --skip-invalid. "
        "Re-running the same file writes no duplicates. See the README, 'Backfilling offline "
        "conversions'."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="CSV file (UTF-8, comma-separated, with a header).")
        parser.add_argument(
            "--tenant", help="Tenant whose active ad accounts get the events (DEFAULT_TENANT)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and report only; write nothing."
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Record the valid rows even if some are invalid (these are still reported).",
        )
        parser.add_argument(
            "--default-phone-region",
            help="Region for phone numbers without a country code (DEFAULT_PHONE_REGION).",
        )
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Events per transaction (default 1000)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size: must be 1 or more.")
        if not app_settings.ENABLED:
            raise CommandError("PINTEREST_CAPI['ENABLED'] is False: nothing would be recorded.")
        tenant = resolve_tenant(tenant=options["tenant"])
        accounts = list(AdAccount.objects.for_tenant(tenant).active())
        if not accounts and not options["dry_run"]:
            raise CommandError(f"Tenant {tenant!r} has no active ad account to record events for.")
        region = options["default_phone_region"] or app_settings.DEFAULT_PHONE_REGION
        started = time.monotonic()
        try:
            with open(options["file"], encoding="utf-8-sig", newline="") as stream:
                result = validate_csv(stream, tenant=tenant, default_phone_region=region)
        except OSError as exc:
            raise CommandError(f"{options['file']}: {exc.strerror or exc}") from None
        except BadFileError as exc:
            raise CommandError(f"{options['file']}: {exc}; nothing was written.") from None
        try:
            self._validated(result, accounts, tenant, started, options)
        finally:
            result.events.close()

    def _validated(
        self,
        result: Validation,
        accounts: list[AdAccount],
        tenant: str,
        started: float,
        options: Any,
    ) -> None:
        """Report the validation; then write, unless a bad row or ``--dry-run`` says not to."""
        self._report(result, time.monotonic() - started)
        if result.errors and not options["skip_invalid"] and not options["dry_run"]:
            raise CommandError(
                f"{len(result.errors)} invalid rows: nothing was written. Fix them, or record "
                "the valid rows with --skip-invalid."
            )
        if options["dry_run"]:
            self.stdout.write(
                f"Dry run: {len(result.events)} events would be recorded for "
                f"{len(accounts)} ad accounts of tenant {tenant!r}. Nothing was written."
            )
            return
        written = self._record(result, accounts, options)
        expected = len(result.events) * len(accounts)
        self.stdout.write(
            self.style.SUCCESS(
                f"Recorded {written} new outbox events ({len(result.events)} conversions x "
                f"{len(accounts)} ad accounts of tenant {tenant!r}); {expected - written} were "
                f"already in the outbox; {len(result.errors)} invalid rows skipped. "
                f"{time.monotonic() - started:.1f} s in all."
            )
        )

    def _report(self, result: Validation, seconds: float) -> None:
        """Every bad row, by line number, with the column and the rule; never a value."""
        for error in sorted(result.errors, key=lambda e: e.line):
            self.stdout.write(self.style.ERROR(str(error)))
        self.stdout.write(
            f"Validated {result.rows} rows in {seconds:.1f} s: {len(result.events)} valid, "
            f"{len(result.errors)} invalid"
            + (f", {result.refused} refused by the consent hook" if result.refused else "")
            + "."
        )

    def _record(self, result: Validation, accounts: list[AdAccount], options: Any) -> int:
        size = options["batch_size"]
        written = 0
        with Progress(
            len(result.events),
            stream=self.stderr,
            label="conversions recorded",
            enabled=options["verbosity"] > 0,
        ) as progress:
            for batch in result.events.batches(size):
                written += outbox.record_many(batch, accounts=accounts)
                progress.advance(len(batch))
        return written
