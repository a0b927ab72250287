"""Template tags for the Pinterest Tag, sharing ``event_id`` with the server events.

``{% load pinterest_capi %}``, then:

- ``{% pinterest_tag_base %}`` in ``<head>``: the Tag's base code for the tenant's ad account
  (``AdAccount.tag_id``): ``pintrk('load', …)`` and ``pintrk('page')``;
- ``{% pinterest_tag_events %}`` on every page (after the base code): one
  ``pintrk('track', '<event>', {…, event_id: '<id>'})`` per event that :func:`track` recorded
  for this visitor since the last page (see :mod:`pinterest_capi.tag_events`) — the checkout
  on the thank-you page, the add-to-cart on the cart page, the signup, the lead;
- ``{% pinterest_browser_event "page_visit" content_ids=… %}`` (also ``search`` with
  ``search_string=…`` and ``view_category`` with ``content_category=…``): an event whose id is
  made **in the browser** by ``pinterest_capi/beacon.js``, which calls the Tag and posts the
  same id to the beacon, so a full-page cache never reuses an id nor skips the server event.

Each renders nothing (and never raises) when the app is disabled, the tenant has no Tag id
(base code and track calls), or the consent hook says no.  Every value reaches the page as
JSON with ``<``, ``>`` and ``&`` escaped (as ``json_script`` does), so no value can close the
``<script>`` element.  All take an optional ``nonce=`` for a Content-Security-Policy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from .. import consent, tag_events
from ..conf import app_settings
from ..events import normalise_custom_data, sha256_hex
from ..exceptions import InvalidEventError
from ..models import AdAccount
from ..tenants import resolve_tenant

logger = logging.getLogger(__name__)
register = template.Library()

TAG_SCRIPT_URL = "https://s.pinimg.com/ct/core.js"
NOSCRIPT_URL = "https://ct.pinterest.com/v3/"
#: Events the browser makes the id of (and posts to the beacon); the others are server-made.
BROWSER_EVENTS = ("page_visit", "search", "view_category")
_ACCOUNT_ATTR = "_pinterest_capi_tag_account"
_BEACON_SCRIPT_ATTR = "_pinterest_capi_beacon_script"
_JSON_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}

# The Pinterest Tag's loader, as Pinterest publishes it (only the script URL is ours to set).
_LOADER = (
    "!function(e){if(!window.pintrk){window.pintrk=function(){"
    "window.pintrk.queue.push(Array.prototype.slice.call(arguments))};var n=window.pintrk;"
    'n.queue=[],n.version="3.0";var t=document.createElement("script");t.async=!0,t.src=e;'
    'var r=document.getElementsByTagName("script")[0];r.parentNode.insertBefore(t,r)}}'
)


def js(value: Any) -> SafeString:
    """``value`` as a JavaScript literal that is safe inside ``<script>`` (JSON, escaped)."""
    text = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=True, separators=(",", ":"))
    return mark_safe(text.translate(_JSON_ESCAPES))


def _request(context: template.Context) -> HttpRequest | None:
    request = context.get("request")
    return request if isinstance(request, HttpRequest) else None


def _script(body: str, nonce: str | None) -> SafeString:
    if nonce:
        return format_html('<script nonce="{}">{}</script>', nonce, mark_safe(body))
    return format_html("<script>{}</script>", mark_safe(body))


def tag_account(request: HttpRequest) -> tuple[str, str] | None:
    """(tenant, Tag id) for this request: the first active account of the tenant with a Tag id.

    Looked up once per request.  A tenant with several ad accounts loads one Tag: the one of
    its oldest active account that has a Tag id.
    """
    if hasattr(request, _ACCOUNT_ATTR):
        return getattr(request, _ACCOUNT_ATTR)
    found = None
    try:
        tenant = resolve_tenant(request=request)
        tag_id = (
            AdAccount.objects.for_tenant(tenant)
            .active()
            .exclude(tag_id="")
            .order_by("pk")
            .values_list("tag_id", flat=True)
            .first()
        )
        if tag_id:
            found = (tenant, tag_id)
    except Exception:  # a template must render whatever happens to the lookup
        logger.exception("Pinterest Tag id lookup failed; the Tag is not rendered.")
    setattr(request, _ACCOUNT_ATTR, found)
    return found


def _consent(request: HttpRequest, event_name: str, tenant: str) -> consent.Consent:
    return consent.ask_consent(request=request, event_name=event_name, tenant=tenant)


@register.simple_tag(takes_context=True)
def pinterest_tag_base(context: template.Context, nonce: str | None = None) -> SafeString | str:
    """The Tag's base code for the tenant's Tag id, or "" (disabled, no Tag id, no consent).

    The consent hook is asked with ``event_name="page_visit"`` (the base code's
    ``pintrk('page')`` is a page visit).  A ``Consent`` with limited data processing adds
    Pinterest's ``pintrk('set', {opt_out_type: 'LDP', st, country})`` with hashed values.
    No enhanced-match email is rendered: a page may be cached and shown to someone else.
    """
    request = _request(context)
    if request is None or not app_settings.ENABLED:
        return ""
    found = tag_account(request)
    if found is None:
        return ""
    tenant, tag_id = found
    decision = _consent(request, "page_visit", tenant)
    if not decision.allowed:
        return ""
    lines = [f"{_LOADER}({js(TAG_SCRIPT_URL)});", f"pintrk('load',{js(tag_id)});"]
    if decision.limited_data_processing:
        ldp = {
            "opt_out_type": consent.LDP,
            "st": sha256_hex((decision.state or consent.LDP_DEFAULT_STATE).strip().lower()),
            "country": sha256_hex(
                (decision.country or consent.LDP_DEFAULT_COUNTRY).strip().lower()
            ),
        }
        lines.append(f"pintrk('set',{js(ldp)});")
    lines.append("pintrk('page');")
    pixel = f"{NOSCRIPT_URL}?{urlencode({'event': 'init', 'tid': tag_id, 'noscript': '1'})}"
    return format_html(
        '{}\n<noscript><img height="1" width="1" style="display:none" alt="" src="{}"></noscript>',
        _script("\n".join(lines), nonce),
        pixel,
    )


def track_call(entry: Mapping[str, Any]) -> str:
    """``pintrk('track', '<tag event>', {…params, event_id})`` for a pending entry."""
    params = {**dict(entry.get("params") or {}), "event_id": str(entry["event_id"])}
    return f"pintrk('track',{js(str(entry['tag_event']))},{js(params)});"


@register.simple_tag(takes_context=True)
def pinterest_tag_events(context: template.Context, nonce: str | None = None) -> SafeString | str:
    """The Tag calls of the events the server recorded for this visitor (taken once).

    They are taken even when nothing is rendered (no Tag id, no consent), so they do not pile
    up in the session; each is rendered only if the hook allows its event name.
    """
    request = _request(context)
    if request is None:
        return ""
    pending = tag_events.take_pending(request)
    if not pending or not app_settings.ENABLED:
        return ""
    found = tag_account(request)
    if found is None:
        return ""
    tenant = found[0]
    calls = [
        track_call(entry)
        for entry in pending
        if _consent(request, str(entry.get("event_name")), tenant).allowed
    ]
    return _script("\n".join(calls), nonce) if calls else ""


def _beacon_url() -> str | None:
    try:
        return reverse("pinterest_capi:beacon")
    except NoReverseMatch:
        logger.warning(
            "{%% pinterest_browser_event %%} needs the beacon URL: add "
            'path("pinterest/", include("pinterest_capi.urls")) to your URLconf.'
        )
        return None


@register.simple_tag(takes_context=True)
def pinterest_browser_event(
    context: template.Context, event_name: str, nonce: str | None = None, **custom_data: Any
) -> SafeString | str:
    """Data for ``beacon.js``: an event whose id the browser makes (page_visit, search,
    view_category), and the script itself the first time on a page.

    Keyword arguments are the event's ``custom_data`` (``search_string``, ``content_ids``,
    ``content_category``, ``content_name``, ``content_brand``, ``value``, ``currency``),
    normalised as :func:`track` would; the Tag's parameters are derived from them here, so the
    script only adds the id.  Rendered without a Tag id too: the server event is sent anyway.
    """
    request = _request(context)
    if request is None or not app_settings.ENABLED:
        return ""
    if event_name not in BROWSER_EVENTS:
        logger.warning("pinterest_browser_event: %r is not one of %s", event_name, BROWSER_EVENTS)
        return ""
    if isinstance(custom_data.get("content_ids"), str | int):  # one product: no list in templates
        custom_data["content_ids"] = [custom_data["content_ids"]]
    try:
        custom = normalise_custom_data({k: v for k, v in custom_data.items() if v is not None})
    except InvalidEventError as exc:
        logger.warning("pinterest_browser_event %s not rendered: %s", event_name, exc)
        return ""
    try:
        tenant = resolve_tenant(request=request)
    except Exception:
        logger.exception("pinterest_browser_event: the tenant resolver failed")
        return ""
    if not _consent(request, event_name, tenant).allowed:
        return ""
    url = _beacon_url()
    if url is None:
        return ""
    spec = {
        "event_name": event_name,
        "tag_event": tag_events.TAG_EVENT_NAMES[event_name],
        "custom_data": custom,
        "tag_params": tag_events.tag_params(custom, event_name),
    }
    data = format_html(
        '<script type="application/json" data-pinterest-capi-event>{}</script>', js(spec)
    )
    if getattr(request, _BEACON_SCRIPT_ATTR, False):
        return data
    setattr(request, _BEACON_SCRIPT_ATTR, True)
    attrs = {"src": static("pinterest_capi/beacon.js"), "data-beacon-url": url}
    if nonce:
        attrs["nonce"] = nonce
    script = format_html(
        "<script {} defer></script>",
        mark_safe(" ".join(format_html('{}="{}"', k, v) for k, v in attrs.items())),
    )
    return format_html("{}\n{}", data, script)
