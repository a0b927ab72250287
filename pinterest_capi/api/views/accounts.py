"""``ops/accounts/``: each ad account's queue and state, for monitoring scripts."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ...models import AdAccount
from ...permissions import request_tenants, scope_queryset
from ...stats.health import account_health
from ..serializers import AccountFilterSerializer, AccountHealthSerializer
from .base import StaffViewMixin
from .events import _DENIED


@extend_schema(
    summary="Ad account health (staff)",
    description="Pending / in-flight / failed counts, pause and token state, last "
    "success and error of each of the user's accounts. Never the token.",
    parameters=[AccountFilterSerializer],
    responses={200: AccountHealthSerializer(many=True), 400: OpenApiResponse(), **_DENIED},
    tags=["operations"],
)
class AccountHealthView(StaffViewMixin, APIView):
    """The figures of ``pinterest_capi_status``: one GROUP BY over the status index."""

    required_permissions = {"GET": ["pinterest_capi.view_adaccount"]}

    def get(self, request: Request) -> Response:
        filters = AccountFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        accounts = scope_queryset(AdAccount.objects.all(), request_tenants(request))
        if "tenant" in filters.validated_data:
            accounts = accounts.filter(tenant=filters.validated_data["tenant"])
        return Response(AccountHealthSerializer(account_health(accounts), many=True).data)
