"""Check an ad account's connection to Pinterest and say the outcome in words.

An operator who has just pasted a token wants to know now, not after the next
flush, whether Pinterest accepts it, and which Pinterest Tag id to paste in the
page (the browser Tag and the server events deduplicate on ``event_id`` only when
they belong to the same ad account).  So :func:`verify_account` makes the two
cheap calls the contract suggests (and saves the Tag id on the account when
Pinterest lists exactly one, for the ``{% pinterest_tag_base %}`` template tag):

1. ``GET /ad_accounts/{id}/conversion_tags``: checks the token and the account
   and gives the Tag ids;
2. ``POST /ad_accounts/{id}/events?test=true`` with ONE synthetic event at
   ``event_time=now``: Pinterest validates it but does not record it, which proves
   the token may *send* events, not only read Tags.

The synthetic event never touches the outbox: it is built and posted here, so no
worker ever sends it for real.  The outcome updates the account the way the
worker would for the same answer (a 401/403/404 flags ``auth_error``; a success
clears it and sets ``last_success_at``), so the admin's status is true right
after a check.  Nothing here raises for an API or network problem, and the token
never leaves this module's local variables (no logging, no result field).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from django.db.models.functions import Now
from django.views.decorators.debug import sensitive_variables

from . import client
from .delivery.policy import AUTH_REASONS
from .events import build_event
from .exceptions import ConfigurationError, InvalidEventError, TokenDecryptionError
from .models import AdAccount

logger = logging.getLogger("pinterest_capi.verification")

Level = Literal["success", "warning", "error"]

#: Marks the synthetic events, so they are recognisable in Pinterest's test-event tools.
VERIFY_EVENT_PREFIX = "pinterest_capi-verify-"


@dataclass(frozen=True)
class VerificationResult:
    """What a check found: a level for ``message_user``, the words, and the Tag ids seen."""

    ok: bool
    level: Level
    message: str
    status_code: int | None = None
    tag_ids: tuple[str, ...] = field(default_factory=tuple)


def synthetic_event() -> dict[str, Any]:
    """A valid ``page_visit`` at ``event_time=now`` with a documentation IP and our user agent.

    No personal data: IP address plus user agent is the lightest identifier the
    contract accepts, and 192.0.2.0/24 is reserved for documentation.
    """
    return build_event(
        "page_visit",
        user_data={
            "client_ip_address": "192.0.2.1",
            "client_user_agent": f"{client.USER_AGENT} (connection check)",
        },
        event_id=f"{VERIFY_EVENT_PREFIX}{uuid.uuid4().hex}",
    )


@sensitive_variables("token")
def verify_account(account: AdAccount) -> VerificationResult:
    """Ask Pinterest whether ``account`` works; record the answer on the account; never raise
    for an API, network or key problem."""
    try:
        token = account.get_token()
    except (TokenDecryptionError, ConfigurationError) as exc:
        reason = f"Token cannot be decrypted: {exc}."
        _flag_auth_problem(account, reason)
        return VerificationResult(
            False, "error", f"Token cannot be decrypted with the configured keys ({exc})."
        )

    tags = client.get_conversion_tags(account.ad_account_id, token)
    problem = _problem(account, tags)
    if problem is not None:
        return problem
    tag_list = _tags(tags.body)
    saved_tag = _remember_tag_id(account, tag_list)

    try:
        body = json.dumps({"data": [synthetic_event()]}, separators=(",", ":")).encode()
    except InvalidEventError as exc:  # our own event builder refused: a bug, say so plainly
        return VerificationResult(False, "error", f"Could not build the test event: {exc}")
    sent = client.post_events(account.ad_account_id, token, body, test_mode=True)
    problem = _problem(account, sent, during=" while sending the test event")
    if problem is not None:
        return problem
    rejection = _event_rejection(sent.body)
    if rejection:
        return VerificationResult(
            False,
            "warning",
            f"The token works, but Pinterest rejected the test event: {rejection}",
            sent.status_code,
            tuple(tag_id for tag_id, _ in tag_list),
        )

    AdAccount.objects.filter(pk=account.pk).update(
        auth_error="", auth_error_at=None, last_success_at=Now()
    )
    result = _ok_result(tag_list, sent.status_code)
    if saved_tag:
        result = replace(
            result, message=f"{result.message} Saved as this account's Tag id ({saved_tag})."
        )
    return result


def _remember_tag_id(account: AdAccount, tags: list[tuple[str, str]]) -> str:
    """Fill ``account.tag_id`` from the Tags Pinterest listed; returns the id saved, or "".

    One Tag: it is the one the page must load for deduplication, so it is saved (replacing a
    different id typed by hand, which cannot belong to this ad account).  Several: an id already
    chosen among them is kept; none chosen stays empty (the message lists them to pick from).
    """
    ids = [tag_id for tag_id, _ in tags if tag_id.isdigit() and len(tag_id) <= 32]
    if len(ids) != 1 or account.tag_id == ids[0]:
        return ""
    account.tag_id = ids[0]
    AdAccount.objects.filter(pk=account.pk).update(tag_id=ids[0])
    return ids[0]


def _problem(
    account: AdAccount, result: client.SendResult, during: str = ""
) -> VerificationResult | None:
    """The failure ``result`` stands for, in words (and flagged like the worker does), or None.

    A 422 on the events endpoint is not a failure here: its per-event answer is read after.
    """
    status = result.status_code
    if status is None:
        return VerificationResult(
            False, "error", f"Could not reach Pinterest{during}: {result.message}."
        )
    if 200 <= status < 300 or status == 422:
        return None
    detail = result.message
    if status in AUTH_REASONS:
        # The same words the worker writes into auth_error for the same answer.
        _flag_auth_problem(account, f"{AUTH_REASONS[status]}: {detail}" if detail else "")
        words = {
            401: f"Token rejected by Pinterest (401){during}: {detail}",
            403: f"This token has no access to ad account {account.ad_account_id} (403){during}.",
            404: f"Ad account not found (404): Pinterest does not know ad account "
            f"{account.ad_account_id}{during}.",
        }[status]
        return VerificationResult(False, "error", words, status)
    if status == 429:
        return VerificationResult(
            False,
            "warning",
            f"Pinterest is rate limiting this account (429){during}; try again in a minute.",
            status,
        )
    return VerificationResult(
        False, "warning", f"Pinterest answered HTTP {status}{during}: {detail}", status
    )


def _tags(body: Any) -> list[tuple[str, str]]:
    """(id, name) of each Tag in a conversion_tags answer (a list, or ``{"items": [...]}``)."""
    items = body.get("items") if isinstance(body, dict) else body
    if not isinstance(items, list):
        return []
    return [
        (str(item["id"]), str(item.get("name") or ""))
        for item in items
        if isinstance(item, dict) and item.get("id")
    ]


def _event_rejection(body: Any) -> str:
    """Pinterest's error for the one test event, or "" when it was processed."""
    if not isinstance(body, dict):
        return ""
    details = body.get("details") if isinstance(body.get("details"), dict) else body
    events = details.get("events")
    if not isinstance(events, list) or not events or not isinstance(events[0], dict):
        return str(body.get("message") or "") if body.get("code") else ""
    first = events[0]
    if first.get("status") == "processed":
        return ""
    return str(first.get("error_message") or body.get("message") or "failed without a message")


