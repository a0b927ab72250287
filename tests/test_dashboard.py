"""The delivery dashboard in the admin and its terminal twin, ``pinterest_capi_status``.

Events are inserted with ``make_outbox_events`` and then moved to known statuses and times
with ``.update()``; the page is fetched through the real admin with Django's test client and
its figures are read back from the rendered HTML (SVG data attributes, the tables).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from pinterest_capi import stats
from pinterest_capi.models import AdAccount, EventStatus, OutboxEvent
from pinterest_capi.permissions import tenant_group_name
from tests.conftest import make_outbox_events

pytestmark = pytest.mark.django_db

DASHBOARD = "admin:pinterest_capi_deliverydashboard_changelist"
ROOT = Path(__file__).resolve().parent.parent


# --- helpers -------------------------------------------------------------------------------


def place(events: list[OutboxEvent], **fields) -> list[int]:
    """Give ``events`` the same status/times/error (an UPDATE, as the delivery layer would)."""
    pks = [e.pk for e in events]
    OutboxEvent.objects.filter(pk__in=pks).update(**fields)
    return pks


def new_events(account: AdAccount, count: int, **kwargs) -> list[OutboxEvent]:
    """``count`` fresh rows of ``account`` (numbered after the ones it already has)."""
    start = OutboxEvent.objects.count() + 1000
    make_outbox_events(account, count, start=start, **kwargs)
    return list(OutboxEvent.objects.filter(account=account).order_by("-pk")[:count])


def this_hour():
    return timezone.localtime().replace(minute=0, second=0, microsecond=0)


def hour_label(when) -> str:
    return date_format(timezone.localtime(when), "H:00")


def day_label(when) -> str:
    return date_format(timezone.localtime(when), "D j M")


def table_row(html: str, window: str, label: str) -> list[int]:
    """The numbers of one row of a chart's table: sent, in flight, pending, failed, total."""
    table = re.search(
        rf'<table class="pcapi-chart-table" data-window="{window}">(.*?)</table>', html, re.S
    )
    assert table, f"no table for {window}"
    row = re.search(rf'<tr data-bucket="{re.escape(label)}">(.*?)</tr>', table.group(1), re.S)
    assert row, f"no row {label} in {window}"
    return [int(n) for n in re.findall(r'<td class="pcapi-num">(\d+)</td>', row.group(1))]


def svg_of(html: str, window: str) -> str:
    match = re.search(
        rf'<figure class="pcapi-chart" id="pcapi-chart-{window}".*?</svg>', html, re.S
    )
    assert match, f"no chart {window}"
    return match.group(0)


def bar_segments(svg: str, label: str) -> dict[str, int]:
    """status → count of the rects in the bar of ``label``."""
    bar = re.search(rf'<g class="pcapi-bar" data-bucket="{re.escape(label)}".*?</g>', svg, re.S)
    assert bar, f"no bar {label}"
    found = re.findall(r'data-status="(\w+)" data-count="(\d+)"', bar.group(0))
    return {status: int(n) for status, n in found}


def staff(username: str, *tenants: str, perms=("view_deliverydashboard",)) -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="pinterest_capi", codename__in=perms)
    )
    for tenant in tenants:
        user.groups.add(Group.objects.get_or_create(name=tenant_group_name(tenant))[0])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


def page(client: Client, query: str = "") -> str:
    response = client.get(reverse(DASHBOARD) + query)
    assert response.status_code == 200, response.content[:300]
    return response.content.decode()


# --- charts --------------------------------------------------------------------------------


@pytest.fixture
def volume(account):
    """Two hours and one day of known events, plus old events outside every window."""
    two_ago = this_hour() - timedelta(hours=2) + timedelta(minutes=5)
    five_ago = this_hour() - timedelta(hours=5) + timedelta(minutes=30)
    three_days = timezone.localtime().replace(hour=12, minute=0) - timedelta(days=3)
    place(new_events(account, 3), status=EventStatus.SENT, created_at=two_ago, sent_at=two_ago)
    place(new_events(account, 1), status=EventStatus.FAILED, created_at=two_ago, last_error="x")
    place(new_events(account, 2), status=EventStatus.PENDING, created_at=five_ago)
    place(new_events(account, 4), status=EventStatus.SENT, created_at=three_days)
    old = timezone.now() - timedelta(days=10)
    place(new_events(account, 5), status=EventStatus.SENT, created_at=old)
    return {"two_ago": two_ago, "five_ago": five_ago, "three_days": three_days}


