"""The request being served, for recording code that runs without one in hand.

Signals rarely carry the request; the middleware keeps it in a context
variable so a receiver can still read the client's IP address, user agent,
page URL and Pinterest click id.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest

from .conf import app_settings

_current_request: ContextVar[HttpRequest | None] = ContextVar(
    "pinterest_capi_request", default=None
)


def set_current_request(request: HttpRequest | None) -> Any:
    return _current_request.set(request)


def reset_current_request(token: Any) -> None:
    _current_request.reset(token)


def get_current_request() -> HttpRequest | None:
    return _current_request.get()


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``CLIENT_IP_HEADER`` (first hop) when configured, else REMOTE_ADDR."""
    header = app_settings.CLIENT_IP_HEADER
    if header:
        value = request.META.get(header, "")
        if value:
            return value.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "") or ""


def click_id(request: HttpRequest) -> str:
    """Pinterest's click id: the ``epik`` URL parameter first, then the first-party cookie."""
    return (
        request.GET.get("epik", "") or request.COOKIES.get(app_settings.CLICK_ID_COOKIE, "") or ""
    ).strip()


def request_user_data(request: HttpRequest) -> dict[str, str]:
    """user_data fields a web request provides: IP, user agent, click id."""
    data = {
        "client_ip_address": client_ip(request),
        "client_user_agent": request.META.get("HTTP_USER_AGENT", ""),
        "click_id": click_id(request),
    }
    return {k: v for k, v in data.items() if v}