def _ok_result(tags: list[tuple[str, str]], status: int | None) -> VerificationResult:
    ids = tuple(tag_id for tag_id, _ in tags)
    if not tags:
        return VerificationResult(
            True,
            "warning",
            "OK — the token works and the test event was accepted, but this ad account has no "
            "Pinterest Tag yet: create one in Ads Manager so the browser Tag and these server "
            "events are deduplicated.",
            status,
        )
    listed = ", ".join(f"{tag_id} ({name})" if name else tag_id for tag_id, name in tags)
    if len(tags) == 1:
        words = f"OK — Pinterest Tag id {listed}: paste it in your page's Pinterest Tag base code."
    else:
        words = (
            f"OK — Pinterest Tag ids {listed}: paste the one this site uses in your page's "
            "Pinterest Tag base code."
        )
    return VerificationResult(True, "success", words, status, ids)


def _flag_auth_problem(account: AdAccount, reason: str) -> None:
    """Stop sending for the account, as the worker does when Pinterest refuses it."""
    reason = (reason or "Pinterest refused the token or the account")[:500]
    logger.warning("Ad account %s failed its connection check: %s", account.ad_account_id, reason)
    AdAccount.objects.filter(pk=account.pk).update(
        auth_error=reason, auth_error_at=Now(), last_error_at=Now(), last_error=reason
    )
