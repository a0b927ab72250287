"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest

from .models import Category
from .services import get_cart


def cart(request: HttpRequest) -> dict[str, object]:
    """``cart_count`` for the header (never creates a cart just to count it), and the
    categories for the navigation (a lazy queryset: no query on pages that do not show it)."""
    current = get_cart(request) if hasattr(request, "session") else None
    return {
        "cart_count": current.item_count if current is not None else 0,
        "shop_categories": Category.objects.all(),
    }
