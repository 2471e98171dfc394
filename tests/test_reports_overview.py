"""The overview (the console's dashboard and GET /v1/reports/overview): every number below is
worked out by hand from the data made."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from loyalty import ledger
from loyalty.hooks import hooks
from loyalty.members.models import Member
from loyalty.program.service import get_program
from loyalty.reports import overview
from loyalty.types import utcnow
from referrals.models import Referral
from rewards.catalog.models import Reward
from tests import factories as f
from tests.test_reports import at, enroll, pay

NOW = at("2026-06-15T12:00:00Z")  # the window: [2025-07-01, NOW)


def post(session, member_id, kind, points, when, **extra):
    ledger.post_entry(
        session, member_id, kind, points, source_type="test", source_id=kind,
        occurred_at=when, **extra,
    )  # fmt: skip


def referral(session, referrer_id, status, converted_at=None, reward_state=None):
    session.add(
        Referral(
            referrer_id=referrer_id, code="ABC", status=status, source="claim",
            converted_at=converted_at, reward_state=reward_state,
        )
    )  # fmt: skip


@pytest.fixture
def program(client, admin, session):
    """m1, m2 members; m3 a member erased after ordering; n1 never a member.

    Orders (each earns 1 point per 1.00, pending: no job runs):
    - m1: 50.00 on 2026-01-10, 100.00 on 2026-05-10
    - m2: 80.00 on 2025-06-20 (before the window)
    - m3: 40.00 on 2026-06-01, then erased
    - n1: 30.00 on 2026-04-01, 20.00 on 2026-04-20
    Entries: m2 bonus 200 (Feb), redeems 120 and gets 20 back (Mar), 30 expire (Apr); m1 is
    adjusted by −5 (May: available −5); m3 had a bonus of 1000 just before the window.
    """
    assert client.put("/v1/program", json={"auto_enroll": False}, headers=admin).status_code == 200
    for customer in ("m1", "m2", "m3"):
        enroll(client, admin, customer)
    pay(client, admin, "m1", 5000, at("2026-01-10T09:00:00Z"))
    pay(client, admin, "m1", 10000, at("2026-05-10T09:00:00Z"))
    pay(client, admin, "m2", 8000, at("2025-06-20T09:00:00Z"))
    pay(client, admin, "m3", 4000, at("2026-06-01T09:00:00Z"))
    pay(client, admin, "n1", 3000, at("2026-04-01T09:00:00Z"))
    pay(client, admin, "n1", 2000, at("2026-04-20T09:00:00Z"))
    ids = dict(session.execute(select(Member.customer_id, Member.id)).all())
    m1, m2, m3 = ids["m1"], ids["m2"], ids["m3"]
    post(session, m3, "bonus", 1000, at("2025-06-30T23:59:59Z"))
    post(session, m2, "bonus", 200, at("2026-02-01T00:00:00Z"))
    post(session, m2, "redeem", -120, at("2026-03-05T00:00:00Z"), spend=True)
    post(session, m2, "redeem_cancel", 20, at("2026-03-20T00:00:00Z"))
    post(session, m2, "expire", -30, at("2026-04-01T00:00:00Z"))
    post(session, m1, "adjust", -5, at("2026-05-20T00:00:00Z"))
    referral(session, m1, "converted", at("2026-02-10T00:00:00Z"), "earned")
    referral(session, m1, "converted", at("2026-02-20T00:00:00Z"), "canceled")  # refunded
    referral(session, m2, "converted", at("2025-06-01T00:00:00Z"), "earned")  # before
    referral(session, m2, "claimed")
    referral(session, m2, "converted", at("2026-06-10T00:00:00Z"), "pending")
    session.add_all(
        [
            Reward(name="10 off", kind="amount_off", amount=1000, points_cost=500),  # 2 / point
            Reward(
                name="Ended",
                kind="amount_off",
                amount=10000,
                points_cost=1000,
                ends_at=at("2026-06-01T00:00:00Z"),
            ),  # fmt: skip
            Reward(name="Off", kind="amount_off", amount=900, points_cost=300, active=False),
            Reward(name="Gone", kind="amount_off", amount=900, points_cost=300, stock=0),
            Reward(name="Half", kind="percent_off", percent=50, points_cost=10),
        ]
    )
    session.commit()
    assert client.delete("/v1/members/m3", headers=admin).status_code == 204
    return ids


def months(body):
    return {
        m["month"]: (m["points_earned"], m["points_redeemed"], m["points_expired"],
                     m["referral_conversions"])
        for m in body["months"]
        if any(value for key, value in m.items() if key != "month")
    }  # fmt: skip


def compute(session, now=NOW):
    found = hooks()
    return overview.overview(
        session, now, conversions=found.report_conversions, point_value=found.report_point_value
    )


def test_overview_numbers(app, session, program):
    with app.test_request_context():
        body = compute(session)
    assert body["from"] == at("2025-07-01T00:00:00Z") and body["to"] == body["as_of"] == NOW
    assert (body["members"], body["active_members"], body["active_days"]) == (2, 1, 90)
    assert body["points"] == {
        "available": 70,  # m2: 200 − 120 + 20 − 30; m1's −5 counts as 0
        "pending": 230,  # m1 50 + 100, m2 80 (m3 erased)
        "outstanding": 300,
        "value": {
            "money": 1000,
            "points": 500,
            "per_point": "2.0000",
            "reward_id": session.scalar(select(Reward.id).where(Reward.name == "10 off")),
            "reward_name": "10 off",
        },  # fmt: skip
        "liability": 600,
    }
    assert [m["month"] for m in body["months"]] == [
        "2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12",
        "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06",
    ]  # fmt: skip
    assert months(body) == {
        "2026-01": (50, 0, 0, 0),
        "2026-02": (200, 0, 0, 1),
        "2026-03": (0, 100, 0, 0),
        "2026-04": (0, 0, 30, 0),
        "2026-05": (95, 0, 0, 0),  # 100 earned, −5 adjusted
        "2026-06": (40, 0, 0, 1),
    }
    flows = (body["points_earned"], body["points_redeemed"], body["points_expired"])
    assert flows == (385, 100, 30)
    assert body["redemption_rate"] == "25.97"  # 100 / 385
    assert body["referral_conversions"] == 2
    assert body["retention"] == {
        "members": {"customers": 2, "repeat_purchase_rate": "50.00", "clv": 9500},  # m1, m3
        "non_members": {"customers": 1, "repeat_purchase_rate": "100.00", "clv": 5000},
    }


def test_the_window_moves_with_now(app, session, program):
    """A month later the window starts in August: July's nothing, and June still counts."""
    with app.test_request_context():
        body = compute(session, at("2026-07-01T00:00:00Z"))
    assert body["months"][0]["month"] == "2025-08" and body["months"][-1]["month"] == "2026-07"
    assert body["months"][-2] == {
        "month": "2026-06", "points_earned": 40, "points_redeemed": 0, "points_expired": 0,
        "referral_conversions": 1,
    }  # fmt: skip
    assert body["active_members"] == 1  # m1's order of 05-10 is 52 days old
    with app.test_request_context():
        later = compute(session, at("2026-09-01T00:00:00Z"))
    assert later["active_members"] == 0  # 114 days
    assert later["points"]["value"]["reward_name"] == "10 off"


