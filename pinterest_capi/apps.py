from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate
from django.utils.translation import gettext_lazy as _


class PinterestCapiConfig(AppConfig):
    name = "pinterest_capi"
    verbose_name = _("Pinterest Conversions API")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect signal → event wiring and register system checks.  No database
        # access here: the sweep schedule is created after migrate and by a command.
        from . import (
            checks,  # noqa: F401
            receivers,
        )

        receivers.connect_configured_signals()
        from .models import AdAccount
        from .outbox import delete_late_events

        post_delete.connect(delete_late_events, sender=AdAccount, dispatch_uid="pcapi_late_events")
        post_migrate.connect(_ensure_queue_triggers, sender=self)
        post_migrate.connect(_ensure_sweep_schedule, sender=self)


def _ensure_queue_triggers(using: str = "default", **kwargs: object) -> None:
    """After migrate: the outbox's queue triggers, which a table rebuild or syncdb leaves out."""
    from django.db import connections

    from . import queue_triggers

    queue_triggers.ensure(connections[using])


def _ensure_sweep_schedule(using: str = "default", **kwargs: object) -> None:
    """After migrate: create the periodic sweep schedule if django-q2 is installed (idempotent)."""
    from django.apps import apps

    if not apps.is_installed("django_q"):
        return
    from . import tasks

    tasks.ensure_schedule()
