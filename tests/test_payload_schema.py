"""Events built by events.build_event validate against Pinterest's own published schema.

The schema is the unchanged copy in tests/pinterest_schema (OpenAPI 5.23.0); the negative
tests prove the validator is really active, and the table tests keep events.py's field lists
equal to what Pinterest publishes.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from jsonschema import ValidationError

from pinterest_capi import events
from pinterest_capi.exceptions import InvalidEventError
from tests.pinterest_schema import load_schema, validate_event_dict, validate_request_body

NOW = 1_700_000_000.0
WEB_USER = {
    "em": " Buyer@Example.com ",
    "ph": "+44 20 7946 0000",
    "fn": "Mary-Ann",
    "ln": "Smith",
    "ct": "São Paulo",
    "st": "SP",
    "zp": "01310-100",
    "country": "BR",
    "external_id": "user-42",
    "client_ip_address": "203.0.113.7",
    "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "click_id": "dj0yJnU9",
}


def build(event_name: str, **kwargs):
    kwargs.setdefault("user_data", WEB_USER)
    kwargs.setdefault("now", NOW)
    return events.build_event(event_name, **kwargs)


EVENTS = {
    "checkout": lambda: build(
        "checkout",
        event_id=events.make_event_id("checkout", "1001"),
        event_time=datetime.fromtimestamp(NOW - 120, tz=UTC),
        event_source_url="https://shop.example/checkout/done",
        custom_data={
            "currency": "gbp",
            "value": Decimal("72.39"),
            "order_id": "1001",
            "content_ids": ["SKU-1", "SKU-2"],
            "contents": [
                {"id": "SKU-1", "item_price": Decimal("19.99"), "quantity": 2, "item_name": "Mug"},
                {"id": "SKU-2", "item_price": "32.41", "quantity": 1, "item_brand": "Acme"},
            ],
            "num_items": 3,
        },
        partner_name="ss-demo",
        language="en",
    ),
    "add_to_cart": lambda: build(
        "add_to_cart",
        user_data={"client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0"},
        custom_data={
            "currency": "USD",
            "value": 19.99,
            "content_ids": ["SKU-1"],
            "contents": [{"id": "SKU-1", "item_price": 19.99, "quantity": 1}],
            "num_items": 1,
        },
    ),
    "signup": lambda: build(
        "signup",
        event_id=events.make_event_id("signup", 42),
        user_data={"em": "new@example.com", "external_id": 42, "ge": "female", "db": "1990-01-31"},
    ),
    "page_visit": lambda: build(
        "page_visit",
        event_source_url="https://shop.example/p/mug",
        custom_data={"content_ids": ["SKU-1"], "content_name": "Mug", "content_category": "Home"},
        opt_out=False,
    ),
    "search": lambda: build("search", custom_data={"search_string": "blue mug"}),
    "lead": lambda: build(
        "lead",
        user_data={"em": "lead@example.com", "ph": "(415) 555-0100"},
        custom_data={"predicted_ltv": Decimal("250.00"), "opt_out_type": "LDP"},
    ),
    "offline": lambda: build(
        "checkout",
        action_source="offline",
        event_id=events.make_event_id("checkout", "POS-77"),
        user_data={"em": "store@example.com", "country": "us", "st": "ca", "zp": "94103-1234"},
        custom_data={"currency": "USD", "value": 12, "order_id": "POS-77"},
    ),
    "app_ios": lambda: build(
        "app_install",
        action_source="app_ios",
        user_data={"hashed_maids": "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
        app_id="id123456",
        app_name="Shop",
        app_version="2.1.0",
        device_brand="Apple",
        device_model="iPhone15,2",
        device_type="phone",
        os_version="17.1",
        wifi=True,
        app_info={"app_id": "id123456", "app_store": "Apple App Store", "install_time": 1},
        device_info={
            "os_family": "ios",
            "form_factor": "cellphone",
            "network_type": "wifi",
            "languages": ["en", "pt"],
            "screen_width": 1179,
        },
    ),
    "app_android": lambda: build(
        "view_content",
        action_source="app_android",
        user_data={"hashed_maids": ["38400000-8cf0-11bd-b23e-10b96e40000d"]},
        custom_data={"content_ids": ["SKU-9"]},
        device_carrier="Carrier",
    ),
    "custom_name": lambda: build("wishlist_shared", user_data={"em": "a@example.com"}),
}


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_built_event_validates_against_pinterests_schema(name):
    event = EVENTS[name]()
    validate_event_dict(event)
    validate_request_body({"data": [event]})


def test_a_full_batch_of_every_kind_validates():
    validate_request_body({"data": [make() for make in EVENTS.values()]})


@pytest.fixture
def checkout():
    return EVENTS["checkout"]()


def _set(*path_and_value):
    """A mutation setting event[path...] = value on a deep copy."""
    *path, last, value = path_and_value

    def mutate(event):
        target = event
        for key in path:
            target = target[key]
        target[last] = value

    return mutate


MUTATIONS = {
    "em not an array": _set("user_data", "em", "not-an-array"),
    "em items not strings": _set("user_data", "em", [1]),
    "no identifier": _set("user_data", {"ph": [events.sha256_hex("14155550100")]}),
    "event_time as string": _set("event_time", "1700000000"),
    "event_time as float": _set("event_time", 1.5),
    "no event_id": lambda event: event.pop("event_id"),
    "unknown top-level key": _set("unknown", 1),
    "value as number": _set("custom_data", "value", 72.39),
    "unknown custom_data key": _set("custom_data", "revenue", "1"),
    "num_items as string": _set("custom_data", "num_items", "3"),
    "quantity as string": _set("custom_data", "contents", 0, "quantity", "2"),
    "unknown contents key": _set("custom_data", "contents", 0, "sku", "x"),
    "opt_out as string": _set("opt_out", "false"),
    "device_info enum": _set("device_info", {"form_factor": "phablet"}),
    "app_info unknown key": _set("app_info", {"bundle": "x"}),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_schema_rejects_what_it_should(checkout, mutation):
    event = copy.deepcopy(checkout)
    validate_request_body({"data": [event]})
    MUTATIONS[mutation](event)
    with pytest.raises(ValidationError):
        validate_request_body({"data": [event]})
    with pytest.raises(InvalidEventError):  # and events.validate_event is at least as strict
        events.validate_event(event)


def test_schema_rejects_bad_envelopes(checkout):
    for body in ({"data": []}, {"data": [checkout] * 1001}, {}, {"data": [checkout], "test": True}):
        with pytest.raises(ValidationError):
            validate_request_body(body)


# --- events.py's tables are Pinterest's ----------------------------------------------------

SCHEMA = load_schema()["$defs"]
EVENT_SCHEMA = SCHEMA["ConversionEvents"]["properties"]["data"]["items"]


def test_event_fields_equal_the_schema():
    assert events.EVENT_FIELDS == set(EVENT_SCHEMA["properties"])
    assert set(events.REQUIRED_EVENT_FIELDS) == set(EVENT_SCHEMA["required"])


def test_user_data_fields_equal_the_schema():
    properties = SCHEMA["ConversionEventsUserDataProperties"]["properties"]
    assert set(events.HASHED_USER_FIELDS) | set(events.PLAIN_USER_FIELDS) == set(properties)
    hashed = {name for name, spec in properties.items() if spec["type"] == "array"}
    assert set(events.HASHED_USER_FIELDS) == hashed


def test_custom_data_fields_equal_the_schema():
    custom = EVENT_SCHEMA["properties"]["custom_data"]
    assert events.CUSTOM_DATA_FIELDS == set(custom["properties"])
    assert events.CONTENT_FIELDS == set(custom["properties"]["contents"]["items"]["properties"])


def test_action_sources_are_the_documented_four():
    assert events.ACTION_SOURCES == {"web", "app_android", "app_ios", "offline"}
