"""The browser beacon: ``page_visit``, ``search`` and ``view_category`` with a browser-made id.

A storefront page served from a full-page cache is the same bytes for every visitor: an
event_id rendered into it would be shared by all of them (Pinterest would count one), and the
view that would record the server event never runs.  So for these three events the browser
makes the id (``pinterest_capi/beacon.js``: a UUID), calls the Pinterest Tag with it and posts
it here; this view records the server half through :func:`pinterest_capi.track` (outbox only,
no HTTP to Pinterest on this request), so both halves carry the same id.

What guards it, in order (each is set on the view, never taken from ``REST_FRAMEWORK``):

1. **same origin** (:class:`SameOriginBeacon`): the ``Origin`` header (else the
   ``Referer``'s origin) must be the request's own scheme and host, or be listed in
   ``BEACON_ALLOWED_ORIGINS``; otherwise 403.  Browsers set ``Origin`` on every POST and a
   page cannot forge it, so another site's page cannot post beacons from its visitors.
2. **throttle** per client IP (:class:`BeaconThrottle`, ``BEACON_THROTTLE_RATE``): 429.
3. **robots** (a ``BEACON_BOT_USER_AGENTS`` substring, or no User-Agent): 204, nothing
   recorded.
4. **validation** (:class:`BeaconSerializer`): 400 naming the field.
5. :func:`track` with the tenant from ``TENANT_RESOLVER``, the consent hook, and the client's
   IP, user agent and ``_epik`` click id from this request (as the middleware provides for
   every other event).  Recording is idempotent by event_id: a retried beacon writes nothing
   new.  202 when recorded (``duplicate`` says whether it already was), 204 when not recorded
   (consent refused, no active ad account).

**No CSRF token**, deliberately: ``APIView`` is csrf-exempt and the view's only authentication
class reads the session user without DRF's CSRF check, because (a) the beacon is anonymous and
changes no visitor state, it only records a measurement; (b) the origin check is what CSRF
protection itself relies on in modern browsers, and blocks the cross-site POSTs a token would;
(c) a token rendered into a cached page would be shared by every visitor of that page, which is
exactly the situation the beacon exists for. A non-browser client can forge ``Origin``; against
that the throttle bounds the volume and every event still needs a consenting, validated
request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.http import HttpRequest
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, permissions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from ..conf import app_settings
from ..context import click_id, client_ip
from ..events import normalise_custom_data
from ..exceptions import InvalidEventError
from ..models import OutboxEvent
from ..tenants import resolve_tenant
from ..tracking import track

BEACON_EVENTS = ("page_visit", "search", "view_category")
#: A browser-made id: 16 to 128 letters, digits and ``_ . : -`` (beacon.js sends
#: ``<event_name>-<uuid4>``).  Long enough that a guess cannot hit someone else's id.
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{15,127}$"
MAX_URL_LENGTH = 2000


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lowercased; "" when it has none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def own_origin(request: HttpRequest) -> str:
    """The origin this request was made to (``SECURE_PROXY_SSL_HEADER`` honoured)."""
    return f"{request.scheme}://{request.get_host()}".lower()


def allowed_origins(request: HttpRequest) -> set[str]:
    extra = app_settings.BEACON_ALLOWED_ORIGINS or []
    return {own_origin(request), *(str(o).rstrip("/").lower() for o in extra)}


class SameOriginBeacon(permissions.BasePermission):
    """Only pages of this site (or ``BEACON_ALLOWED_ORIGINS``) may post: else 403."""

    message = (
        "Cross-origin beacon refused: the Origin (or Referer) header must be this site or one "
        "of PINTEREST_CAPI['BEACON_ALLOWED_ORIGINS']."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        django_request = request._request
        origin = django_request.META.get("HTTP_ORIGIN", "")
        if not origin or origin == "null":
            origin = _origin(django_request.META.get("HTTP_REFERER", ""))
        return bool(origin) and origin.rstrip("/").lower() in allowed_origins(django_request)


class SessionUserWithoutCsrf(authentication.BaseAuthentication):
    """The shop's signed-in customer (Django's session user), read without a CSRF check.

    Only to add the customer's (hashed) email to the measurement: nothing is changed for the
    user, and cross-site posts are already refused by :class:`SameOriginBeacon`.  DRF's own
    ``SessionAuthentication`` would demand a CSRF token (see the module doc for why not).
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        user = getattr(request._request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        return (user, None) if getattr(user, "is_active", True) else None


class BeaconThrottle(SimpleRateThrottle):
    """``BEACON_THROTTLE_RATE`` per client IP (``CLIENT_IP_HEADER`` honoured, as elsewhere)."""

    scope = "pinterest_capi_beacon"

    def get_rate(self) -> str | None:
        return app_settings.BEACON_THROTTLE_RATE

    def get_cache_key(self, request: Request, view: Any) -> str:
        ident = client_ip(request._request) or self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def is_robot(user_agent: str) -> bool:
    """No User-Agent, or one containing a ``BEACON_BOT_USER_AGENTS`` entry (any case).

    Substrings rather than a regular expression: nothing to backtrack on in a header the
    client chooses, and entries like ``bot/`` catch "Googlebot/2.1" without "CUBOT" phones.
    """
    agent = user_agent.strip().lower()
    if not agent:
        return True
    return any(str(part).lower() in agent for part in app_settings.BEACON_BOT_USER_AGENTS or ())


class _StrictSerializer(serializers.Serializer):
    """Unknown keys are an error naming them (DRF ignores them by default)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: ["Unknown field; not accepted by the beacon."] for key in unknown}
                )
        return super().to_internal_value(data)


class BeaconCustomDataSerializer(_StrictSerializer):
    """The custom_data a storefront page may send (Pinterest's names and types)."""

    search_string = serializers.CharField(max_length=500, required=False)
    content_ids = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=50, required=False
    )
    content_name = serializers.CharField(max_length=200, required=False)
    content_category = serializers.CharField(max_length=200, required=False)
    content_brand = serializers.CharField(max_length=200, required=False)
    currency = serializers.RegexField(
        r"^[A-Za-z]{3}$",
        required=False,
        error_messages={"invalid": "A three-letter ISO-4217 code, e.g. GBP."},
    )
    value = serializers.DecimalField(
        max_digits=14, decimal_places=None, min_value=0, required=False
    )


class BeaconSerializer(_StrictSerializer):
    event_name = serializers.ChoiceField(
        choices=BEACON_EVENTS,
        error_messages={
            "invalid_choice": "The beacon records only page_visit, search and view_category; "
            "other events are recorded by the server."
        },
    )
    event_id = serializers.RegexField(
        EVENT_ID_PATTERN,
        error_messages={
            "invalid": "16 to 128 letters, digits, '_', '.', ':' or '-' (beacon.js sends "
            "<event_name>-<uuid>)."
        },
    )
    # A CharField: the origin check below is stricter than URLValidator, which also refuses
    # hosts without a dot (localhost-style names a site may well be served under).
    event_source_url = serializers.CharField(max_length=MAX_URL_LENGTH, required=False)
    custom_data = BeaconCustomDataSerializer(required=False)

    def validate_event_source_url(self, value: str) -> str:
        request = self.context["request"]._request
        origin = _origin(value)
        if not origin.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise serializers.ValidationError("Must be the http(s) URL of the page.")
        if origin not in allowed_origins(request):
            raise serializers.ValidationError("Must be a page of this site.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        custom = dict(attrs.get("custom_data") or {})
        if attrs["event_name"] == "search" and not custom.get("search_string", "").strip():
            raise serializers.ValidationError(
                {"custom_data": {"search_string": ["Required for a search event."]}}
            )
        try:
            attrs["custom_data"] = normalise_custom_data(custom)
        except InvalidEventError as exc:  # same rules as track(): name the field
            raise serializers.ValidationError({exc.field: [exc.message]}) from None
        return attrs


_ACCEPTED = inline_serializer(
    "BeaconAccepted",
    fields={
        "event_id": serializers.CharField(),
        "duplicate": serializers.BooleanField(
            help_text="True when this event_id was already recorded (nothing new written)."
        ),
    },
)


@extend_schema(
    summary="Record a browser event (page_visit, search, view_category) with its own id",
    request=BeaconSerializer,
    responses={
        202: OpenApiResponse(_ACCEPTED, description="Recorded (or already recorded)."),
        204: OpenApiResponse(
            description="Accepted, nothing recorded: a robot, consent refused, or no "
            "active ad account."
        ),
        400: OpenApiResponse(description="Invalid input; the body names each field."),
        403: OpenApiResponse(description="Not posted from a page of this site."),
        429: OpenApiResponse(description="Too many beacons from this address."),
    },
    auth=[],
    tags=["beacon"],
)
class BeaconView(APIView):
    """POST a page_visit, search or view_category made in the browser (see the module doc)."""

    authentication_classes = [SessionUserWithoutCsrf]
    permission_classes = [SameOriginBeacon]
    throttle_classes = [BeaconThrottle]
    parser_classes = [JSONParser]
    # drf-spectacular's schema whatever DEFAULT_SCHEMA_CLASS says: the class-level
    # extend_schema above builds on it (on a method it would build on the default class).
    schema = AutoSchema()

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> None:
        """Always the origin's 403 (DRF would say "credentials not provided" to anonymous
        visitors, who need none)."""
        raise exceptions.PermissionDenied(detail=message, code=code)

    def post(self, request: Request) -> Response:
        django_request: HttpRequest = request._request
        if is_robot(django_request.META.get("HTTP_USER_AGENT", "")):
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = BeaconSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        page_url = data.get("event_source_url") or self._referer(django_request)
        tenant = resolve_tenant(request=django_request)
        event_name, event_id = data["event_name"], data["event_id"]
        duplicate = OutboxEvent.objects.filter(
            account__tenant=tenant, event_name=event_name, event_id=event_id
        ).exists()
        try:
            rows = track(
                event_name,
                tenant=tenant,
                event_id=event_id,
                user_data=self._user_data(django_request, page_url),
                custom_data=data["custom_data"] or None,
                event_source_url=page_url or "",  # never this beacon's own URL
                request=django_request,
                browser_tag=False,  # the browser already called the Tag with this id
            )
        except InvalidEventError as exc:
            return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
        if not rows:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(
            {"event_id": event_id, "duplicate": duplicate}, status=status.HTTP_202_ACCEPTED
        )

    @staticmethod
    def _referer(request: HttpRequest) -> str | None:
        referer = request.META.get("HTTP_REFERER", "")
        if referer and len(referer) <= MAX_URL_LENGTH:
            if _origin(referer) in allowed_origins(request):
                return referer
        return None

    @staticmethod
    def _user_data(request: HttpRequest, page_url: str | None) -> dict[str, Any]:
        """The signed-in customer's email and id; the click id from the page's URL when the
        ``_epik`` cookie is not set yet (IP, user agent and the cookie come from ``track``)."""
        data: dict[str, Any] = {}
        user = getattr(request, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            data["em"] = getattr(user, "email", None) or None
            data["external_id"] = str(user.pk)
        if not click_id(request) and page_url:
            epik = parse_qs(urlsplit(page_url).query).get("epik", [""])[0].strip()
            if epik:
                data["click_id"] = epik[:500]
        return {k: v for k, v in data.items() if v}
