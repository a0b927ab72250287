"""Operations on ad accounts from the admin: verify the connection, pause and resume sending.

Each operation is one method per account, shared by a changelist action (several
accounts) and a POST-only button on the change page (one account).  Both go
through the admin's tenant-scoped queryset and permission checks: verify needs
``pinterest_capi.verify_adaccount`` and sight of the account, pause and resume
the change permission.  Verification itself lives in
:mod:`pinterest_capi.verification`; a pause is just a ``paused_until`` in the
future, which the worker's claim already skips.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from ... import verification
from ...models import AdAccount

VERIFY_PERMISSION = "pinterest_capi.verify_adaccount"

#: A manual pause lasts until someone resumes.  The claim only asks "is paused_until in the
#: future?", so a far date needs no new column and no change to the worker; year 3000 stays
#: clear of datetime's limits in every time zone.
MANUAL_PAUSE_UNTIL = datetime(3000, 1, 1, tzinfo=UTC)

#: Each check is two requests with their own timeouts: keep one admin request short.
MAX_VERIFY_PER_ACTION = 10

_LEVELS = {"success": messages.SUCCESS, "warning": messages.WARNING, "error": messages.ERROR}

OPERATIONS_HELP = _(
    "<b>Verify connection</b> asks Pinterest for this ad account's Tags and sends one test "
    "event (validated, not recorded): it shows the Tag id to paste in the page and clears a "
    "token error once Pinterest accepts the token. "
    "<b>Pause sending</b> holds this account's events until someone resumes: they are still "
    "recorded and wait in the outbox (a request already under way finishes). "
    "<b>Resume sending</b> clears any pause, manual or from rate limiting; the next flush "
    "sends what waited. A refused token is not a pause: save a new token, or verify once "
    "Pinterest accepts it again."
)


def is_manually_paused(account: AdAccount) -> bool:
    return account.paused_until is not None and account.paused_until >= MANUAL_PAUSE_UNTIL


class AccountOperationsMixin:
    """Verify / pause / resume for :class:`AdAccountAdmin` (a ModelAdmin)."""

    admin_site: Any
    opts: Any
    has_view_permission: Callable[..., bool]
    has_change_permission: Callable[..., bool]
    get_object: Callable[..., Any]
    log_change: Callable[..., Any]
    message_user: Callable[..., Any]
    _get_obj_does_not_exist_redirect: Callable[..., HttpResponse]

    def has_verify_permission(self, request: HttpRequest, obj: AdAccount | None = None) -> bool:
        """The verify permission, and sight of the account (its tenant) as well."""
        return request.user.has_perm(VERIFY_PERMISSION) and self.has_view_permission(request, obj)

    def _verify(self, request: HttpRequest, account: AdAccount) -> bool:
        result = verification.verify_account(account)
        self.message_user(request, f"{account}: {result.message}", _LEVELS[result.level])
        self.log_change(request, account, f"Verified connection: {result.message}")
        return True

    def _pause(self, request: HttpRequest, account: AdAccount) -> bool:
        if is_manually_paused(account):
            return False
        account.paused_until = MANUAL_PAUSE_UNTIL
        account.pause_reason = f"Paused by {request.user.get_username()}"
        account.save(update_fields=["paused_until", "pause_reason", "updated_at"])
        self.log_change(request, account, "Paused sending")
        return True

    def _resume(self, request: HttpRequest, account: AdAccount) -> bool:
        if account.paused_until is None and not account.pause_reason:
            return False
        account.paused_until = None
        account.pause_reason = ""
        account.save(update_fields=["paused_until", "pause_reason", "updated_at"])
        self.log_change(request, account, "Resumed sending (pause cleared)")
        return True

    # --- actions ----------------------------------------------------------------------------

    @admin.action(description=_("Verify connection with Pinterest"), permissions=["verify"])
    def verify_connection(self, request: HttpRequest, queryset: QuerySet[AdAccount]) -> None:
        accounts = list(queryset.order_by("pk")[: MAX_VERIFY_PER_ACTION + 1])
        for account in accounts[:MAX_VERIFY_PER_ACTION]:
            self._verify(request, account)
        if len(accounts) > MAX_VERIFY_PER_ACTION:
            self.message_user(
                request,
                _("Only the first %(count)d selected accounts were checked; select fewer.")
                % {"count": MAX_VERIFY_PER_ACTION},
                messages.WARNING,
            )

    @admin.action(
        description=_("Pause sending (events are kept until resumed)"), permissions=["change"]
    )
    def pause_sending(self, request: HttpRequest, queryset: QuerySet[AdAccount]) -> None:
        count = sum(self._pause(request, account) for account in queryset)
        if count:
            text = ngettext(
                "Paused %(count)d account: its events are recorded and wait until resumed.",
                "Paused %(count)d accounts: their events are recorded and wait until resumed.",
                count,
            ) % {"count": count}
            self.message_user(request, text, messages.SUCCESS)
        else:
            self.message_user(
                request, _("The selected accounts were already paused."), messages.INFO
            )

    @admin.action(description=_("Resume sending (clear pause)"), permissions=["change"])
    def clear_pause(self, request: HttpRequest, queryset: QuerySet[AdAccount]) -> None:
        # Per object, so each change is in the admin history with who did it.
        count = sum(self._resume(request, account) for account in queryset)
        if count:
            text = ngettext(
                "Pause cleared on %(count)d account; it is sent to at the next flush.",
                "Pause cleared on %(count)d accounts; they are sent to at the next flush.",
                count,
            ) % {"count": count}
            self.message_user(request, text, messages.SUCCESS)
        else:
            self.message_user(
                request, _("None of the selected accounts was paused."), messages.INFO
            )

    # --- buttons on the change page ---------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        opts = self.opts
        custom = [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(require_POST(view)),
                name=f"{opts.app_label}_{opts.model_name}_{name}",
            )
            for name, view in (
                ("verify", self.verify_view),
                ("pause", self.pause_view),
                ("resume", self.resume_view),
            )
        ]
        return custom + super().get_urls()

    def _operate(
        self,
        request: HttpRequest,
        object_id: str,
        allowed: Callable[[HttpRequest, AdAccount | None], bool],
        operation: Callable[[HttpRequest, AdAccount], bool],
        unchanged: str,
    ) -> HttpResponse:
        """Run ``operation`` on one account of the user's tenants, then back to its page."""
        if not allowed(request, None):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))  # None for another tenant's account
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not allowed(request, obj):
            raise PermissionDenied
        if not operation(request, obj):
            self.message_user(request, unchanged, messages.INFO)
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        )

    def verify_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._operate(request, object_id, self.has_verify_permission, self._verify, "")

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def pause(request: HttpRequest, account: AdAccount) -> bool:
            done = self._pause(request, account)
            if done:
                self.message_user(
                    request,
                    _("%(account)s paused: its events are recorded and wait until resumed.")
                    % {"account": account},
                    messages.SUCCESS,
                )
            return done

        return self._operate(
            request, object_id, self.has_change_permission, pause, _("Already paused.")
        )

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def resume(request: HttpRequest, account: AdAccount) -> bool:
            done = self._resume(request, account)
            if done:
                self.message_user(
                    request,
                    _("%(account)s resumed: the next flush sends what waited.")
                    % {"account": account},
                    messages.SUCCESS,
                )
            return done

        return self._operate(
            request, object_id, self.has_change_permission, resume, _("Not paused.")
        )

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: AdAccount | None = None,
    ) -> Any:
        may_change = obj is not None and self.has_change_permission(request, obj)
        paused = obj is not None and obj.paused_until is not None
        context.update(
            pcapi_can_verify=obj is not None and self.has_verify_permission(request, obj),
            pcapi_can_pause=may_change and not (obj is not None and is_manually_paused(obj)),
            pcapi_can_resume=may_change and paused,
        )
        return super().render_change_form(request, context, add, change, form_url, obj)
