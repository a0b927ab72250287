"""The app a django-allauth site installs to record sign-ups as Pinterest events."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PinterestCapiAllauthConfig(AppConfig):
    """Maps ``allauth.account.signals.user_signed_up`` to the standard signup mapper.

    allauth sends it with ``request`` and ``user`` (and ``sociallogin`` for a social sign-up),
    which is what :func:`pinterest_capi.mappers.signup_from_user` reads: event id
    ``signup-<user pk>``, the user's hashed email and names, and the visitor's IP address,
    user agent and click id from the request.  ``pinterest_capi.receivers`` connects it like
    any ``SIGNALS`` entry.
    """

    name = "pinterest_capi.contrib.allauth"
    label = "pinterest_capi_allauth"  # "allauth" is allauth's own label
    verbose_name = _("Pinterest Conversions API for django-allauth")

    pinterest_capi_signals = {
        "allauth.account.signals.user_signed_up": "pinterest_capi.mappers.signup_from_user",
    }
