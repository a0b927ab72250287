"""The base of every view: all DRF policies set here, none taken from ``REST_FRAMEWORK``.

A shop may set global DRF defaults for its own API (token auth, a browsable renderer,
page-number pagination, a custom exception handler, another schema class); this app's
endpoints must answer the same whatever they are, so each policy is named explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import authentication, views
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

from ..authentication import ApiKeyAuthentication
from ..permissions import HasApiKey, StaffWithModelPermissions
from ..throttling import ApiKeyRateThrottle


class AppAPIViewMixin:
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = DefaultContentNegotiation
    versioning_class = None
    throttle_classes: list[type] = []
    filter_backends: list[type] = []
    pagination_class = None
    schema = AutoSchema()

    def get_exception_handler(self) -> Callable[..., Any]:
        return views.exception_handler


class ApiKeyViewMixin(AppAPIViewMixin):
    """For trusted server-side callers with a tenant's API key."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    throttle_classes = [ApiKeyRateThrottle]


class StaffViewMixin(AppAPIViewMixin):
    """For staff users: HTTP basic auth (scripts) or the admin's session (CSRF applies)."""

    authentication_classes = [
        authentication.BasicAuthentication,
        authentication.SessionAuthentication,
    ]
    permission_classes = [StaffWithModelPermissions]
    required_permissions: dict[str, list[str]] = {}
