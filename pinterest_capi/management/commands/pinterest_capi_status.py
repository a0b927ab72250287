"""``manage.py pinterest_capi_status``: the delivery dashboard's account table, for terminals.

Meant for people at a shell and for monitoring (a cron job, a Nagios-style
check, a container health probe): the exit status alone says whether
someone needs to look, ``--json`` gives the figures to a script.  The
numbers come from :func:`pinterest_capi.stats.account_health`, the same
function the admin dashboard uses.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils import timezone

from pinterest_capi import stats
from pinterest_capi.models import AdAccount

PROBLEM_EXIT_CODE = 2


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the exit statuses in --help kept as written."""


class Command(BaseCommand):
    help = """Show, per ad account, the delivery queue: pending and in-flight events,
failed events, the age of the oldest undelivered (pending or in-flight) event,
the last successful send, and whether the account is paused.

Exit status:
  0  healthy: nothing stuck, no account refused by Pinterest.
  2  needs attention: an active account has an event still undelivered
     after --stuck-after minutes (default 30), or Pinterest refused an
     active account's token (authorisation error: sending is paused until a
     new token is saved).  The reasons are printed on standard error.
  1  the command itself failed (bad option, database unreachable).
Inactive accounts are listed but never make the status non-zero; failed
events are counted but do not either (they are final; see the admin)."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # argparse exits 2 on a usage error; 2 means "needs attention" here, so a typo in a
        # monitoring job's options must not look like stuck events: usage errors exit 1.
        parser_exit = parser.exit

        def exit_(status: int = 0, message: str | None = None) -> None:
            parser_exit(1 if status == 2 else status, message)

        parser.exit = exit_  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--stuck-after",
            type=int,
            default=30,
            metavar="MINUTES",
            help="An undelivered event older than this many minutes is stuck (default 30).",
        )
        parser.add_argument(
            "--tenant",
            action="append",
            default=[],
            metavar="T",
            help="Only this tenant's accounts (repeatable).",
        )
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["stuck_after"] < 0:
            raise CommandError("--stuck-after: must be zero or more minutes.")
        stuck_after = timedelta(minutes=options["stuck_after"])
        accounts = AdAccount.objects.order_by("tenant", "ad_account_id")
        if options["tenant"]:
            accounts = accounts.filter(tenant__in=options["tenant"])
        now = timezone.now()
        health = stats.account_health(accounts, now=now)
        problems = [problem for row in health for problem in account_problems(row, stuck_after)]
        if options["json"]:
            self.stdout.write(json.dumps(as_json(health, stuck_after, problems, now), indent=2))
        else:
            self.write_table(health, stuck_after)
        if problems:
            raise CommandError("; ".join(problems), returncode=PROBLEM_EXIT_CODE)

    def write_table(self, health: list[stats.AccountHealth], stuck_after: timedelta) -> None:
        if not health:
            self.stdout.write("No ad accounts. Add one with `pinterest_capi_account add`.")
            return
        self.stdout.write(
            f"{'tenant':16} {'ad account':18} {'state':8} {'pending':>7} {'in flight':>9} "
            f"{'failed':>7} {'oldest pending':>15}  last success"
        )
        for row in health:
            a = row.account
            age = row.oldest_pending_age
            age_text = stats.format_duration(age.total_seconds()) if age is not None else "—"
            if row.is_stuck(stuck_after):
                age_text += " !"
            last = _iso(a.last_success_at) or "never"
            line = (
                f"{a.tenant:16} {a.ad_account_id:18} {row.state:8} {row.pending:>7} "
                f"{row.in_flight:>9} {row.failed:>7} {age_text:>15}  {last}"
            )
            reason = a.auth_error or (a.pause_reason if row.state == "paused" else "")
            if reason:
                line += f"  ({reason})"
            style = self.style.ERROR if account_problems(row, stuck_after) else (lambda s: s)
            self.stdout.write(style(line))


def account_problems(row: stats.AccountHealth, stuck_after: timedelta) -> list[str]:
    """Why ``row`` needs a person, as short sentences (none for a healthy account)."""
    a = row.account
    label = f"{a.tenant}/{a.ad_account_id}"
    problems = []
    if row.auth_paused:
        problems.append(f"{label}: paused, Pinterest refused the token ({a.auth_error})")
    if row.is_stuck(stuck_after):
        age = stats.format_duration(row.oldest_pending_age.total_seconds())  # type: ignore[union-attr]
        problems.append(f"{label}: oldest undelivered event is {age} old")
    return problems


def as_json(
    health: list[stats.AccountHealth],
    stuck_after: timedelta,
    problems: list[str],
    now: datetime,
) -> dict[str, Any]:
    """The figures for scripts: ISO 8601 times, ages in whole seconds."""
    accounts = []
    for row in health:
        a = row.account
        age = row.oldest_pending_age
        accounts.append(
            {
                "tenant": a.tenant,
                "ad_account_id": a.ad_account_id,
                "name": a.name,
                "active": a.active,
                "state": row.state,
                "pending": row.pending,
                "in_flight": row.in_flight,
                "failed": row.failed,
                "oldest_pending_at": _iso(row.oldest_pending_at),
                "oldest_pending_age_seconds": int(age.total_seconds()) if age is not None else None,
                "stuck": row.is_stuck(stuck_after),
                "auth_error": a.auth_error,
                "paused_until": _iso(a.paused_until) if row.state == "paused" else None,
                "pause_reason": a.pause_reason if row.state == "paused" else "",
                "last_success_at": _iso(a.last_success_at),
            }
        )
    return {
        "generated_at": _iso(now),
        "stuck_after_minutes": int(stuck_after.total_seconds() // 60),
        "healthy": not problems,
        "problems": problems,
        "accounts": accounts,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
