"""The events endpoint's fast path: "is every event of this batch valid and clean?", mostly in C.

The benchmarks post 1,000-event batches of valid events as fast as a flusher can; parsing them
into dicts and walking every key in Python (:mod:`.validation`) cost the sandbox most of its
time.  Here msgspec decodes the body straight into typed structs generated from the same spec
tables (unknown keys, exact JSON types, required fields, 1 to 1,000 events and the SHA-256 form
of every hashed value are all checked while decoding), and the remaining per-event rules run as
a few set and min/max operations over the whole batch.

The answer is all or nothing.  A count promises that :func:`.validation.check_event` finds
neither an error nor a warning in any event, so every result is ``processed`` with empty
messages; 0 sends the request down the reference path, which parses with the stdlib and names
the first problem exactly as before.  Each check below mirrors one rule there.  Where
msgspec and the stdlib could read a body differently they do not both accept it (msgspec refuses
NaN, a UTF-8 BOM, lone surrogates, invalid UTF-8), and where both accept it they read the same
values (duplicate keys: the last one, after checking each; integers of any size stay integers).

Without msgspec (it comes with the ``demo``, ``test`` and ``bench`` extras) every request takes
the reference path: the same answers, slower.
"""

from __future__ import annotations

from typing import Annotated, Any

from . import validation as v

try:
    import msgspec
except ImportError:  # pragma: no cover - exercised by the tests through FAST = False
    msgspec = None

# \Z, not $: "$" also matches before a trailing newline, which validation's fullmatch refuses.
SHA256_HEX = r"\A[0-9a-f]{64}\Z"

FAST = msgspec is not None  # module switch: the tests turn it off to compare both paths


def _type(name: str, kind: Any) -> Any:
    """The msgspec type of one spec entry of :mod:`.validation`.

    JSON arrays become tuples: msgspec leaves a tuple of strings or of ``gc=False`` structs
    untracked by the garbage collector, where every list would be tracked.
    """
    if kind is v._HASHED:
        return tuple[Annotated[str, msgspec.Meta(pattern=SHA256_HEX)], ...]
    if kind is v._STRLIST:
        return tuple[str, ...]
    if kind is v._CONTENTS:
        return tuple[_struct("ContentItem", v.CONTENT_ITEM), ...]
    if kind is v._USER_DATA:
        return _struct("UserData", v.USER_DATA)
    if kind is v._CUSTOM:
        return _struct("CustomData", v.CUSTOM_DATA)
    if type(kind) is dict:
        return _struct(name, kind)
    union = kind[0]
    for other in kind[1:]:  # (str, NoneType) → str | None
        union = union | other
    return union


def _struct(name: str, spec: dict[str, Any], required: tuple[str, ...] = ()) -> Any:
    """A struct that accepts exactly the objects ``spec`` allows: no other key, exact types.

    Optional fields default to UNSET, which is falsy like a missing key's ``dict.get``.
    ``gc=False``: decoded structs cannot form cycles, so the collector need not track them.
    """
    fields = []
    for key, kind in spec.items():
        if key in required:
            fields.append((key, _type(key, kind)))
        else:
            fields.append((key, _type(key, kind) | msgspec.UnsetType, msgspec.UNSET))
    return msgspec.defstruct(name, fields, kw_only=True, forbid_unknown_fields=True, gc=False)


if msgspec is not None:
    _Event = _struct("Event", v.EVENT, v.REQUIRED)
    _Body = msgspec.defstruct(
        "Body",
        [("data", Annotated[list[_Event], msgspec.Meta(min_length=1, max_length=v.MAX_EVENTS)])],
        forbid_unknown_fields=True,
    )
    _decode = msgspec.json.Decoder(_Body).decode
    decode_json = msgspec.json.Decoder().decode  # untyped, for bodies already found valid here
else:  # pragma: no cover
    decode_json = None


def all_clean(body: bytes, now: float, max_age: float, max_future: float) -> int:
    """The number of events if ``body`` is a valid batch of clean events only, else 0."""
    if not FAST:
        return 0
    try:
        events = _decode(body).data
    except ValueError:  # msgspec.DecodeError, ValidationError and UnicodeDecodeError
        return 0
    # check_event's rules beyond the schema, each for the whole batch at once:
    # a non-standard event_name or an empty event_id is a warning,
    if not {e.event_name for e in events} <= v.STANDARD_EVENT_NAMES:
        return 0
    if not all([e.event_id for e in events]):
        return 0
    # event_time outside [now - max_age, now + max_future] or an unknown action_source an error,
    times = [e.event_time for e in events]
    if min(times) < now - max_age or max(times) > now + max_future:
        return 0
    if not {e.action_source for e in events} <= v.ACTION_SOURCES:
        return 0
    # and so is user_data without em, hashed_maids, or both client_ip_address and client_user_agent
    users = [e.user_data for e in events]
    if not all(
        [u.em or u.hashed_maids or (u.client_ip_address and u.client_user_agent) for u in users]
    ):
        return 0
    return len(events)
