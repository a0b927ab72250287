"""Pieces the three admins share: read-only behaviour, colour-coded labels, small helpers."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

ADMIN_CSS = {"all": ["pinterest_capi/admin.css"]}


class ReadOnlyAdminMixin:
    """Rows written by the outbox and the delivery layer are records, not forms.

    Nobody adds or edits them in the admin (edits would bypass the services and
    their invariants); deleting is left to superusers, for clean-ups.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)


class ReadOnlyInlineMixin:
    """An inline that only shows rows; visible to whoever may view the parent."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The through model has no permissions of its own worth granting separately.
        parent_admin = self.admin_site._registry.get(self.parent_model)  # type: ignore[attr-defined]
        if parent_admin is None:
            return False
        return parent_admin.has_view_permission(request, obj)


def badge(kind: str, value: str, label: Any) -> SafeString:
    """A colour-coded label; the colour comes from CSS keyed on ``kind`` and ``value``."""
    return format_html('<span class="pcapi-badge pcapi-{}-{}">{}</span>', kind, value, label)


def short(text: str, length: int = 80) -> str:
    """One line, cut to ``length`` characters, for changelist columns."""
    return Truncator(" ".join((text or "").split())).chars(length)


def pre(text: str) -> SafeString:
    """Text in a <pre> block, escaped."""
    return format_html('<pre class="pcapi-pre">{}</pre>', text)


def pretty_json(text: str) -> SafeString:
    """Stored JSON text indented for reading; text that is not JSON is shown as it is."""
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        pretty = text
    return pre(pretty)
