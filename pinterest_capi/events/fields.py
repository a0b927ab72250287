"""Pinterest's field tables: which keys exist at each level of the event, and their wire types.

Pure data (plus the two-letter code check shared by user_data and the event's language): the
single place the builder, the normalisers and the validator read the contract's field lists from.
"""

from __future__ import annotations

import re
from typing import Any

HASHED_USER_FIELDS: tuple[str, ...] = (
    "em", "ph", "ge", "db", "fn", "ln", "ct", "st", "zp", "country", "external_id", "hashed_maids",
)  # fmt: skip
PLAIN_USER_FIELDS: tuple[str, ...] = (
    "client_ip_address", "client_user_agent", "click_id", "partner_id",
)  # fmt: skip
REQUIRED_EVENT_FIELDS: tuple[str, ...] = (
    "event_name", "action_source", "event_time", "event_id", "user_data",
)  # fmt: skip
# Optional top-level string fields (legacy flat app/device fields among them).
_EVENT_STRING_FIELDS = frozenset(
    "event_source_url partner_name language app_id app_name app_version device_brand "
    "device_carrier device_model device_type os_version".split()
)
_EVENT_BOOL_FIELDS = frozenset({"opt_out", "wifi"})
EVENT_FIELDS: frozenset[str] = frozenset(
    {*REQUIRED_EVENT_FIELDS, *_EVENT_STRING_FIELDS, *_EVENT_BOOL_FIELDS}
    | {"custom_data", "app_info", "device_info"}
)
# custom_data fields by wire type.
_MONEY_FIELDS = frozenset({"value", "predicted_ltv"})
_COUNT_FIELDS = frozenset({"num_items", "external_measurement_vendor_id"})
_CUSTOM_STRING_FIELDS = frozenset(
    "content_name content_category content_brand order_id search_string opt_out_type np "
    "external_measurement_id".split()
)
CUSTOM_DATA_FIELDS: frozenset[str] = frozenset(
    _MONEY_FIELDS | _COUNT_FIELDS | _CUSTOM_STRING_FIELDS | {"currency", "content_ids", "contents"}
)
CONTENT_FIELDS: frozenset[str] = frozenset(
    {"id", "item_price", "quantity", "item_name", "item_category", "item_brand"}
)
STANDARD_EVENT_NAMES: frozenset[str] = frozenset(
    "add_to_cart checkout custom lead page_visit search signup view_category watch_video "
    "add_payment_info add_to_wishlist initiate_checkout subscribe view_content app_install "
    "app_open contact customize_product find_location schedule start_trial "
    "submit_application".split()
)
ACTION_SOURCES: frozenset[str] = frozenset({"web", "app_android", "app_ios", "offline"})

# app_info / device_info: the schema sets additionalProperties false on both, and a schema
# violation fails the whole batch, so keys, types and enums are checked here (lengths are not).
# A spec maps each key to int, str, list (of str) or a frozenset of the allowed strings.
_APP_INFO: dict[str, Any] = {
    **dict.fromkeys(("install_time", "window_height", "window_width"), int),
    **dict.fromkeys(
        ("app_id", "app_name", "app_package_name", "app_store", "app_version", "user_agent"), str
    ),
}
_DEVICE_INFO: dict[str, Any] = {
    **dict.fromkeys(
        "battery_level cpu_cores external_storage_free_space external_storage_size screen_density "
        "screen_height screen_width storage_free_space storage_size".split(),
        int,
    ),
    **dict.fromkeys(
        "brand carrier kernel_version locale model os_name os_release_name os_version timezone "
        "timezone_abbr type".split(),
        str,
    ),
    "languages": list,
    "form_factor": frozenset(
        "desktop laptop cellphone tablet smartwatch tv vr console other".split()
    ),
    "network_type": frozenset(
        "wifi cellular_2g cellular_3g cellular_4g cellular_5g cellular_6g ethernet unknown".split()
    ),
    "os_family": frozenset("ios android macos windows linux bsd other".split()),
}
_INFO_SPECS = {"app_info": _APP_INFO, "device_info": _DEVICE_INFO}

# Column sizes of OutboxEvent: a longer value is refused here, naming the field, rather than
# failing in the database (PostgreSQL) or being kept whole where it should not (SQLite).
MAX_EVENT_NAME_LENGTH = 64
MAX_EVENT_ID_LENGTH = 255
MAX_ORDER_ID_LENGTH = 255
MAX_EVENT_AGE = 7 * 24 * 3600  # seconds: Pinterest fails older events
MAX_FUTURE_SKEW = 5 * 60  # seconds of clock skew tolerated; Pinterest's future rule is unsure
_MILLISECONDS_THRESHOLD = 10**11  # Unix seconds reach 1e11 only in the year 5138

_is_two_letters = re.compile(r"[a-z]{2}").fullmatch
_USER_FIELDS = frozenset(HASHED_USER_FIELDS + PLAIN_USER_FIELDS)
_ACTION_SOURCE_MESSAGE = f"must be one of {', '.join(sorted(ACTION_SOURCES))}"
IDENTIFIER_MESSAGE = "needs em, hashed_maids, or both client_ip_address and client_user_agent"
