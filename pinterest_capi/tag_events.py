"""Server-recorded events handed to the page's Pinterest Tag, with the same ``event_id``.

Pinterest counts a conversion once when the browser Tag and the Conversions API send it with
the same event name and ``event_id``.  The server event is recorded by :func:`track` (often
from a signal, deep inside a POST that then redirects), and the Tag call must be rendered on
the page the visitor sees next.  So :func:`track` hands each web event it recorded to
:func:`queue_for_page`, and the ``{% pinterest_tag_events %}`` template tag takes them with
:func:`take_pending` and renders one ``pintrk('track', …)`` call per event.

Where the pending calls wait:

- in the visitor's **session** when the request has one that already exists or is being
  written anyway (a cart, a login, an order): the call survives the post-redirect-get step, so
  the thank-you page renders the checkout that the POST recorded;
- otherwise on the **request** itself (``request._pinterest_capi_tag_events``): a page rendered
  by the same request shows it.  When the response is done, the middleware
  (:func:`carry_over`) moves calls no page rendered into the session if the request created
  or changed one after all (a signup logs the new customer in after recording the event);
  visitors and API clients without a session never get one just for this.

A call is queued only once the database transaction that recorded the event has committed
(``transaction.on_commit``): an order that rolls back leaves no Tag call behind.  Calls are
taken once (a reloaded thank-you page does not fire again; Pinterest would deduplicate it
anyway), at most :data:`MAX_PENDING` wait, and calls older than :data:`MAX_AGE_SECONDS` are
dropped (the browser and server halves must arrive within Pinterest's dedup window).

Only ``custom_data`` reaches the Tag parameters (value, currency, order id, items, search
query): never ``user_data``, so no hashed or raw personal data is written into a page.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.http import HttpRequest

SESSION_KEY = "pinterest_capi_tag_events"
REQUEST_ATTR = "_pinterest_capi_tag_events"
MAX_PENDING = 20
MAX_AGE_SECONDS = 3600

#: The API's event names and how the Tag spells the same event (contract: "Deduplication").
TAG_EVENT_NAMES: dict[str, str] = {
    "checkout": "checkout",
    "add_to_cart": "addtocart",
    "page_visit": "pagevisit",
    "signup": "signup",
    "lead": "lead",
    "search": "search",
    "view_category": "viewcategory",
    "watch_video": "watchvideo",
    "custom": "custom",
}

# contents item keys -> the Tag's line_items keys.
_LINE_ITEM_KEYS = {
    "id": "product_id",
    "item_name": "product_name",
    "item_category": "product_category",
    "item_brand": "product_brand",
    "item_price": "product_price",
    "quantity": "product_quantity",
}


def _number(value: Any) -> float | int | None:
    """A decimal string from custom_data as a JSON number for the Tag (``"72.39"`` -> 72.39)."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite():
        return None
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def tag_params(custom_data: Mapping[str, Any] | None, event_name: str = "") -> dict[str, Any]:
    """The Tag's event data for an API event's (already normalised) ``custom_data``.

    value/currency/order_id keep their names, ``num_items`` is ``order_quantity``,
    ``search_string`` is ``search_query``, ``contents`` (or bare ``content_ids``) become
    ``line_items``, a lead's ``content_name`` is its ``lead_type``; other fields have no Tag
    counterpart and are left out.
    """
    data = dict(custom_data or {})
    params: dict[str, Any] = {}
    value = _number(data["value"]) if "value" in data else None
    if value is not None:
        params["value"] = value
    for key in ("currency", "order_id"):
        if data.get(key):
            params[key] = str(data[key])
    if isinstance(data.get("num_items"), int):
        params["order_quantity"] = data["num_items"]
    if data.get("search_string"):
        params["search_query"] = str(data["search_string"])
    items = []
    for item in data.get("contents") or []:
        line = {}
        for key, tag_key in _LINE_ITEM_KEYS.items():
            if key not in item:
                continue
            line[tag_key] = _number(item[key]) if key == "item_price" else item[key]
        if line:
            items.append(line)
    if not items:
        items = [{"product_id": str(i)} for i in data.get("content_ids") or []]
    if data.get("content_category") and not items:
        items = [{"product_category": str(data["content_category"])}]
    if items:
        params["line_items"] = items
    if event_name == "lead" and data.get("content_name"):
        params["lead_type"] = str(data["content_name"])
    return params


