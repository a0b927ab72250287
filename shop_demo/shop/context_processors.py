"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest

from .services import get_cart


def cart(request: HttpRequest) -> dict[str, int]:
    """``cart_count`` for the header; never creates a cart just to count it."""
    current = get_cart(request) if hasattr(request, "session") else None
    return {"cart_count": current.item_count if current is not None else 0}
