"""The Pinterest endpoints the sandbox speaks: events and conversion_tags, with Pinterest's auth.

Pure request → reply logic (no sockets): the HTTP handler in ``server.py`` feeds it the method,
path, headers and body and carries out the timing side of a fault (latency, hold, drip, drop).

The events endpoint is the benchmarks' hot path (1,000-event batches, as fast as a flusher can
send them): a batch of valid, clean events is recognised by :mod:`.fastcheck` without building a
dict, every other body takes the reference path (stdlib ``json`` and :mod:`.validation`), and
the per-event results are written from pieces encoded once by the stdlib's ``json``.  Either
way the answers are the reference path's, byte for byte.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import fastcheck
from .faults import Fault, error_body
from .ledger import EventBatch
from .validation import OK, SchemaError, check_body, check_events

if TYPE_CHECKING:  # pragma: no cover
    from .server import SandboxServer

_EVENTS = re.compile(r"/v5/ad_accounts/([^/]*)/events/?")
_TAGS = re.compile(r"/v5/ad_accounts/([^/]*)/conversion_tags/?")
_is_account_id = re.compile(r"[0-9]{1,18}").fullmatch
_JSON = "application/json"


@dataclass
class Reply:
    """One HTTP answer; ``fault`` (if any) tells the handler how to deliver it."""

    status: int
    body: bytes
    content_type: str = _JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    fault: Fault | None = None
    summary: str = ""  # for the one log line per request


def json_reply(status: int, payload: Any, **kwargs: Any) -> Reply:
    """A JSON reply (compact separators: batches of 1,000 results stay small)."""
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode(), **kwargs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """``json.loads`` that rejects NaN/Infinity like a strict JSON parser; ValueError if invalid.

    Nesting deeper than Python's recursion limit is invalid input too (a ValueError, so a 400
    answer, not the 500 of an uncaught RecursionError).
    """
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _authorize(sandbox: SandboxServer, account: str, authorization: str | None) -> int:
    """0 when the bearer token may use ``account``, else the status to answer (401/403/404).

    Order: an unknown or missing token is 401 whatever the account; a known token for an
    account id that is malformed or unknown is 404; a token of another account is 403.
    """
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return 401
    accounts = sandbox.accounts_snapshot()
    if sandbox.accept_any_token:
        return 0 if _is_account_id(account) else 404
    if accounts.get(account) == token:
        return 0
    if token not in accounts.values():
        return 401
    if not _is_account_id(account) or account not in accounts:
        return 404
    return 403


def handle(
    sandbox: SandboxServer,
    method: str,
    path: str,
    test: bool,
    headers: Any,
    body: bytes,
    *,
    client_port: int | None = None,
) -> Reply:
    """Answer one request under ``/v5/`` and record it (and its events) in the ledger.

    ``client_port`` is the sender's side of the TCP connection: requests with the same port
    came over the same (kept-alive) connection.
    """
    seq = sandbox.ledger.next_seq()
    entry: dict[str, Any] = {
        "seq": seq,
        "client_port": client_port,
        "method": method,
        "path": path,
        "ad_account_id": None,
        "test": test,
        "num_events": None,
        "status_code": None,
        "fault": None,
        "authorization_ok": False,
    }
    events_match = _EVENTS.fullmatch(path)
    tags_match = None if events_match else _TAGS.fullmatch(path)
    match = events_match or tags_match
    batch: EventBatch | None = None
    if match is None:
        reply = json_reply(404, {"code": 404, "message": f"Resource not found: {path}"})
    else:
        account = match.group(1)
        entry["ad_account_id"] = account
        auth_status = _authorize(sandbox, account, headers.get("Authorization"))
        entry["authorization_ok"] = auth_status == 0
        if events_match and method != "POST" or tags_match and method != "GET":
            reply = json_reply(405, {"code": 405, "message": f"Method {method} not allowed"})
        elif tags_match:
            reply = (
                json_reply(auth_status, error_body(auth_status)) if auth_status else _tags(account)
            )
        else:
            reply, batch = _events(sandbox, entry, auth_status, headers, body)
    entry["status_code"] = reply.status
    sandbox.ledger.record(entry, batch)
    reply.summary = (
        f"#{seq} {method} {path}{'?test=true' if test else ''} -> {reply.status}"
        f" events={entry['num_events']} fault={entry['fault']}"
    )
    return reply


def _tags(account: str) -> Reply:
    tag_id = str(2612000000000 + zlib.crc32(account.encode()) % 1000000000)
    item = {
        "id": tag_id,
        "name": "Sandbox tag",
        "ad_account_id": account,
        "status": "ACTIVE",
        "version": "3",
        "enhanced_match_status": "VALIDATED",
        "last_fired_time_ms": None,
        "configs": {"aem_enabled": True, "md_frequency": 1.0},
        "code_snippet": f"<!-- Pinterest Tag {tag_id} (sandbox) -->",
    }
    return json_reply(200, {"items": [item]})


def _events(
    sandbox: SandboxServer,
    entry: dict[str, Any],
    auth_status: int,
    headers: Any,
    body: bytes,
) -> tuple[Reply, EventBatch | None]:
    """The events endpoint: fault, auth, envelope, per-event checks, results, ledger batch."""
    account = entry["ad_account_id"]
    fault = sandbox.faults.match(account)
    if fault is not None:
        entry["fault"] = fault.describe()
    extra = [("Retry-After", fault.retry_after)] if fault and fault.retry_after else []

    content_type = headers.get("Content-Type", "")
    payload: Any = None
    parse_error = ""
    clean = 0  # the number of events when fastcheck found them all valid and clean
    now, age, skew = sandbox.clock(), sandbox.max_event_age, sandbox.max_future_skew
    if content_type.split(";", 1)[0].strip().lower() != _JSON:
        parse_error = f"Content-Type must be {_JSON}"
    else:
        clean = fastcheck.all_clean(body, now, age, skew)
        if clean:
            entry["num_events"] = clean
        else:
            try:
                payload = parse_json(body)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                parse_error = f"Invalid JSON body: {exc}"
            if type(payload) is dict and type(payload.get("data")) is list:
                entry["num_events"] = len(payload["data"])

    if fault is not None and fault.status is not None:
        if fault.body is not None:
            reply = Reply(fault.status, fault.body.encode(), fault.content_type, extra, fault)
        else:
            reply = json_reply(fault.status, error_body(fault.status, fault.message))
            reply.headers, reply.fault = extra, fault
        return reply, None
    if auth_status:
        return json_reply(auth_status, error_body(auth_status), headers=extra, fault=fault), None
    if clean:
        received, results, loads = clean, None, fastcheck.decode_json
    else:
        try:
            if parse_error:
                raise SchemaError(parse_error)
            data = check_body(payload)
            results = check_events(data, now, age, skew)
        except SchemaError as exc:
            return json_reply(400, error_body(400, str(exc)), headers=extra, fault=fault), None
        received, loads = len(data), parse_json

    reply, outcomes = _per_event_reply(received, results, fault)
    reply.headers, reply.fault = extra, fault
    account, test, seq = entry["ad_account_id"], entry["test"], entry["seq"]
    return reply, EventBatch(account, test, seq, body, loads, outcomes)


def _per_event_reply(
    received: int, results: list[tuple[str, str]] | None, fault: Fault | None
) -> tuple[Reply, list[tuple[str, str]] | None]:
    """The 200/422 answer with one result per event, and ``(status, error)`` per event for the
    ledger (``None``: all processed without error).  ``results=None``: all clean.

    Written as :func:`json_reply` would write it, from pieces: a batch of 1,000 clean events is
    the same item 1,000 times, encoded once.
    """
    forced = fault.event_status if fault is not None and fault.event_status else None
    if forced is None and (results is None or results.count(OK) == received):
        outcomes = None
        processed = received
        events_json = b",".join([_PROCESSED_CLEAN] * received)
    else:
        forced_message = (fault.message if fault else None) or "Event failed (sandbox fault)"
        statuses = _statuses(results or [OK] * received, forced or {}, forced_message)
        outcomes = [(status, error) for status, error, _ in statuses]
        processed = sum(1 for status, _, _ in statuses if status == "processed")
        events_json = _events_json(statuses)
    result = b'{"num_events_received":%d,"num_events_processed":%d,"events":[%b]}' % (
        received,
        processed,
        events_json,
    )
    if processed == 0 or (fault is not None and fault.as_422):
        return Reply(422, _FAILED_PREFIX + result + b"}"), outcomes
    return Reply(200, result), outcomes


def _statuses(
    results: list[tuple[str, str]], forced: dict[int, str], forced_message: str
) -> list[tuple[str, str, str]]:
    """``(status, error_message, warning_message)`` per event, with a fault's forced statuses."""
    statuses = []
    for i, (error, warning) in enumerate(results):
        status = forced.get(i)
        if status is None:
            status = "failed" if error else "processed"
        elif status == "failed" and not error:
            error = forced_message
        elif status == "processed":
            error = ""
        statuses.append((status, error, warning))
    return statuses


def _status_json(status: str, error: str, warning: str) -> bytes:
    """One item of ``events``, encoded exactly as :func:`json_reply` encodes it."""
    item = {"status": status, "error_message": error, "warning_message": warning}
    return json.dumps(item, separators=(",", ":")).encode()


_PROCESSED_CLEAN = _status_json("processed", "", "")
_FAILED_PREFIX = b'{"code":953,"message":"One or more events failed to be processed.","details":'


def _events_json(statuses: list[tuple[str, str, str]]) -> bytes:
    """The items of ``events`` joined by commas: each distinct item is encoded once."""
    encoded: dict[tuple[str, str, str], bytes] = {("processed", "", ""): _PROCESSED_CLEAN}
    parts = []
    for status in statuses:
        part = encoded.get(status)
        if part is None:
            part = encoded[status] = _status_json(*status)
        parts.append(part)
    return b",".join(parts)
