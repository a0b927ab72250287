"""Pure event building: raw shop data in, the exact Pinterest Conversions API event dict out.

No settings, no models, no database (Django is reached only through the app's exception class):
everything here is a function of its arguments (plus the clock and uuid4 where a default is
asked for), so the outbox stores exactly what this returns and the tests can pin every byte.
The rules follow ``contract.md``; where it says "unsure" the choice made is documented on the
function that makes it.

Raw PII never appears in an exception message: errors name the field and the rule, not the value.

The package, one job per module (everything public is re-exported here):
``fields`` Pinterest's field tables and limits; ``hashing`` user_data normalisation and SHA-256;
``custom_data`` custom_data's exact wire types; ``validation`` validate_event and the identifier
rule; ``build`` build_event, make_event_id and the event_time window.
"""

from __future__ import annotations

from .build import build_event, make_event_id
from .custom_data import normalise_custom_data
from .fields import (
    ACTION_SOURCES,
    CONTENT_FIELDS,
    CUSTOM_DATA_FIELDS,
    EVENT_FIELDS,
    HASHED_USER_FIELDS,
    IDENTIFIER_MESSAGE,
    MAX_EVENT_AGE,
    MAX_EVENT_NAME_LENGTH,
    MAX_FUTURE_SKEW,
    PLAIN_USER_FIELDS,
    REQUIRED_EVENT_FIELDS,
    STANDARD_EVENT_NAMES,
)
from .hashing import normalise_user_data, sha256_hex
from .validation import validate_event

__all__ = [
    "ACTION_SOURCES",
    "CONTENT_FIELDS",
    "CUSTOM_DATA_FIELDS",
    "EVENT_FIELDS",
    "HASHED_USER_FIELDS",
    "IDENTIFIER_MESSAGE",
    "MAX_EVENT_AGE",
    "MAX_EVENT_NAME_LENGTH",
    "MAX_FUTURE_SKEW",
    "PLAIN_USER_FIELDS",
    "REQUIRED_EVENT_FIELDS",
    "STANDARD_EVENT_NAMES",
    "build_event",
    "make_event_id",
    "normalise_custom_data",
    "normalise_user_data",
    "sha256_hex",
    "validate_event",
]
