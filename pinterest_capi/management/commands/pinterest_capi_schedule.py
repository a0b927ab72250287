"""``manage.py pinterest_capi_schedule``: create the periodic sweep schedule (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from pinterest_capi import tasks


class Command(BaseCommand):
    help = (
        "Create or update the django-q2 schedule that sweeps the outbox every "
        "SWEEP_INTERVAL_MINUTES. Safe to run on every deploy; migrate runs it too."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        schedule, created = tasks.ensure_schedule()
        verb = "Created" if created else "Updated"
        self.stdout.write(
            f"{verb} schedule {schedule.name!r}: {schedule.func} every {schedule.minutes} min."
        )
