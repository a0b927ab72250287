"""The changelist-wide resend: "Resend every failed event matching the current filter".

The "Resend selected" action works on one page of rows inside the request.
After an outage there may be 100,000 failed events; requeueing them belongs in
the background, in batches.  The flow:

1. The changelist shows a button (users with the resend permission) linking to
   ``resend-matching/`` with the changelist's current query string.
2. That page rebuilds the changelist from the same parameters (so tenant
   scoping, filters and search are exactly the changelist's), counts the
   failed rows among them and asks for confirmation with that count.
3. The confirmed POST enqueues :func:`pinterest_capi.tasks.requeue_matching_task`
   with the filter, says "Requeueing N failed events in the background", and
   keeps the job id in the operator's session.
4. The task requeues in primary-key ranges (:func:`pinterest_capi.outbox.requeue_matching`)
   and writes its progress and result to the cache (shared by web and worker,
   as the flush nudge already needs).  Each later changelist load of that
   operator reports finished jobs once ("N failed events requeued") and
   running ones with their progress.

Selecting "all N events" across pages and running the "Resend selected" action
leads to the same confirmation page instead of one huge UPDATE in the request.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from .. import tasks
from ..models import EventStatus

#: Session key: the background requeues this operator started and has not been told about.
SESSION_JOBS_KEY = "pinterest_capi_requeue_jobs"


def _n(count: int) -> str:
    return number_format(count, force_grouping=True)


class ResendMatchingMixin:
    """Adds the "resend every failed event matching the filter" flow to the event admin.

    Expects ``has_resend_permission(request, obj=None)`` on the admin (the
    event admin's, which also applies tenant rules) and the usual ModelAdmin.
    """

    resend_matching_template = "admin/pinterest_capi/outboxevent/resend_matching_confirmation.html"

    # --- URLs -----------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        opts = self.opts  # type: ignore[attr-defined]
        custom = [
            path(
                "resend-matching/",
                self.admin_site.admin_view(self.resend_matching_view),  # type: ignore[attr-defined]
                name=f"{opts.app_label}_{opts.model_name}_resend_matching",
            )
        ]
        # Before the ModelAdmin's own patterns, whose "<path:object_id>/" would match first.
        return custom + super().get_urls()  # type: ignore[misc]

    def resend_matching_url(self, params: QueryDict | None = None) -> str:
        """The confirmation page's URL for the changelist parameters ``params``."""
        opts = self.opts  # type: ignore[attr-defined]
        base = reverse(f"admin:{opts.app_label}_{opts.model_name}_resend_matching")
        query = params.urlencode() if params else ""
        return f"{base}?{query}" if query else base

    def _changelist_url(self) -> str:
        opts = self.opts  # type: ignore[attr-defined]
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")

    # --- the confirmation page and the enqueue --------------------------------------------

    def resend_matching_view(self, request: HttpRequest) -> HttpResponse:
        """GET: confirmation page with the count; POST (confirm=yes): enqueue the requeue."""
        return require_http_methods(["GET", "POST"])(self._resend_matching)(request)

    def _resend_matching(self, request: HttpRequest) -> HttpResponse:
        if not (
            self.has_view_permission(request)  # type: ignore[attr-defined]
            and self.has_resend_permission(request)  # type: ignore[attr-defined]
        ):
            raise PermissionDenied
        try:
            # The changelist itself, from the same GET parameters: same scoping, filters, search.
            cl = self.get_changelist_instance(request)  # type: ignore[attr-defined]
        except IncorrectLookupParameters:
            return HttpResponseRedirect(self._changelist_url() + "?e=1")
        back = self._changelist_url() + cl.get_query_string()
        failed = cl.queryset.filter(status=EventStatus.FAILED)
        count = failed.count()
        if not count:
            self.message_user(  # type: ignore[attr-defined]
                request,
                _("No failed event matches the current filter; nothing to requeue."),
                messages.WARNING,
            )
            return HttpResponseRedirect(back)
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            job_id = tasks.enqueue_requeue_matching(failed, matched=count)
            jobs = list(request.session.get(SESSION_JOBS_KEY) or [])
            jobs.append({"id": job_id, "matched": count})
            request.session[SESSION_JOBS_KEY] = jobs
            self.message_user(  # type: ignore[attr-defined]
                request,
                ngettext(
                    "Requeueing %(count)s failed event in the background; "
                    "the result is shown on this list when it is done.",
                    "Requeueing %(count)s failed events in the background; "
                    "the result is shown on this list when it is done.",
                    count,
                )
                % {"count": _n(count)},
                messages.INFO,
            )
            return HttpResponseRedirect(back)
        opts = self.opts  # type: ignore[attr-defined]
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": _("Resend failed events matching the filter"),
            "subtitle": None,
            "opts": opts,
            "app_label": opts.app_label,
            "count": count,
            "count_display": _n(count),
            "active_filters": self._describe_filters(cl),
            "search_term": cl.query,
            "back_url": back,
            "form_url": self.resend_matching_url(request.GET),
        }
        return TemplateResponse(request, self.resend_matching_template, context)

    @staticmethod
    def _describe_filters(cl: Any) -> list[tuple[str, str]]:
        """(filter title, chosen value) of each sidebar filter in use, for the confirmation."""
        described = []
        for spec in cl.filter_specs:
            if not any(param in cl.params for param in spec.expected_parameters()):
                continue
            chosen = [str(choice["display"]) for choice in spec.choices(cl) if choice["selected"]]
            if not chosen:  # e.g. a hand-written date range that is none of the links
                chosen = [
                    f"{param}={cl.params[param]}"
                    for param in spec.expected_parameters()
                    if param in cl.params
                ]
            described.append((str(spec.title), ", ".join(chosen)))
        return described

    # --- reporting back -------------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self.report_requeue_jobs(request)
        context = {
            "pcapi_can_resend_matching": self.has_resend_permission(request),  # type: ignore[attr-defined]
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)  # type: ignore[misc]

    def report_requeue_jobs(self, request: HttpRequest) -> None:
        """Report this operator's background requeues: finished ones once, others each time."""
        session = getattr(request, "session", None)
        jobs = session.get(SESSION_JOBS_KEY) if session is not None else None
        if not jobs:
            return
        still_running = []
        for job in jobs:
            state = tasks.requeue_job_state(job["id"]) or {"state": "lost"}
            matched = _n(int(job.get("matched") or 0))
            requeued = int(state.get("requeued") or 0)
            if state["state"] == "done":
                text = ngettext(
                    "Background requeue done: %(count)s failed event requeued "
                    "(%(matched)s matched when you confirmed).",
                    "Background requeue done: %(count)s failed events requeued "
                    "(%(matched)s matched when you confirmed).",
                    requeued,
                ) % {"count": _n(requeued), "matched": matched}
                level = messages.SUCCESS
            elif state["state"] == "error":
                text = _(
                    "Background requeue stopped after %(count)s of %(matched)s events: %(error)s. "
                    "Starting it again requeues the events still failed."
                ) % {"count": _n(requeued), "matched": matched, "error": state.get("error")}
                level = messages.ERROR
            elif state["state"] == "lost":
                text = _(
                    "The result of a background requeue of %(matched)s events is no longer "
                    "available; see the worker's log."
                ) % {"matched": matched}
                level = messages.WARNING
            else:
                still_running.append(job)
                if state["state"] == "queued":
                    text = _("Requeue of %(matched)s failed events is waiting for a worker.") % {
                        "matched": matched
                    }
                else:
                    text = _(
                        "Requeueing in the background: %(count)s of %(matched)s events so far."
                    ) % {"count": _n(requeued), "matched": matched}
                level = messages.INFO
            self.message_user(request, text, level)  # type: ignore[attr-defined]
        session[SESSION_JOBS_KEY] = still_running
