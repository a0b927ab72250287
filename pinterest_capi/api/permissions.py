"""Who may call what: an API key for ingestion; staff with the admin's permissions for ops."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from ..models import ApiKey


class HasApiKey(BasePermission):
    """The request was authenticated by an active :class:`ApiKey` (not a user session)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ApiKey)


class StaffWithModelPermissions(BasePermission):
    """Active staff holding every Django permission the view names for the method.

    ``view.required_permissions`` maps an HTTP method to permission names, the same
    ones the admin checks (``pinterest_capi.view_outboxevent``, ``…resend_outboxevent``);
    tenant scoping is applied by the views' querysets on top of this.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        required = getattr(view, "required_permissions", {}).get(request.method, None)
        if required is None:
            return False
        return user.has_perms(required)