def test_charts_are_inline_svg_with_counts_matching_the_tables(root, volume):
    html = page(root)
    assert "<script" not in html.split('id="content-main"')[1]  # no JavaScript library
    svg24 = svg_of(html, "24h")
    assert 'role="img"' in svg24 and 'aria-labelledby="pcapi-chart-24h-title' in svg24
    assert '<title id="pcapi-chart-24h-title">' in svg24 and "<desc id=" in svg24
    two, five = hour_label(volume["two_ago"]), hour_label(volume["five_ago"])
    assert bar_segments(svg24, two) == {"sent": 3, "failed": 1}
    assert bar_segments(svg24, five) == {"pending": 2}
    # sent, in flight, pending, failed, total
    assert table_row(html, "24h", two) == [3, 0, 0, 1, 4]
    assert table_row(html, "24h", five) == [0, 0, 2, 0, 2]
    assert len(re.findall(r'<g class="pcapi-bar"', svg24)) == 24

    svg7 = svg_of(html, "7d")
    assert len(re.findall(r'<g class="pcapi-bar"', svg7)) == 7
    assert bar_segments(svg7, day_label(volume["three_days"])) == {"sent": 4}
    assert table_row(html, "7d", day_label(volume["three_days"])) == [4, 0, 0, 0, 4]
    # 10 events in the week; the 5 from ten days ago are in no window.
    assert "10 events (7 sent, 0 in flight, 2 pending, 1 failed)" in svg7
    for status in ("sent", "in flight", "pending", "failed"):
        assert f"</span>{status}</li>" in html  # the legend


def test_stacked_segments_sit_on_each_other(root, volume):
    svg = svg_of(page(root), "24h")
    bar = re.search(rf'data-bucket="{hour_label(volume["two_ago"])}".*?</g>', svg, re.S).group(0)
    rects = re.findall(r'y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', bar)
    (sent_y, sent_h), (failed_y, failed_h) = [(float(y), float(h)) for y, h in rects]
    assert sent_h == pytest.approx(3 * failed_h, abs=0.02)
    assert failed_y + failed_h == pytest.approx(sent_y, abs=0.02)  # failed stacked on sent


# --- time to delivery ----------------------------------------------------------------------


@pytest.fixture
def latencies(account):
    """Sent 1..20 s after recording, 3 h ago; and five sent after 1,000 s, three days ago."""
    base = timezone.now() - timedelta(hours=3)
    for seconds, event in enumerate(new_events(account, 20), start=1):
        place(
            [event],
            status=EventStatus.SENT,
            created_at=base,
            sent_at=base + timedelta(seconds=seconds),
        )
    old = timezone.now() - timedelta(days=3)
    place(
        new_events(account, 5),
        status=EventStatus.SENT,
        created_at=old,
        sent_at=old + timedelta(seconds=1000),
    )
    # Not sent: no part of the figures.
    place(new_events(account, 2), status=EventStatus.FAILED, created_at=base)


def latency_cells(html: str, window: str) -> tuple[int, float, float]:
    row = re.search(rf'<tr data-window="{window}">(.*?)</tr>', html, re.S).group(1)
    count = int(re.search(r'<td class="pcapi-num">(\d+)</td>', row).group(1))
    median, p95 = (float(v) for v in re.findall(r'data-seconds="([\d.]+)"', row))
    return count, median, p95


def test_median_and_95th_percentile_of_time_to_delivery(root, latencies):
    html = page(root)
    # PERCENTILE_CONT: 1..20 → 10.5 and 19 + 0.05 = 19.05
    count, median, p95 = latency_cells(html, "24h")
    assert (count, median, p95) == (20, pytest.approx(10.5), pytest.approx(19.05))
    # the week adds five at 1,000 s: 25 values, median the 13th, p95 between two 1,000s
    count, median, p95 = latency_cells(html, "7d")
    assert (count, median, p95) == (25, pytest.approx(13), pytest.approx(1000))
    assert "all 25 sent events" in html
    assert "16 min 40 s" in html  # 1,000 s for people


@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="PostgreSQL takes exact percentiles in SQL; the sample is the other backends' path",
)
def test_without_a_percentile_aggregate_the_most_recent_sent_events_are_read(
    account, latencies, monkeypatch
):
    monkeypatch.setattr(stats, "LATENCY_SAMPLE", 4)
    accounts = AdAccount.objects.all()
    result = stats.latency(stats.events_of(accounts), "7d", timezone.now() - timedelta(days=7))
    assert (result.count, result.sample_size, result.exact) == (25, 4, False)
    assert connection.vendor == "sqlite"


