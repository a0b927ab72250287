"""``schema/``: the OpenAPI document of this API, wherever the shop mounted it."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from ... import __version__

# Where ``pinterest_capi.urls`` serves this view, below the shop's own prefix.
SCHEMA_ROUTE = "api/v1/schema/"


class SchemaView(SpectacularAPIView):
    """The document covers this app's endpoints only (the REST API and the browser beacon,
    not the shop's own DRF views), at their real paths.

    Public: it describes endpoints, never data.  The paths are taken from where this
    view was reached (``/pinterest/api/v1/schema/`` → ``/pinterest/…``), so the document
    is right whatever prefix the shop includes ``pinterest_capi.urls`` under.  ``schema =
    None`` keeps the view itself out of any document, ours or a shop's site-wide one.
    """

    schema = None

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []
    versioning_class = None
    custom_settings = {
        "TITLE": "django-pinterest-capi",
        "DESCRIPTION": "Record conversions for Pinterest's Conversions API (API key) and "
        "operate their delivery (staff).",
        "VERSION": __version__,
        "COMPONENT_SPLIT_REQUEST": True,
        "SCHEMA_PATH_PREFIX": r"/.*/api/v[0-9]+",
        # Three different "status" choice sets: each gets its own name in the document.
        "ENUM_NAME_OVERRIDES": {
            "EventStatusEnum": "pinterest_capi.models.EventStatus",
            "EventResultStatusEnum": "pinterest_capi.api.ingest.STATUSES",
            "AccountStateEnum": "pinterest_capi.api.serializers.ACCOUNT_STATES",
        },
    }

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        from ... import urls

        prefix = request.path_info.rsplit(SCHEMA_ROUTE, 1)[0].lstrip("/")
        self.patterns = [path(prefix, include(urls.documented_urlpatterns))]
        return super().get(request, *args, **kwargs)
