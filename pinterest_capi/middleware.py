"""Request middleware: makes the request visible to recording code, keeps ``_epik``.

Add ``"pinterest_capi.middleware.PinterestRequestMiddleware"`` to MIDDLEWARE.
When a visitor arrives from a Pinterest ad the URL carries ``epik``; the
middleware stores it as a first-party cookie so later conversions (checkout
several pages on) still carry the click id.  It also keeps the Pinterest Tag calls of events
recorded during a request that no page rendered (a POST that redirects) for the next page:
see :func:`pinterest_capi.tag_events.carry_over`.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from . import tag_events
from .conf import app_settings
from .context import reset_current_request, set_current_request


class PinterestRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = set_current_request(request)
        try:
            response = self.get_response(request)
        finally:
            reset_current_request(token)
        # Tag calls of events recorded here that no page showed: keep them for the next page.
        tag_events.carry_over(request)
        epik = request.GET.get("epik", "").strip()
        cookie = app_settings.CLICK_ID_COOKIE
        if epik and request.COOKIES.get(cookie) != epik:
            response.set_cookie(
                cookie,
                epik,
                max_age=int(app_settings.CLICK_ID_COOKIE_DAYS) * 86400,
                samesite="Lax",
                secure=request.is_secure(),
                httponly=False,  # the Pinterest Tag reads it too
            )
        return response
