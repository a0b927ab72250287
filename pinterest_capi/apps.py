from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PinterestCapiConfig(AppConfig):
    name = "pinterest_capi"
    verbose_name = _("Pinterest Conversions API")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect signal → event wiring and register system checks.  No database
        # access here: the sweep schedule is created by a migration/command, not on start.
        from . import (
            checks,  # noqa: F401
            receivers,
        )

        receivers.connect_configured_signals()