def test_no_amount_off_reward_means_no_liability(app, session, program):
    for reward in session.scalars(select(Reward)):
        reward.active = False
    session.commit()
    with app.test_request_context():
        body = compute(session)
    assert body["points"]["value"] is None and body["points"]["liability"] is None
    assert body["points"]["outstanding"] == 300


def test_the_best_rate_wins_and_the_liability_rounds_half_up(app, session, program):
    session.add(Reward(name="Rich", kind="amount_off", amount=1000, points_cost=400))  # 2.5
    session.commit()
    with app.test_request_context():
        points = compute(session)["points"]
    assert points["value"]["per_point"] == "2.5000" and points["liability"] == 750
    session.add(Reward(name="Odd", kind="amount_off", amount=1001, points_cost=400))  # 2.5025
    session.commit()
    with app.test_request_context():
        points = compute(session)["points"]
    assert points["value"]["reward_name"] == "Odd"
    assert points["liability"] == 751  # 300 × 1001 / 400 = 750.75


def test_points_at_checkout_value_points_when_its_rate_is_the_best(app, session, program):
    checkout = get_program(session, for_update=True)
    checkout.checkout_points_enabled = True
    checkout.checkout_value_per_point = Decimal("1.5")  # below the catalog's 2 a point
    session.commit()
    with app.test_request_context():
        points = compute(session)["points"]
    assert points["value"]["reward_name"] == "10 off" and points["liability"] == 600
    checkout = get_program(session, for_update=True)
    checkout.checkout_value_per_point = Decimal("2.25")  # above it: checkout is the best rate
    session.commit()
    with app.test_request_context():
        points = compute(session)["points"]
    assert points["value"] == {"money": 9, "points": 4, "per_point": "2.2500",
                               "reward_id": None, "reward_name": "Points at checkout"}  # fmt: skip
    assert points["liability"] == 675  # 300 × 9 / 4
    for reward in session.scalars(select(Reward)):
        reward.active = False
    session.commit()
    with app.test_request_context():
        assert compute(session)["points"]["liability"] == 675  # no reward, checkout still on


