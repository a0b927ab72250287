"""Per-key throttling of ``POST events/``, at ``PINTEREST_CAPI["API_THROTTLE_RATE"]``."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from ..conf import app_settings
from ..models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key (not per IP: several servers of one shop share a key).

    The rate comes from the app's own setting, read on every request (so
    ``override_settings`` works), never from the shop's ``REST_FRAMEWORK``.
    The counts live in Django's default cache: share it between web processes
    for the limit to hold across them.
    """

    scope = "pinterest_capi_api_key"

    def __init__(self) -> None:  # the rate is read per request in allow_request
        pass

    def get_rate(self) -> str | None:
        return app_settings.API_THROTTLE_RATE

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not isinstance(request.auth, ApiKey):
            return None  # not a key: other permission checks refuse the request
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
