"""events.py: normalisation vectors, wire types, the identifier rule, time and id rules.

Expected hashes are computed here with hashlib from the expected normalised string, never
with the module's own ``sha256_hex``, so a wrong normaliser cannot agree with itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from pinterest_capi import events
from pinterest_capi.events import build_event, make_event_id, normalise_custom_data, validate_event
from pinterest_capi.exceptions import InvalidEventError

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
DAY = 24 * 3600
EMAIL = {"em": "buyer@example.com"}


def h(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def user(**raw):
    return events.normalise_user_data(raw)


def event(**kwargs):
    kwargs.setdefault("user_data", EMAIL)
    kwargs.setdefault("now", NOW)
    return build_event(kwargs.pop("event_name", "checkout"), **kwargs)


@contextmanager
def raises(field: str, match: str | None = None):
    """pytest.raises for InvalidEventError that also checks the field it names."""
    with pytest.raises(InvalidEventError, match=match) as info:
        yield info
    assert info.value.field == field, str(info.value)


# --- user_data: one vector per rule --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "raw", "normalised"),
    [
        ("em", " John.Doe@Example.COM ", "john.doe@example.com"),
        ("em", "a+tag@EXAMPLE.co.uk", "a+tag@example.co.uk"),
        ("fn", "Mary-Ann", "mary-ann"),
        ("fn", "  Mary Ann ", "mary ann"),
        ("ln", " O'Brien", "o'brien"),
        ("ct", "São Paulo", "sãopaulo"),
        ("ct", "Sa\u0303o Paulo", "sãopaulo"),  # decomposed input: NFC first
        ("ct", "St. Louis", "stlouis"),
        ("ct", "Winston-Salem", "winstonsalem"),
        ("ct", "München", "münchen"),
        ("st", "NY", "ny"),
        ("st", " ca ", "ca"),
        ("st", "N.Y.", "ny"),
        ("st", "California", "california"),  # not mapped to a code: letters only, documented
        ("zp", "12345-6789", "12345"),
        ("zp", "123456789", "12345"),
        ("zp", "12345", "12345"),
        ("zp", "SW1A 1AA", "sw1a1aa"),
        ("zp", "K1A 0B1", "k1a0b1"),
        ("country", "US", "us"),
        ("country", " gb ", "gb"),
        ("ge", "F", "f"),
        ("ge", "female", "f"),
        ("ge", "Woman", "f"),
        ("ge", "m", "m"),
        ("ge", "Male", "m"),
        ("ge", "man", "m"),
        ("ge", "n", "n"),
        ("ge", "Non-Binary", "n"),
        ("ge", "nonbinary", "n"),
        ("db", "19900131", "19900131"),
        ("db", "1990-01-31", "19900131"),
        ("db", date(1990, 1, 31), "19900131"),
        ("db", datetime(1990, 1, 31, 12, 30), "19900131"),
        ("external_id", " User-ABC ", "user-abc"),
        ("external_id", 42, "42"),
        (
            "hashed_maids",
            " 6D92078A-8246-4BA4-AE5B-76104861E7DC ",
            "6d92078a-8246-4ba4-ae5b-76104861e7dc",
        ),
    ],
)
def test_hashed_field_vectors(key, raw, normalised):
    assert user(**{key: raw}) == {key: [h(normalised)]}


def test_the_brief_email_vector_pinned_literally():
    assert user(em=" John.Doe@Example.COM ")["em"] == [
        hashlib.sha256(b"john.doe@example.com").hexdigest()
    ]


@pytest.mark.parametrize(
    ("raw", "region", "digits"),
    [
        ("+44 (0)20 7946 0000", "US", "442079460000"),
        ("+44 020 7946 0000", "US", "442079460000"),
        ("+44 20 7946 0000", None, "442079460000"),
        ("(415) 555-0100", "US", "14155550100"),
        ("415.555.0100", "US", "14155550100"),
        ("+1 415 555 0100 ext. 12", "US", "14155550100"),
        ("020 7946 0000", "GB", "442079460000"),
        ("00 44 20 7946 0000", "GB", "442079460000"),
        ("011 44 20 7946 0000", "US", "442079460000"),
        ("442079460000", "US", "442079460000"),  # digits already carrying a country code
        (4155550100, "US", "14155550100"),
    ],
)
def test_phone_is_e164_digits_without_plus(raw, region, digits):
    assert events.normalise_user_data({"ph": raw}, default_phone_region=region) == {
        "ph": [h(digits)]
    }


@pytest.mark.parametrize(
    ("raw", "region"),
    [("not a phone", "US"), ("12", "US"), ("020 7946 0000", None), ("+999 123", "US")],
)
def test_unparsable_phone_is_an_error_without_the_number(raw, region):
    with raises("user_data.ph", "is not a valid phone number") as info:
        events.normalise_user_data({"ph": raw}, default_phone_region=region)
    assert str(raw) not in str(info.value)


def test_default_phone_region_is_us():
    assert user(ph="(415) 555-0100") == {"ph": [h("14155550100")]}


@pytest.mark.parametrize("raw", ["USA", "U", "1A", "United States"])
def test_country_must_be_two_letters(raw):
    with raises("user_data.country") as info:
        user(country=raw)
    assert raw not in str(info.value)


@pytest.mark.parametrize("raw", ["other", "x", "prefer not to say"])
def test_unknown_gender_is_omitted_not_guessed(raw):
    assert user(ge=raw, em="a@example.com") == {"em": [h("a@example.com")]}


@pytest.mark.parametrize("raw", ["1990-02-30", "31/01/1990", "1990131", "19901301", "yesterday"])
def test_invalid_birth_date_is_an_error_without_the_value(raw):
    with raises("user_data.db") as info:
        user(db=raw)
    assert raw not in str(info.value)


def test_db_as_int_is_rejected():
    with raises("user_data.db"):
        user(db=19900131)


def test_prehashed_values_pass_through_lowercased_not_rehashed():
    digest = h("john.doe@example.com")
    result = user(em=digest.upper(), ph=digest, external_id=f"  {digest}  ")
    assert result == {"em": [digest], "ph": [digest], "external_id": [digest]}


def test_63_hex_chars_is_not_a_digest_and_is_hashed():
    almost = "a" * 63
    assert user(external_id=almost) == {"external_id": [h(almost)]}


def test_empty_values_are_dropped_never_hashed():
    raw = {
        "em": "",
        "fn": "   ",
        "ln": None,
        "ph": [],
        "ct": ["", None, "  "],
        "client_user_agent": "  ",
        "click_id": None,
    }
    assert events.normalise_user_data(raw) == {}
    assert h("") not in json.dumps(events.normalise_user_data(raw))


def test_lists_are_hashed_each_with_duplicates_removed_in_order():
    result = user(em=["B@example.com", " b@example.com", "", "a@example.com", "A@EXAMPLE.COM"])
    assert result == {"em": [h("b@example.com"), h("a@example.com")]}
    assert user(ph=("+14155550100", "(415) 555-0100")) == {"ph": [h("14155550100")]}


def test_prehashed_and_raw_duplicates_collapse():
    assert user(em=[h("x@example.com"), "X@example.com"]) == {"em": [h("x@example.com")]}


def test_plain_fields_are_trimmed_strings_not_hashed():
    result = user(
        client_ip_address=" 203.0.113.7 ",
        client_user_agent="Mozilla/5.0 (X11)",
        click_id=" dj0yJnU9 ",
        partner_id="RampID-1",
    )
    assert result == {
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "Mozilla/5.0 (X11)",
        "click_id": "dj0yJnU9",
        "partner_id": "RampID-1",
    }


def test_every_hashed_value_is_a_list_of_64_lowercase_hex():
    result = user(
        em="a@example.com",
        ph="+14155550100",
        ge="f",
        db="1990-01-31",
        fn="a",
        ln="b",
        ct="c",
        st="ny",
        zp="12345",
        country="us",
        external_id="1",
        hashed_maids="m",
    )
    assert set(result) == set(events.HASHED_USER_FIELDS)
    for values in result.values():
        assert isinstance(values, list)
        assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in values)


@pytest.mark.parametrize("key", ["email", "phone", "EM", "ip"])
def test_unknown_user_data_key_is_named(key):
    with raises(f"user_data.{key}"):
        events.normalise_user_data({key: "x"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("em", {"a": 1}),
        ("em", True),
        ("fn", 1.5),
        ("em", ["a@example.com", 3.0]),
        ("client_ip_address", 1234),
        ("click_id", ["a"]),
    ],
)
def test_wrong_value_types_are_errors(key, value):
    with raises(f"user_data.{key}"):
        events.normalise_user_data({key: value})


def test_user_data_must_be_a_mapping():
    with raises("user_data"):
        events.normalise_user_data(["em"])
    assert events.normalise_user_data(None) == {}


def test_sha256_hex_is_utf8_lowercase_hex():
    assert events.sha256_hex("sãopaulo") == hashlib.sha256("sãopaulo".encode()).hexdigest()


# --- custom_data: exact wire types ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "wire"),
    [
        (Decimal("72.39"), "72.39"),
        (Decimal("72.390"), "72.390"),  # a Decimal keeps its written precision
        (Decimal("1E+2"), "100"),  # never exponent notation
        (Decimal("1.5E-7"), "0.00000015"),
        (10, "10"),
        (72.39, "72.39"),  # a float's shortest repr, not 72.3900000000000005684...
        (1e20, "100000000000000000000"),
        ("72.39", "72.39"),
        (" 19.99 ", "19.99"),
        ("0", "0"),
    ],
)
def test_money_is_a_plain_decimal_string(raw, wire):
    result = normalise_custom_data(
        {"value": raw, "predicted_ltv": raw, "contents": [{"item_price": raw}]}
    )
    assert result == {"value": wire, "predicted_ltv": wire, "contents": [{"item_price": wire}]}


@pytest.mark.parametrize("raw", ["abc", "", "1,50", True, float("nan"), Decimal("Infinity"), [1]])
def test_bad_money_is_an_error(raw):
    with raises("custom_data.value"):
        normalise_custom_data({"value": raw})


@pytest.mark.parametrize("raw", [True, 2.0, "2", Decimal("2"), -1])
def test_counts_must_be_non_negative_ints(raw):
    with raises("custom_data.num_items"):
        normalise_custom_data({"num_items": raw})
    with raises("custom_data.contents[0].quantity"):
        normalise_custom_data({"contents": [{"id": "A", "quantity": raw}]})


def test_negative_count_message_is_clear():
    with raises("custom_data.num_items", "must not be negative"):
        normalise_custom_data({"num_items": -3})
    with raises("custom_data.num_items", "must be an integer"):
        normalise_custom_data({"num_items": False})


def test_checkout_custom_data_has_exact_types():
    result = normalise_custom_data(
        {
            "currency": " usd ",
            "value": Decimal("72.39"),
            "order_id": 1001,
            "content_ids": ["SKU-1", 2, None, ""],
            "contents": [
                {"id": "SKU-1", "item_price": Decimal("19.99"), "quantity": 2, "item_name": "Mug"},
                {"id": 2, "item_price": 32, "quantity": 1, "item_brand": None},
            ],
            "num_items": 3,
            "content_name": " Mugs ",
            "search_string": None,
        }
    )
    assert result == {
        "currency": "USD",
        "value": "72.39",
        "order_id": "1001",
        "content_ids": ["SKU-1", "2"],
        "contents": [
            {"id": "SKU-1", "item_price": "19.99", "quantity": 2, "item_name": "Mug"},
            {"id": "2", "item_price": "32", "quantity": 1},
        ],
        "num_items": 3,
        "content_name": "Mugs",
    }


@pytest.mark.parametrize("raw", ["US", "dollars", "U5D", 840])
def test_currency_shape(raw):
    with raises("custom_data.currency"):
        normalise_custom_data({"currency": raw})


def test_content_ids_must_be_a_list():
    with raises("custom_data.content_ids"):
        normalise_custom_data({"content_ids": "SKU-1"})
    with raises("custom_data.content_ids[1]"):
        normalise_custom_data({"content_ids": ["a", 1.5]})


def test_none_and_empty_values_are_omitted():
    raw = {"value": None, "currency": None, "content_ids": [], "contents": [], "order_id": " "}
    assert normalise_custom_data(raw) == {}
    assert normalise_custom_data(None) == {}


def test_other_custom_fields_are_kept_as_strings_and_ints():
    raw = {
        "content_category": "Kitchen",
        "content_brand": "Acme",
        "search_string": "blue mug",
        "opt_out_type": "LDP",
        "np": "ss-partner",
        "external_measurement_id": "m-1",
        "external_measurement_vendor_id": 7,
    }
    assert normalise_custom_data(raw) == raw


@pytest.mark.parametrize("key", ["revenue", "price", "quantity", "Value"])
def test_unknown_custom_data_key_is_named(key):
    with raises(f"custom_data.{key}"):
        normalise_custom_data({key: "1"})


def test_unknown_contents_key_is_named_with_its_index():
    with raises("custom_data.contents[1].sku"):
        normalise_custom_data({"contents": [{"id": "A"}, {"id": "B", "sku": "B"}]})
    with raises("custom_data.contents[0]"):
        normalise_custom_data({"contents": ["A"]})
    with raises("custom_data.contents[0].item_name"):
        normalise_custom_data({"contents": [{"item_name": 5}]})


def test_custom_data_must_be_a_mapping():
    with raises("custom_data"):
        normalise_custom_data([("value", "1")])


# --- build_event ---------------------------------------------------------------------------


def test_build_event_shape_and_order():
    ev = event(
        event_id="checkout-1001",
        event_time=int(NOW) - 60,
        event_source_url=" https://shop.example/checkout ",
        custom_data={"currency": "GBP", "value": "10.00", "order_id": "1001"},
        partner_name="ss-demo",
    )
    assert list(ev) == [
        "event_name",
        "action_source",
        "event_time",
        "event_id",
        "user_data",
        "event_source_url",
        "custom_data",
        "partner_name",
    ]
    assert ev == {
        "event_name": "checkout",
        "action_source": "web",
        "event_time": int(NOW) - 60,
        "event_id": "checkout-1001",
        "user_data": {"em": [h("buyer@example.com")]},
        "event_source_url": "https://shop.example/checkout",
        "custom_data": {"currency": "GBP", "value": "10.00", "order_id": "1001"},
        "partner_name": "ss-demo",
    }
    json.dumps(ev)  # plain JSON types only


def test_empty_custom_data_and_none_fields_are_omitted():
    ev = event(custom_data={"value": None}, event_source_url=None, language=None, opt_out=None)
    assert set(ev) == set(events.REQUIRED_EVENT_FIELDS)


def test_optional_top_level_fields():
    ev = event(
        action_source="app_ios",
        opt_out=True,
        wifi=False,
        language=" EN ",
        app_id="id123",
        app_name="Shop",
        app_version="2.1",
        device_brand="Apple",
        device_carrier="Carrier",
        device_model="iPhone15,2",
        device_type="phone",
        os_version="17.1",
        app_info={"app_id": "id123", "install_time": 1_699_000_000, "window_width": 390},
        device_info={"os_family": "ios", "form_factor": "cellphone", "languages": ["en"]},
    )
    assert ev["language"] == "en"
    assert ev["opt_out"] is True and ev["wifi"] is False
    assert ev["device_info"]["languages"] == ["en"]


@pytest.mark.parametrize("name", ["foo", "test", "data", "userData", "client_ip_address"])
def test_unknown_top_level_field_is_named(name):
    with raises(name, "is not a field of Pinterest's event object"):
        event(**{name: "x"})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"opt_out": "yes"}, "opt_out"),
        ({"wifi": 1}, "wifi"),
        ({"language": "eng"}, "language"),
        ({"language": "e1"}, "language"),
        ({"partner_name": 5}, "partner_name"),
        ({"event_source_url": 5}, "event_source_url"),
        ({"app_info": {"bundle": "x"}}, "app_info.bundle"),
        ({"app_info": {"install_time": "1"}}, "app_info.install_time"),
        ({"app_info": "x"}, "app_info"),
        ({"device_info": {"form_factor": "phablet"}}, "device_info.form_factor"),
        ({"device_info": {"battery_level": -1}}, "device_info.battery_level"),
        ({"device_info": {"languages": "en"}}, "device_info.languages"),
        ({"device_info": {"ram": 8}}, "device_info.ram"),
    ],
)
def test_bad_optional_fields_are_named(fields, field):
    with raises(field):
        event(**fields)


def test_identifier_rule():
    message = "needs em, hashed_maids, or both client_ip_address and client_user_agent"
    for user_data in (
        {"ph": "+14155550100", "fn": "Ann"},
        {"client_ip_address": "203.0.113.7"},
        {"client_user_agent": "Mozilla/5.0"},
        {"em": "  "},
        {},
        None,
    ):
        with raises("user_data", re.escape(message)):
            event(user_data=user_data)
    assert event(user_data={"hashed_maids": "maid-1"})["user_data"]["hashed_maids"]
    assert event(user_data={"client_ip_address": "203.0.113.7", "client_user_agent": "UA"})
    assert event(user_data={"em": h("x@example.com")})


def test_event_time_int_seconds_kept_and_float_truncated():
    assert event(event_time=1_699_999_000)["event_time"] == 1_699_999_000
    assert event(event_time=1_699_999_000.99)["event_time"] == 1_699_999_000


def test_event_time_defaults_to_now():
    assert event()["event_time"] == int(NOW)
    ev = build_event("checkout", user_data=EMAIL)
    assert isinstance(ev["event_time"], int)


def test_event_time_in_milliseconds_is_rejected_clearly():
    with raises("event_time", "milliseconds"):
        event(event_time=int(NOW * 1000))


def test_event_time_from_aware_datetime():
    when = datetime.fromtimestamp(NOW - 3600, tz=UTC)
    assert event(event_time=when)["event_time"] == int(NOW) - 3600
    paris = when.astimezone(timezone(timedelta(hours=1)))
    assert event(event_time=paris)["event_time"] == int(NOW) - 3600


def test_naive_datetime_is_rejected():
    with raises("event_time", "timezone-aware"):
        event(event_time=datetime(2023, 11, 14, 22, 0))


@pytest.mark.parametrize("raw", [True, "1700000000", date(2023, 11, 14), float("inf")])
def test_event_time_of_other_types_is_rejected(raw):
    with raises("event_time"):
        event(event_time=raw)


def test_event_time_window():
    assert event(event_time=NOW - 7 * DAY)["event_time"] == int(NOW) - 7 * DAY
    with raises("event_time", "7 days"):
        event(event_time=NOW - 7 * DAY - 1)
    assert event(event_time=NOW + 300)["event_time"] == int(NOW) + 300
    with raises("event_time", "future"):
        event(event_time=NOW + 301)


def test_event_id_default_is_unique_and_prefixed():
    first, second = event()["event_id"], event()["event_id"]
    assert first != second
    assert re.fullmatch(r"checkout-[0-9a-f]{32}", first)


def test_event_id_given_is_kept():
    assert event(event_id=" checkout-1001 ")["event_id"] == "checkout-1001"
    for bad in ("", "  ", 1001):
        with raises("event_id"):
            event(event_id=bad)


def test_make_event_id_is_deterministic_with_a_key():
    assert make_event_id("checkout", "1001") == "checkout-1001"
    assert make_event_id("checkout", "1001") == make_event_id("checkout", "1001")
    assert make_event_id("signup", 42) == "signup-42"
    assert make_event_id("add_to_cart") != make_event_id("add_to_cart")
    assert re.fullmatch(r"add_to_cart-[0-9a-f]{32}", make_event_id("add_to_cart"))
    for bad in ("", " ", True, 1.5):
        with raises("event_id"):
            make_event_id("checkout", bad)


def test_event_name_rules():
    assert event(event_name=" page_visit ")["event_name"] == "page_visit"
    assert event(event_name="my_custom_thing")["event_name"] == "my_custom_thing"
    assert event(event_name="x" * 64)  # the outbox column's size
    for bad in ("", "   ", "x" * 65, None):
        with raises("event_name"):
            event(event_name=bad)


def test_action_source_must_be_known():
    for source in events.ACTION_SOURCES:
        assert event(action_source=source)["action_source"] == source
    with raises("action_source"):
        event(action_source="email")


def test_standard_event_names_cover_the_contract():
    assert {"checkout", "add_to_cart", "page_visit", "signup", "search", "lead"} <= (
        events.STANDARD_EVENT_NAMES
    )
    assert len(events.STANDARD_EVENT_NAMES) == 22


def test_errors_never_carry_raw_pii():
    cases = [
        {"em": "secret@example.com", "ph": "+1 555 SECRET"},
        {"em": "secret@example.com", "db": "secret"},
        {"em": "secret@example.com", "country": "secret"},
        {"em": ["secret@example.com", {"x": "secret"}]},
    ]
    for user_data in cases:
        with pytest.raises(InvalidEventError) as info:
            event(user_data=user_data)
        assert "secret" not in str(info.value).lower()


# --- validate_event ------------------------------------------------------------------------


def test_validate_event_accepts_built_events():
    validate_event(event(custom_data={"contents": [{"id": "A", "quantity": 1}]}))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user_data": {"em": "buyer@example.com"}}, "user_data.em"),
        ({"user_data": {"em": ["buyer@example.com"]}}, "user_data.em"),
        ({"user_data": {"em": [h("x").upper()]}}, "user_data.em"),
        ({"user_data": {"em": [h("x")], "email": "x"}}, "user_data.email"),
        ({"user_data": {"ph": [h("x")]}}, "user_data"),
        (
            {"user_data": {"em": [h("x")], "client_ip_address": ["1.2.3.4"]}},
            "user_data.client_ip_address",
        ),
        ({"event_time": True}, "event_time"),
        ({"event_time": 1.5}, "event_time"),
        ({"event_id": ""}, "event_id"),
        ({"event_name": ""}, "event_name"),
        ({"action_source": "email"}, "action_source"),
        ({"custom_data": {"value": 10}}, "custom_data.value"),
        ({"custom_data": {"num_items": "1"}}, "custom_data.num_items"),
        ({"custom_data": {"content_ids": "A"}}, "custom_data.content_ids"),
        ({"custom_data": {"contents": [{"quantity": True}]}}, "custom_data.contents[0].quantity"),
        ({"custom_data": {"contents": [{"price": "1"}]}}, "custom_data.contents[0].price"),
        ({"custom_data": {"currency": None}}, "custom_data.currency"),
        ({"unknown": 1}, "unknown"),
        ({"opt_out": "false"}, "opt_out"),
    ],
)
def test_validate_event_rejects(change, field):
    ev = event()
    ev.update(change)
    with raises(field):
        validate_event(ev)


def test_validate_event_requires_the_required_fields():
    for name in events.REQUIRED_EVENT_FIELDS:
        ev = event()
        del ev[name]
        with raises(name, "is required"):
            validate_event(ev)