def pending_entry(event: Mapping[str, Any], *, now: float | None = None) -> dict[str, Any] | None:
    """What the page needs to fire ``event`` (an API event dict) in the Tag, or None.

    None for an event the Tag has no name for (``add_to_wishlist``, advertiser-defined names):
    those stay server-only.  The entry is plain JSON (it may be stored in the session).
    """
    tag_event = TAG_EVENT_NAMES.get(str(event.get("event_name")))
    if tag_event is None or not event.get("event_id"):
        return None
    return {
        "event_name": event["event_name"],
        "tag_event": tag_event,
        "event_id": str(event["event_id"]),
        "params": tag_params(event.get("custom_data"), str(event["event_name"])),
        "at": int(time.time() if now is None else now),
    }


def _session(request: HttpRequest) -> Any:
    """The session to keep calls in, or None: only one that exists or is being saved anyway."""
    session = getattr(request, "session", None)
    if session is None:
        return None
    if getattr(session, "session_key", None) or getattr(session, "modified", False):
        return session
    return None


def _append(request: HttpRequest, entry: dict[str, Any]) -> None:
    session = _session(request)
    if session is not None:
        pending = [e for e in session.get(SESSION_KEY, []) if isinstance(e, dict)]
        pending = _fresh([*pending, entry])
        session[SESSION_KEY] = pending
        return
    pending = getattr(request, REQUEST_ATTR, None)
    if pending is None:
        pending = []
        setattr(request, REQUEST_ATTR, pending)
    pending.append(entry)
    del pending[:-MAX_PENDING]


def _fresh(entries: list[dict[str, Any]], *, now: float | None = None) -> list[dict[str, Any]]:
    """The last MAX_PENDING entries younger than MAX_AGE_SECONDS, one per (event, id)."""
    now = time.time() if now is None else now
    seen: set[tuple[str, str]] = set()
    kept = []
    for entry in entries:
        key = (str(entry.get("event_name")), str(entry.get("event_id")))
        at = entry.get("at")
        if key in seen or not isinstance(at, int | float) or now - at > MAX_AGE_SECONDS:
            continue
        seen.add(key)
        kept.append(entry)
    return kept[-MAX_PENDING:]


def queue_for_page(
    request: HttpRequest, event: Mapping[str, Any], *, using: str | None = None
) -> None:
    """Queue the Tag call for ``event`` once the transaction that recorded it commits."""
    entry = pending_entry(event)
    if entry is None:
        return
    transaction.on_commit(lambda: _append(request, entry), using=using)


def carry_over(request: HttpRequest) -> None:
    """After the view: calls left on the request go to the session, if it is saved anyway."""
    pending = getattr(request, REQUEST_ATTR, None)
    if not pending:
        return
    session = _session(request)
    if session is None:
        return
    stored = [e for e in session.get(SESSION_KEY, []) if isinstance(e, dict)]
    session[SESSION_KEY] = _fresh([*stored, *pending])
    setattr(request, REQUEST_ATTR, [])


def take_pending(request: HttpRequest) -> list[dict[str, Any]]:
    """Every queued call of this request and session, oldest first; they are removed."""
    entries: list[dict[str, Any]] = []
    session = getattr(request, "session", None)
    if session is not None and SESSION_KEY in session:
        stored = session.pop(SESSION_KEY, [])
        entries.extend(e for e in stored if isinstance(e, dict))
    entries.extend(getattr(request, REQUEST_ATTR, None) or [])
    if hasattr(request, REQUEST_ATTR):
        setattr(request, REQUEST_ATTR, [])
    return _fresh(entries)
