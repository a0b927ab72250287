"""``schema/``: the OpenAPI document of this API, wherever the shop mounted it."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from ... import __version__

SCHEMA_ROUTE = "schema/"


class SchemaView(SpectacularAPIView):
    """The document covers this API only (not the shop's own DRF views), at its real paths.

    Public: it describes endpoints, never data.  The paths are taken from where this
    view was reached (``/pinterest/api/v1/schema/`` → ``/pinterest/api/v1/…``), so the
    document is right whatever prefix the shop includes ``pinterest_capi.urls`` under.
    """

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

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        from .. import urls

        prefix = request.path_info.rsplit(SCHEMA_ROUTE, 1)[0].lstrip("/")
        self.patterns = [path(prefix, include(urls.documented_urlpatterns))]
        return super().get(request, *args, **kwargs)
