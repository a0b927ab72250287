"""pinterest_capi.contrib.allauth through django-allauth's real signup view, to the sandbox."""

from __future__ import annotations

import hashlib

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.urls import reverse

from pinterest_capi import delivery
from pinterest_capi.models import OutboxEvent

pytestmark = pytest.mark.django_db

BROWSER = {"REMOTE_ADDR": "198.51.100.23", "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux) allauth"}


def test_an_allauth_signup_reaches_pinterest_as_signup(client, account, sandbox):
    client.get(reverse("account_signup") + "?epik=allauth-click-7", **BROWSER)  # keeps _epik
    response = client.post(
        reverse("account_signup"),
        {"email": "Rosie.Cotton@Example.com", "password1": "green-dragon-77",
         "password2": "green-dragon-77"},
        **BROWSER,
    )  # fmt: skip
    assert response.status_code == 302, response.content[:500]
    user = get_user_model().objects.get(email__iexact="rosie.cotton@example.com")
    assert EmailAddress.objects.filter(user=user).exists()  # allauth's own signup ran
    row = OutboxEvent.objects.get(event_name="signup")
    assert "rosie" not in row.payload.lower()

    summary = delivery.flush(until_empty=True)
    assert summary.sent == 1 and summary.failed == 0
    [received] = [e["event"] for e in sandbox.ledger.events()]
    assert received["event_name"] == "signup"
    assert received["event_id"] == f"signup-{user.pk}"
    email_hash = hashlib.sha256(b"rosie.cotton@example.com").hexdigest()
    assert received["user_data"]["em"] == [email_hash]
    assert received["user_data"]["external_id"] == [
        hashlib.sha256(str(user.pk).encode()).hexdigest()
    ]
    assert received["user_data"]["client_ip_address"] == "198.51.100.23"
    assert received["user_data"]["client_user_agent"] == BROWSER["HTTP_USER_AGENT"]
    assert received["user_data"]["click_id"] == "allauth-click-7"
    assert received["event_source_url"].endswith(reverse("account_signup"))


def test_a_failed_allauth_signup_records_nothing(client, account):
    response = client.post(
        reverse("account_signup"),
        {"email": "not-an-email", "password1": "green-dragon-77", "password2": "other"},
        **BROWSER,
    )
    assert response.status_code == 200  # the form again, with errors
    assert not OutboxEvent.objects.exists()
