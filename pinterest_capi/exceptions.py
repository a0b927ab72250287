"""One exception hierarchy for the app.

Configuration problems subclass :class:`ImproperlyConfigured` so Django's
usual tooling reports them; everything raised at run time derives from
:class:`PinterestCapiError`.  No exception carries an access token.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class PinterestCapiError(Exception):
    """Root of the app's run-time errors."""


class InvalidEventError(PinterestCapiError, ValueError):
    """An event cannot be sent as given; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class MissingIdentifierError(InvalidEventError):
    """The event has no way to match a user (no email, MAIDs, or IP + user agent).

    Raised by ``track()`` like any invalid input; the signal receivers treat it
    as "nothing to send" (an anonymous visitor without a request, say) and skip
    the event quietly.
    """


class TokenDecryptionError(PinterestCapiError):
    """A stored token cannot be decrypted with any configured key."""


class NoActiveAccountError(PinterestCapiError):
    """The tenant has no active ad account to record events for."""


class ConfigurationError(ImproperlyConfigured):
    """A PINTEREST_CAPI setting is missing or wrong; the message names the key."""