def test_percentile_interpolates_like_percentile_cont():
    assert stats.percentile([], 0.5) is None
    assert stats.percentile([7.0], 0.95) == 7.0
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert stats.percentile([float(n) for n in range(1, 101)], 0.95) == pytest.approx(95.05)


# --- failure reasons -----------------------------------------------------------------------


@pytest.fixture
def failures(account, second_account):
    recent = timezone.now() - timedelta(hours=1)
    a = place(
        new_events(account, 3),
        status=EventStatus.FAILED,
        created_at=recent,
        last_error="Invalid event_time",
    )
    b = place(
        new_events(account, 1),
        status=EventStatus.FAILED,
        created_at=recent,
        last_error="<b>bad</b> currency",
    )
    other = place(
        new_events(second_account, 2),
        status=EventStatus.FAILED,
        created_at=recent,
        last_error="Invalid event_time",
    )
    for n in range(11):  # eleven more single reasons: only ten reasons in all are listed
        place(
            new_events(second_account, 1),
            status=EventStatus.FAILED,
            created_at=recent,
            last_error=f"rare error {n:02d}",
        )
    return {"a": a, "b": b, "other": other}


def failed_link(account: AdAccount) -> str:
    return (
        reverse("admin:pinterest_capi_outboxevent_changelist")
        + f"?status__exact=failed&amp;account__id__exact={account.pk}"
    )


def failure_rows(html: str) -> list[tuple[str, int, str]]:
    return re.findall(
        r'<tr class="pcapi-failure" data-count="(\d+)">\s*<td class="pcapi-error">(.*?)</td>'
        r".*?<td>(.*?)</td>\s*</tr>",
        html,
        re.S,
    )


def test_top_ten_failure_reasons_link_to_the_failed_events_of_each_account(
    root, account, second_account, failures
):
    rows = failure_rows(page(root))
    assert len(rows) == stats.TOP_FAILURES == 10
    count, error, links = rows[0]
    assert (count, error) == ("5", "Invalid event_time")
    assert f'<a href="{failed_link(account)}">Demo (demo)</a> (3)' in links
    assert f'<a href="{failed_link(second_account)}">Other (other)</a> (2)' in links
    assert rows[1][:2] == ("1", "&lt;b&gt;bad&lt;/b&gt; currency")  # escaped
    assert [r[1] for r in rows[2:]] == [f"rare error {n:02d}" for n in range(8)]

    # The link lists exactly that account's failed events.
    response = root.get(failed_link(account).replace("&amp;", "&"))
    listed = {e.pk for e in response.context["cl"].result_list}
    assert listed == set(failures["a"]) | set(failures["b"])


# --- match coverage ------------------------------------------------------------------------

MIXES = [
    {
        "em": ["e" * 64],
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "UA",
        "click_id": "dj0yJnU9",
    },
    {"em": ["e" * 64], "ph": ["p" * 64]},
    {"client_ip_address": "203.0.113.7"},  # IP without a user agent: not the pair
    {"external_id": ["x" * 64], "client_ip_address": "203.0.113.8", "client_user_agent": "UA"},
]


@pytest.fixture
def coverage(account):
    def checkout(n, event):
        event["user_data"] = MIXES[n % 4]
        return event

    def signup(n, event):
        event.update(event_name="signup", event_id=f"signup-{n}", user_data={"em": ["e" * 64]})
        return event

    make_outbox_events(account, 8, start=0, payload_override=checkout)
    make_outbox_events(account, 2, start=100, payload_override=signup)


def coverage_cells(html: str, name: str) -> dict[str, str]:
    row = re.search(rf'<tr data-event-name="{name}">(.*?)</tr>', html, re.S).group(1)
    return dict(re.findall(r'data-identifier="(\w+)" data-count="\d+">([\d.]+)%', row))


def test_match_coverage_per_event_name(root, coverage):
    html = page(root)
    assert coverage_cells(html, "checkout") == {
        "em": "50.0",
        "ph": "25.0",
        "click_id": "25.0",
        "ip_ua": "50.0",
        "external_id": "25.0",
    }
    assert coverage_cells(html, "signup") == {
        "em": "100.0",
        "ph": "0.0",
        "click_id": "0.0",
        "ip_ua": "0.0",
        "external_id": "0.0",
    }


