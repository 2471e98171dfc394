"""The dashboard in a real Chromium: its figures are GET /v1/reports/overview's for the same
data, its charts are drawn under the CSP, and the chart library loads on no other page."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from loyalty import ledger
from loyalty.auth import create_api_key
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.types import utcnow
from referrals.models import Referral
from tests import factories as f
from tests.conftest import bearer

pytestmark = pytest.mark.browser


def _whole(text: str) -> int:
    return int(text.replace(",", ""))


def _money(text: str) -> int | None:
    """ "$1,234.50" → 123450 (USD, the demo program's currency); "—" → None."""
    if text.strip() == "—":
        return None
    amount = Decimal(re.sub(r"[^0-9.\-]", "", text.replace("−", "-")))
    return int(amount * 100)


def _rate(text: str) -> str | None:
    return None if text.strip() == "—" else text.strip().removesuffix("%")


@pytest.fixture
def program_with_history(live_console):
    """The demo program, with orders of members and guests over a few months, points
    redeemed and expired, and a referral converted: through the API and the ledger."""
    app, _base = live_console
    now = utcnow()
    with app.app_context():
        _row, key = create_api_key(db.session, "dashboard-test", ["admin", "reports"])
        db.session.commit()
    headers = bearer(key)
    client = app.test_client()
    answer = client.put("/v1/program", json={"auto_enroll": False}, headers=headers)
    assert answer.status_code == 200
    for customer in ("dash-1", "dash-2"):
        body = {"id": customer, "email": f"{customer}@example.com"}
        assert client.post("/v1/members", json=body, headers=headers).status_code == 201
    orders = [
        ("dash-1", 12000, 70), ("dash-1", 4550, 20), ("dash-2", 8000, 40),
        ("guest-1", 3000, 10), ("guest-1", 2500, 5), ("guest-2", 9900, 100),
    ]  # fmt: skip
    for customer, amount, days in orders:
        event = f.paid(customer, None, [f.line(unit_price=amount)],
                       occurred_at=now - timedelta(days=days), email=None)  # fmt: skip
        assert client.post("/v1/events", json=event, headers=headers).status_code == 200
    with app.app_context():
        ids = dict(db.session.execute(select(Member.customer_id, Member.id)).all())
        for member, kind, points, days in (
            ("dash-2", "bonus", 900, 60), ("dash-2", "redeem", -500, 30),
            ("dash-2", "expire", -150, 15), ("dash-1", "adjust", 25, 3),
        ):  # fmt: skip
            ledger.post_entry(
                db.session, ids[member], kind, points, source_type="test", source_id=kind,
                occurred_at=now - timedelta(days=days), spend=kind == "redeem",
            )  # fmt: skip
        db.session.add(
            Referral(referrer_id=ids["dash-1"], code="DASH", status="converted", source="claim",
                     converted_at=now - timedelta(days=20), reward_state="earned")
        )  # fmt: skip
        db.session.commit()
    return headers


def test_the_dashboard_shows_the_overview_api_figures(
    live_console, console_page, program_with_history, screenshot
):
    app, _base = live_console
    page = console_page("analyst")
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.goto(page.base + "/")
    page.wait_for_url("**/console/dashboard")
    assert page.get_by_role("heading", name="Dashboard", level=1).is_visible()
    api = app.test_client().get("/v1/reports/overview", headers=program_with_history).get_json()

    def figure(name: str) -> str:
        return page.get_by_test_id(name).inner_text()

    shown = {
        "members": _whole(figure("members")),
        "active_members": _whole(figure("active-members")),
        "outstanding": _whole(figure("points-outstanding")),
        "liability": _money(figure("liability")),
        "redemption_rate": _rate(figure("redemption-rate")),
        "repeat": (_rate(figure("repeat-members")), _rate(figure("repeat-non-members"))),
        "clv": (_money(figure("clv-members")), _money(figure("clv-non-members"))),
        "conversions": _whole(figure("referral-conversions")),
    }
    members, guests = api["retention"]["members"], api["retention"]["non_members"]
    assert shown == {
        "members": api["members"],
        "active_members": api["active_members"],
        "outstanding": api["points"]["outstanding"],
        "liability": api["points"]["liability"],
        "redemption_rate": api["redemption_rate"],
        "repeat": (members["repeat_purchase_rate"], guests["repeat_purchase_rate"]),
        "clv": (members["clv"], guests["clv"]),
        "conversions": api["referral_conversions"],
    }
    # Not a vacuous match: the data above is in it (the demo shopper is a member too).
    assert api["members"] == 3 and api["active_members"] == 3 and api["referral_conversions"] == 1
    assert api["points"]["liability"] is not None and api["redemption_rate"] is not None
    assert api["retention"]["non_members"] == {
        "customers": 2, "repeat_purchase_rate": "50.00", "clv": 7700,
    }  # fmt: skip

    # The charts are drawn from the same months; the tables under them say the same.
    points_chart = page.evaluate(
        "() => Chart.getChart('points-chart').data.datasets.map(d => [d.label, d.data])"
    )
    assert points_chart == [
        ["Earned", [m["points_earned"] for m in api["months"]]],
        ["Redeemed", [m["points_redeemed"] for m in api["months"]]],
        ["Expired", [m["points_expired"] for m in api["months"]]],
    ]
    conversions_chart = page.evaluate(
        "() => Chart.getChart('conversions-chart').data.datasets[0].data"
    )
    assert conversions_chart == [m["referral_conversions"] for m in api["months"]]
    for summary in page.locator("summary").all():
        summary.click()
    table = page.get_by_role("table", name="Points earned, redeemed and expired per month")
    rows = table.locator("tbody tr")
    assert rows.count() == 12
    cells = [[_whole(c) for c in row.locator("td").all_inner_texts()] for row in rows.all()]
    assert cells == [
        [m["points_earned"], m["points_redeemed"], m["points_expired"]] for m in api["months"]
    ]
    table = page.get_by_role("table", name="Referral conversions per month")
    cells = [_whole(text) for text in table.locator("tbody td").all_inner_texts()]
    assert cells == [m["referral_conversions"] for m in api["months"]]
    screenshot(page, "dashboard-tables-open")
    page.reload()
    page.evaluate("() => window.scrollTo(0, 0)")
    screenshot(page, "dashboard")
    page.set_viewport_size({"width": 420, "height": 900})
    screenshot(page, "dashboard-narrow")
    assert violations == [] and page.foreign_requests == []


def test_the_chart_library_loads_only_on_the_dashboard(console_page):
    page = console_page("owner")
    loaded = []
    page.on("request", lambda r: loaded.append(r.url) if "chartjs" in r.url else None)
    for name in ("members", "tiers", "rules", "rewards", "settings", "profile"):
        page.goto(f"{page.base}/{name}")
        assert page.evaluate("() => typeof Chart") == "undefined", name
    assert loaded == []
    page.goto(page.base + "/dashboard")
    assert page.evaluate("() => typeof Chart") == "function"
    assert len(loaded) == 1 and loaded[0].endswith("/vendor/chartjs/chart.umd.js")


def test_support_has_no_dashboard(console_page, screenshot):
    page = console_page("support")
    assert page.url.endswith("/console/members")
    assert page.goto(page.base + "/dashboard").status == 403
    page.goto(page.base + "/")
    page.wait_for_url("**/console/members")
    page.set_viewport_size({"width": 420, "height": 800})
    screenshot(page, "members-narrow")
