"""``Authorization: Bearer pcapi_…``: the per-tenant API key of a server-side caller."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .. import apikeys
from ..models import ApiKey

KEYWORD = "Bearer"


class ApiKeyPrincipal:
    """``request.user`` for a key: authenticated, not a Django user, not staff.

    DRF needs *some* user object; this one carries the tenant so views never
    confuse a key with a staff session (which has model permissions).
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.tenant = api_key.tenant
        self.pk = None

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate ``Authorization: Bearer <key>``; any other scheme is left to others.

    Unknown, malformed and revoked keys all get the same 401, so an answer never
    tells which prefixes exist.
    """

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("Authorization header: give “Bearer <API key>” (one key, no spaces).")
            )
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key.")) from None
        api_key = apikeys.check_key(raw)
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="pinterest_capi"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """The key as an OpenAPI HTTP bearer security scheme."""

    target_class = "pinterest_capi.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pcapi_<prefix>_<secret>",
            "description": "A tenant's API key, made in the admin (Pinterest CAPI › API keys).",
        }