def test_match_coverage_reads_only_the_most_recent_events_of_each_name(
    account, coverage, monkeypatch
):
    monkeypatch.setattr(stats, "COVERAGE_SAMPLE", 3)
    rows = {
        c.event_name: c
        for c in stats.match_coverage(
            stats.events_of(AdAccount.objects.all()), timezone.now() - timedelta(days=7)
        )
    }
    checkout = rows["checkout"]
    assert (checkout.total, checkout.sampled) == (8, 3)
    # the newest three are rows 7, 6, 5: mixes 3 (external id, IP+UA), 2 (nothing), 1 (em, ph)
    assert checkout.counts == {"em": 1, "ph": 1, "click_id": 0, "ip_ua": 1, "external_id": 1}


def test_dashboard_queries_are_bounded_and_do_not_grow_with_the_outbox(account, coverage):
    with CaptureQueriesContext(connection) as before:
        stats.dashboard(AdAccount.objects.all())
    make_outbox_events(account, 50, start=500)  # more rows, same event names
    with CaptureQueriesContext(connection) as after:
        stats.dashboard(AdAccount.objects.all())
    assert len(after.captured_queries) == len(before.captured_queries)
    outbox = [q["sql"] for q in after.captured_queries if "pinterest_capi_outboxevent" in q["sql"]]
    assert outbox
    for sql in outbox:
        # a window of the created_at index, the queue table, the failed rows' index, or a LIMIT
        assert (
            '"created_at" >=' in sql
            or 'FROM "pinterest_capi_queuedevent"' in sql
            or '"failed"' in sql
            or "LIMIT" in sql
        ), sql


def test_identifiers_in_tolerates_odd_payloads():
    assert stats.identifiers_in("not json") == set()
    assert stats.identifiers_in('{"user_data": []}') == set()
    assert stats.identifiers_in('{"user_data": {"em": [], "ph": ""}}') == set()


# --- tenants -------------------------------------------------------------------------------


@pytest.fixture
def two_tenants(account, second_account):
    recent = timezone.now() - timedelta(hours=1)
    place(new_events(account, 3), status=EventStatus.SENT, created_at=recent, sent_at=recent)
    place(
        new_events(second_account, 7),
        status=EventStatus.FAILED,
        created_at=recent,
        last_error="Other tenant's secret error",
    )
    return recent


def week_total(html: str) -> int:
    table = re.search(r'data-window="7d">.*?<tfoot>(.*?)</tfoot>', html, re.S).group(1)
    return int(re.findall(r'<td class="pcapi-num">(\d+)</td>', table)[-1])


def test_tenant_staff_see_only_their_accounts_figures(two_tenants, account, second_account):
    alice = staff("alice", "demo")
    html = page(alice)
    assert week_total(html) == 3
    assert "Other tenant" not in html and "Other (other)" not in html
    assert "tenant:other" not in html and f"account:{second_account.pk}" not in html
    assert f'value="account:{account.pk}"' in html and 'value="tenant:demo"' in html
    # Guessing another tenant's account or tenant shows nothing of it, like a missing one.
    for scope in (f"account:{second_account.pk}", "tenant:other", "account:999999", "nonsense"):
        html = page(alice, f"?scope={scope}")
        assert week_total(html) == 0
        assert "That tenant or ad account was not found." in html
        assert "secret error" not in html


def test_superusers_see_all_and_can_narrow_to_one_tenant_or_account(
    root, two_tenants, account, second_account
):
    assert week_total(page(root)) == 10
    assert week_total(page(root, "?scope=tenant:other")) == 7
    html = page(root, f"?scope=account:{account.pk}")
    assert week_total(html) == 3
    assert f'<option value="account:{account.pk}" selected>' in html


def test_staff_without_a_tenant_see_no_figures(two_tenants):
    assert week_total(page(staff("nobody"))) == 0


def test_permission_and_sidebar_entry(two_tenants):
    # Its own permission, or the events' view permission, opens it; nothing else does.
    assert page(staff("viewer", "demo", perms=("view_outboxevent",)))
    outsider = staff("outsider", "demo", perms=("view_adaccount",))
    assert outsider.get(reverse(DASHBOARD)).status_code == 403
    index = staff("operator", "demo").get(reverse("admin:index")).content.decode()
    assert f'href="{reverse(DASHBOARD)}"' in index and "Delivery dashboard" in index
    # A page, not a model: no add/change/delete URLs exist for the proxy.
    with pytest.raises(Exception, match="Reverse"):
        reverse("admin:pinterest_capi_deliverydashboard_change", args=[1])