def test_an_empty_program(app, session):
    with app.test_request_context():
        body = compute(session)
    assert (body["members"], body["active_members"], body["points_earned"]) == (0, 0, 0)
    assert body["redemption_rate"] is None and body["points"]["liability"] is None
    assert body["retention"]["members"] == {
        "customers": 0, "repeat_purchase_rate": None, "clv": None,
    }  # fmt: skip
    assert len(body["months"]) == 12


# --- over HTTP ---------------------------------------------------------------------------------


def test_the_api_needs_the_reports_or_admin_scope(client, keys):
    assert client.get("/v1/reports/overview").status_code == 401
    refused = client.get("/v1/reports/overview", headers=keys["storefront"])
    assert refused.status_code == 403
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    for scope in ("reports", "admin"):
        assert client.get("/v1/reports/overview", headers=keys[scope]).status_code == 200


def test_the_api_answers_with_the_retention_report_of_its_own_window(client, keys, admin):
    now = utcnow()
    assert client.put("/v1/program", json={"auto_enroll": False}, headers=admin).status_code == 200
    enroll(client, admin, "a1")
    pay(client, admin, "a1", 2500, now - timedelta(days=3))
    pay(client, admin, "a1", 1500, now - timedelta(days=2))
    pay(client, admin, "g1", 1000, now - timedelta(days=1))
    response = client.get("/v1/reports/overview", headers=keys["reports"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    start = datetime.fromisoformat(body["from"])
    assert start.tzinfo is not None and start.day == 1 and start.hour == 0
    assert start.astimezone(UTC) == overview.window_start(datetime.fromisoformat(body["as_of"]))
    assert body["to"] == body["as_of"]
    assert (body["members"], body["active_members"], body["points_earned"]) == (1, 1, 40)
    assert sum(month["points_earned"] for month in body["months"]) == 40
    assert body["points"]["pending"] == 40 and body["points"]["value"] is None
    retention = client.get(
        "/v1/reports/retention",
        query_string={"from": body["from"], "to": body["to"]},
        headers=keys["reports"],
    ).get_json()
    for group in ("members", "non_members"):
        assert body["retention"][group] == {
            key: retention[group][key] for key in ("customers", "repeat_purchase_rate", "clv")
        }
    # Read from the same aggregates, as fresh: every event before it counted (all of them).
    assert body["data_as_of"] is not None and body["data_as_of"] == retention["data_as_of"]
    assert datetime.fromisoformat(body["data_as_of"]) > now - timedelta(minutes=5)
    assert body["retention"]["members"] == {
        "customers": 1, "repeat_purchase_rate": "100.00", "clv": 4000,
    }  # fmt: skip


def test_a_paid_order_then_a_refund_in_the_overview(client, keys, admin):
    """A refund's reversal is in the month's earned points, net."""
    now = utcnow()
    enroll(client, admin, "r1")
    order = pay(client, admin, "r1", 10000, now - timedelta(hours=2))
    refund = f.refunded(order, "r1", amount=4000, occurred_at=now - timedelta(hours=1))
    assert client.post("/v1/events", json=refund, headers=admin).status_code == 200
    body = client.get("/v1/reports/overview", headers=keys["reports"]).get_json()
    assert body["points_earned"] == 60 and body["points"]["outstanding"] == 60
