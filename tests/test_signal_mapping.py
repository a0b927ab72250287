"""The generic SIGNALS setting: a shop's own signal → its own mapper → the sandbox.

Covers the system checks that name a bad entry, a mapper returning None, a mapper returning
garbage, a mapper whose query fails inside the shop's transaction, and re-connecting after a
settings change.  The Oscar and allauth adapters are tested against the real packages in
tests/contrib_project (their own pytest invocation).
"""

from __future__ import annotations

import hashlib
import logging

import pytest
from django.db import connection, transaction
from django.dispatch import Signal

from pinterest_capi import delivery, receivers
from pinterest_capi.checks import check_settings
from pinterest_capi.exceptions import ConfigurationError
from pinterest_capi.models import AdAccount, OutboxEvent

pytestmark = pytest.mark.django_db

points_earned = Signal()  # a shop's own signal: sender=Member, member=..., points=...
NOT_A_SIGNAL = "a string"
HERE = __name__


class Member:
    def __init__(self, pk: int, email: str) -> None:
        self.pk = pk
        self.email = email


def lead_from_points(*, member, points, **_):
    """A shop's mapper: only big rewards are worth telling Pinterest about."""
    if points < 100:
        return None
    return {
        "event_name": "lead",
        "event_id": f"lead-points-{member.pk}-{points}",
        "user_data": {"em": member.email, "client_ip_address": "203.0.113.9"},
        "custom_data": {"value": points / 100, "currency": "EUR"},
    }


def returns_a_list(**_):
    return ["lead"]


def failing_query(**_):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM pinterest_capi_no_such_table")


@pytest.fixture
def shop_signals(settings):
    """Sets SIGNALS and connects it; afterwards the project's own wiring is restored."""
    original = settings.PINTEREST_CAPI

    def apply(mapping, **extra):
        settings.PINTEREST_CAPI = {**original, "SIGNALS": mapping, **extra}
        return receivers.connect_configured_signals()

    yield apply
    settings.PINTEREST_CAPI = original
    receivers.connect_configured_signals()


SIGNAL_CHECK_IDS = {"pinterest_capi.E010", "pinterest_capi.E011", "pinterest_capi.E012"}


def signal_checks():
    return {m.id: m for m in check_settings() if m.id in SIGNAL_CHECK_IDS}


def test_a_shops_signal_is_recorded_and_sent_through_its_mapper(account, sandbox, shop_signals):
    connected = shop_signals({f"{HERE}.points_earned": f"{HERE}.lead_from_points"})
    assert f"{HERE}.points_earned" in connected
    with transaction.atomic():
        points_earned.send(sender=Member, member=Member(7, "Member@Example.com"), points=250)
        points_earned.send(sender=Member, member=Member(8, "small@example.com"), points=20)
    assert list(OutboxEvent.objects.values_list("event_id", flat=True)) == ["lead-points-7-250"]
    delivery.flush(until_empty=True)
    [received] = [e["event"] for e in sandbox.ledger.events()]
    assert received["event_name"] == "lead"
    assert received["custom_data"] == {"value": "2.5", "currency": "EUR"}
    assert received["user_data"]["em"] == [hashlib.sha256(b"member@example.com").hexdigest()]


def test_a_mapper_may_be_given_as_a_callable(account, shop_signals):
    shop_signals({f"{HERE}.points_earned": lead_from_points})
    points_earned.send(sender=Member, member=Member(9, "m@example.com"), points=100)
    assert OutboxEvent.objects.get().event_id == "lead-points-9-100"
    assert signal_checks() == {}


def test_reconnecting_replaces_the_mapper_and_never_doubles_receivers(account, shop_signals):
    shop_signals({f"{HERE}.points_earned": f"{HERE}.returns_a_list"})
    shop_signals({f"{HERE}.points_earned": f"{HERE}.lead_from_points"})
    shop_signals({f"{HERE}.points_earned": f"{HERE}.lead_from_points"})
    ours = [r for r in points_earned.receivers if "pinterest_capi" in str(r[0])]
    assert len(ours) == 1
    points_earned.send(sender=Member, member=Member(1, "m@example.com"), points=300)
    assert OutboxEvent.objects.count() == 1
    shop_signals({})
    points_earned.send(sender=Member, member=Member(2, "m@example.com"), points=300)
    assert OutboxEvent.objects.count() == 1  # the entry is gone, so is the receiver