def test_account_summary_on_the_dashboard(root, account):
    old = timezone.now() - timedelta(minutes=45)
    place(new_events(account, 2), created_at=old)
    AdAccount.objects.filter(pk=account.pk).update(auth_error="401 token revoked")
    html = page(root)
    row = re.search(rf'<tr data-account="{account.pk}">(.*?)</tr>', html, re.S).group(1)
    assert "pcapi-account-auth" in row and "401 token revoked" in row
    assert "45 min" in row


# --- pinterest_capi_status -----------------------------------------------------------------


def status(*args: str) -> tuple[str, int, str]:
    """(stdout, exit status, stderr message) of the command, run in-process."""
    from io import StringIO

    out = StringIO()
    try:
        call_command("pinterest_capi_status", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc.returncode, str(exc)
    return out.getvalue(), 0, ""


def test_status_healthy(account):
    recent = timezone.now() - timedelta(minutes=5)
    place(new_events(account, 2), created_at=recent)
    place(new_events(account, 1), status=EventStatus.FAILED, created_at=recent, last_error="x")
    last = timezone.now() - timedelta(minutes=1)
    AdAccount.objects.filter(pk=account.pk).update(last_success_at=last)
    out, code, _message = status()
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("demo"))
    assert line.split()[:6] == ["demo", account.ad_account_id, "ok", "2", "0", "1"]
    assert "5 min" in line and last.isoformat() in line


def test_status_stuck_events_exit_2(account):
    place(new_events(account, 1), created_at=timezone.now() - timedelta(minutes=45))
    out, code, message = status()
    assert code == 2
    assert "demo/549755885175: oldest undelivered event is 45 min" in message
    assert "!" in out
    # In flight counts as undelivered too; a longer threshold makes it healthy again.
    assert status("--stuck-after", "60")[1] == 0
    assert status("--stuck-after", "40")[1] == 2


def test_status_auth_paused_account_exit_2_but_inactive_or_rate_paused_do_not(account):
    AdAccount.objects.filter(pk=account.pk).update(auth_error="Pinterest refused the token")
    out, code, message = status()
    assert code == 2 and "refused the token" in message
    assert " auth " in out
    AdAccount.objects.filter(pk=account.pk).update(
        auth_error="", paused_until=timezone.now() + timedelta(minutes=5), pause_reason="429"
    )
    out, code, _message = status()
    assert code == 0 and " paused " in out
    place(new_events(account, 1), created_at=timezone.now() - timedelta(hours=5))
    AdAccount.objects.filter(pk=account.pk).update(active=False)
    out, code, _message = status()
    assert code == 0 and " inactive " in out


def test_status_json(account, second_account):
    old = timezone.now() - timedelta(minutes=90)
    place(new_events(account, 2), created_at=old)
    place(new_events(account, 1), status=EventStatus.IN_FLIGHT, created_at=old)
    AdAccount.objects.filter(pk=second_account.pk).update(auth_error="401")
    out, code, _message = status("--json")
    data = json.loads(out)  # stdout is JSON only; the reasons go to the error
    assert code == 2
    assert data["healthy"] is False and len(data["problems"]) == 2
    assert data["stuck_after_minutes"] == 30
    demo, other = data["accounts"]
    assert (demo["tenant"], demo["state"], demo["pending"], demo["in_flight"]) == (
        "demo",
        "ok",
        2,
        1,
    )
    assert demo["stuck"] is True and 89 * 60 <= demo["oldest_pending_age_seconds"] <= 91 * 60
    assert demo["last_success_at"] is None and demo["failed"] == 0
    assert (other["tenant"], other["state"], other["auth_error"]) == ("other", "auth", "401")
    only_demo = json.loads(status("--json", "--tenant", "demo", "--stuck-after", "120")[0])
    assert only_demo["healthy"] is True and len(only_demo["accounts"]) == 1


def test_status_help_explains_exit_codes_and_usage_errors_exit_1():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    run = [sys.executable, "manage.py", "pinterest_capi_status"]
    helped = subprocess.run([*run, "--help"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert helped.returncode == 0
    assert "Exit status:" in helped.stdout
    assert re.search(r"^\s+0\s+healthy", helped.stdout, re.M)
    assert re.search(r"^\s+2\s+needs attention", helped.stdout, re.M)
    wrong = subprocess.run([*run, "--bogus"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert wrong.returncode == 1 and "unrecognized arguments" in wrong.stderr
