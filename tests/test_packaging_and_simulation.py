"""The wheel ships what a shop needs; the simulated shop's traffic meets Pinterest's schema."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from pinterest_capi.models import EventStatus, OutboxEvent
from tests.pinterest_schema import validate_request_body

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contains_migrations_templates_and_static(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("django_pinterest_capi-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "pinterest_capi/migrations/0001_initial_outbox_accounts_attempts.py" in names
    assert any(n.startswith("pinterest_capi/templates/admin/pinterest_capi/") for n in names)
    assert any(n.startswith("pinterest_capi/static/pinterest_capi/") for n in names)
    assert "pinterest_capi/sandbox/server.py" in names
    assert not any(n.startswith(("shop_demo/", "tests/")) for n in names)


@pytest.mark.django_db
def test_simulated_shop_traffic_is_delivered_and_every_request_fits_the_schema(account, sandbox):
    out = io.StringIO()
    call_command(
        "shop_demo_simulate",
        "--orders",
        "15",
        "--carts",
        "10",
        "--signups",
        "5",
        "--seed",
        "3",
        stdout=out,
    )
    recorded = OutboxEvent.objects.count()
    assert recorded >= 15 + 10 + 5
    call_command("pinterest_capi_flush", "--until-empty", stdout=out)
    assert OutboxEvent.objects.filter(status=EventStatus.SENT).count() == recorded
    by_request: dict[int, list] = {}
    for item in sandbox.ledger.events():
        assert item["status"] == "processed", item.get("error_message")
        by_request.setdefault(item["request_seq"], []).append(item["event"])
    for events in by_request.values():
        validate_request_body({"data": events})
    ids = sandbox.ledger.event_ids()
    assert len(ids) == len(set(ids)) == recorded
    names = {e["event"]["event_name"] for e in sandbox.ledger.events()}
    assert names == {"checkout", "add_to_cart", "signup"}