def test_a_mapper_returning_something_else_is_an_error_naming_it(account, shop_signals, caplog):
    shop_signals({f"{HERE}.points_earned": f"{HERE}.returns_a_list"})
    with pytest.raises(ConfigurationError, match="returns_a_list' returned a list"):
        points_earned.send(sender=Member, member=Member(1, "m@example.com"), points=300)
    shop_signals({f"{HERE}.points_earned": f"{HERE}.returns_a_list"}, RAISE_RECORD_ERRORS=False)
    with caplog.at_level(logging.ERROR, logger="pinterest_capi.receivers"):
        points_earned.send(sender=Member, member=Member(1, "m@example.com"), points=300)
    assert f"Pinterest event not recorded (mapper {HERE}.returns_a_list)" in caplog.text
    assert not OutboxEvent.objects.exists()


def test_a_mapper_whose_query_fails_leaves_the_shops_transaction_usable(account, shop_signals):
    """On PostgreSQL a failed query aborts the transaction; the savepoint keeps it to the mapper."""
    shop_signals({f"{HERE}.points_earned": f"{HERE}.failing_query"}, RAISE_RECORD_ERRORS=False)
    with transaction.atomic():
        points_earned.send(sender=Member, member=Member(1, "m@example.com"), points=300)
        AdAccount.objects.filter(pk=account.pk).update(name="the shop's write after the signal")
    assert AdAccount.objects.get(pk=account.pk).name == "the shop's write after the signal"
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    ("mapping", "check_id", "words"),
    [
        (["not", "a", "dict"], "pinterest_capi.E010", "must be a dict"),
        ({"myshop.signals.nope": f"{HERE}.lead_from_points"}, "pinterest_capi.E011",
         "'myshop.signals.nope': 'tests.test_signal_mapping.lead_from_points': the signal cannot be imported"),  # noqa: E501
        ({f"{HERE}.NOT_A_SIGNAL": f"{HERE}.lead_from_points"}, "pinterest_capi.E011",
         "is a str, not a django.dispatch.Signal"),
        ({f"{HERE}.points_earned": f"{HERE}.no_such_mapper"}, "pinterest_capi.E012",
         "'tests.test_signal_mapping.no_such_mapper': the mapper cannot be imported"),
        ({f"{HERE}.points_earned": f"{HERE}.NOT_A_SIGNAL"}, "pinterest_capi.E012",
         "the mapper is a str, not callable"),
    ],
)  # fmt: skip
def test_a_bad_entry_is_a_system_check_error_naming_it(
    settings, shop_signals, caplog, mapping, check_id, words
):
    with caplog.at_level(logging.ERROR, logger="pinterest_capi.receivers"):
        connected = shop_signals(mapping)  # start-up goes on: the entry is skipped and logged
    assert f"{HERE}.points_earned" not in connected
    messages = signal_checks()
    assert set(messages) == {check_id}
    assert words in messages[check_id].msg
    assert "PINTEREST_CAPI['SIGNALS']" in messages[check_id].msg
    assert words in caplog.text


def test_good_entries_still_connect_beside_a_bad_one(account, shop_signals):
    connected = shop_signals(
        {
            "myshop.signals.nope": f"{HERE}.lead_from_points",
            f"{HERE}.points_earned": f"{HERE}.lead_from_points",
        }
    )
    assert f"{HERE}.points_earned" in connected
    points_earned.send(sender=Member, member=Member(3, "m@example.com"), points=500)
    assert OutboxEvent.objects.count() == 1
    assert set(signal_checks()) == {"pinterest_capi.E011"}


def test_the_demo_shops_own_entries_pass_the_check():
    assert signal_checks() == {}
    paths = {e.signal_path for e in receivers.signal_table()}
    assert "shop_demo.shop.signals.order_placed" in paths
