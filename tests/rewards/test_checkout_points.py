"""Points at checkout: the program's `checkout_points` settings, and points turned into a
one-time amount-off code for a cart (`POST /v1/members/{id}/checkout-discounts`, its `/v1/me`
twin) — limits, exact arithmetic, idempotency, and the code living the life of any reward code
(validated, used on an order, canceled or expired with its points back)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from loyalty.audit import AuditLog
from loyalty.ledger import find_drift
from loyalty.webhooks.models import EVENT_TYPES
from rewards.catalog.models import RewardCode
from rewards.catalog.service import checkout_amount, checkout_min_order
from tests import factories as f
from tests.conftest import bearer
from tests.rewards.helpers import make_member, make_reward, points, redeem, validate
from tests.webhooks.helpers import create_endpoint, messages

TERMS = {"enabled": True, "value_per_point": "1", "min_points": 100, "step": 50,
         "max_share_of_cart": 50, "code_valid_hours": 24}  # fmt: skip


def configure(client, admin, **terms):
    response = client.put(
        "/v1/program", json={"checkout_points": {**TERMS, **terms}}, headers=admin
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["checkout_points"]


def spend(client, headers, points_, cart_subtotal, customer_id="c_1", **extra_headers):
    return client.post(
        f"/v1/members/{customer_id}/checkout-discounts",
        json={"points": points_, "cart_subtotal": cart_subtotal},
        headers={**headers, **extra_headers},
    )


def codes(session):
    session.expire_all()
    return session.scalars(select(RewardCode).order_by(RewardCode.id)).all()


@pytest.fixture
def member(client, admin):
    configure(client, admin)
    return make_member(client, admin, "c_1", points=1000)


# --- settings ---------------------------------------------------------------------------------


def test_the_program_starts_with_points_at_checkout_off(client, admin):
    shown = client.get("/v1/program", headers=admin).get_json()["checkout_points"]
    assert shown == {"enabled": False, "value_per_point": "1", "min_points": 100, "step": 100,
                     "max_share_of_cart": 50, "code_valid_hours": 24}  # fmt: skip


def test_settings_change_partially_and_are_audited(client, admin, session):
    response = client.put(
        "/v1/program",
        json={"checkout_points": {"enabled": True, "value_per_point": "0.25"}},
        headers=admin,
    )
    assert response.status_code == 200, response.get_json()
    shown = response.get_json()["checkout_points"]
    assert (shown["enabled"], shown["value_per_point"], shown["min_points"]) == (True, "0.25", 100)
    assert client.get("/v1/program", headers=admin).get_json()["checkout_points"] == shown
    row = session.scalars(
        select(AuditLog).where(AuditLog.action == "program.update").order_by(AuditLog.id.desc())
    ).first()
    assert row.before["checkout_points"]["enabled"] is False
    assert row.after["checkout_points"] == shown


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"value_per_point": "0"}, "value_per_point"),
        ({"value_per_point": "-1"}, "value_per_point"),
        ({"value_per_point": "0.00001"}, "value_per_point"),  # 5 places: not exact
        ({"value_per_point": 1}, "value_per_point"),  # numbers are strings for decimals
        ({"value_per_point": "1000001"}, "value_per_point"),
        ({"min_points": 0}, "min_points"),
        ({"step": 0}, "step"),
        ({"max_share_of_cart": 0}, "max_share_of_cart"),
        ({"max_share_of_cart": 101}, "max_share_of_cart"),
        ({"code_valid_hours": 0}, "code_valid_hours"),
        ({"enabled": "yes"}, "enabled"),
        ({"min_points": 120, "step": 50}, "min_points"),  # not a multiple of the step
        ({"surprise": 1}, "surprise"),
    ],
)
def test_settings_are_validated_strictly(client, admin, terms, field):
    before = client.get("/v1/program", headers=admin).get_json()
    response = client.put("/v1/program", json={"checkout_points": terms}, headers=admin)
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["type"] == "validation-error"
    assert field in body["errors"]["checkout_points"]
    assert client.get("/v1/program", headers=admin).get_json() == before


# --- arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points_", "value", "amount"),
    [
        (100, "1", 100),
        (150, "0.5", 75),
        (101, "0.5", 50),  # 50.5: rounded down, never in the shopper's favour
        (100, "0.3333", 33),  # 33.33
        (3, "0.3333", 0),  # 0.9999
        (30001, "0.3333", 9999),  # 9999.3333
        (7, "12.3456", 86),  # 86.4192
        (1_000_000_000, "0.0001", 100_000),
    ],
)
def test_a_code_is_worth_points_times_value_rounded_down(points_, value, amount):
    assert checkout_amount(points_, Decimal(value)) == amount


def test_the_minimum_order_is_the_smallest_cart_the_share_allows():
    assert checkout_min_order(500, 50) == 1000
    assert checkout_min_order(333, 50) == 666
    assert checkout_min_order(334, 30) == 1114  # 1113 × 30% = 333.9 < 334
    assert checkout_min_order(700, 100) == 700


def test_the_code_is_worth_floor_points_times_value(client, admin, storefront, member):
    configure(client, admin, value_per_point="0.3333", min_points=50, step=1)
    response = spend(client, storefront, 301, 10000)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["kind"], body["amount"], body["points_spent"]) == ("amount_off", 100, 301)
    assert body["min_order"] == 200  # 100 is 50% of 200
    assert points(client, storefront, "c_1")["available"] == 699


# --- the request ------------------------------------------------------------------------------


def test_points_become_a_one_time_code_for_the_cart(client, admin, storefront, member, session):
    before = datetime.now(UTC)
    response = spend(client, storefront, 300, 8000)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["kind"] == "amount_off" and body["amount"] == 300
    assert (body["status"], body["reward_id"], body["reward"], body["points_spent"]) == (
        "issued", None, None, 300,
    )  # fmt: skip
    assert body["min_order"] == 600
    expires = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(hours=24) <= expires <= datetime.now(UTC) + timedelta(hours=24)
    assert points(client, storefront, "c_1")["available"] == 700
    [entry] = client.get("/v1/members/c_1/activity?limit=1", headers=admin).get_json()["items"]
    assert (entry["kind"], entry["points"]) == ("redeem", -300)
    assert entry["detail"] == {"checkout": True, "code_id": body["id"], "amount": 300,
                               "value_per_point": "1", "cart_subtotal": 8000}  # fmt: skip
    listed = client.get("/v1/members/c_1/redemptions", headers=storefront).get_json()["items"]
    assert [item["code"] for item in listed] == [body["code"]]
    [row] = codes(session)
    assert row.source_type == "checkout" and row.customer_id == "c_1"
    assert find_drift(session) == []


def test_an_admin_key_may_ask_too(client, admin, member):
    assert spend(client, admin, 100, 1000).status_code == 201


@pytest.mark.parametrize(
    ("points_", "cart", "reason"),
    [
        (50, 10000, "At least 100 points."),
        (125, 10000, "A multiple of 50 points."),
        (600, 1000, "Worth 600, more than 50% of the cart (500)."),
    ],
)
def test_points_outside_the_limits_are_refused_and_change_nothing(
    client, storefront, member, session, points_, cart, reason
):
    response = spend(client, storefront, points_, cart)
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["type"] == "validation-error"
    assert body["errors"] == {"points": [reason]}
    # The limits, so the shopper's slider can correct itself.
    assert (body["min_points"], body["step"]) == (100, 50)
    assert body["max_points"] == min(1000, cart // 2) // 50 * 50
    assert points(client, storefront, "c_1")["available"] == 1000
    assert codes(session) == []


def test_a_code_worth_nothing_is_refused(client, admin, storefront, member):
    configure(client, admin, value_per_point="0.001", min_points=100, step=100)
    response = spend(client, storefront, 900, 10000)  # 0.9 of a cent
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"points": ["Worth less than one minor unit."]}


def test_the_share_of_the_cart_is_exact_at_its_edge(client, admin, storefront, member):
    configure(client, admin, value_per_point="0.5", min_points=1, step=1, max_share_of_cart=30)
    # 30% of 1001 is 300.3: at most 300 off, i.e. at most 601 points (300.5 → 300).
    assert spend(client, storefront, 602, 1001).status_code == 422
    response = spend(client, storefront, 601, 1001)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["amount"] == 300


def test_more_points_than_available_is_insufficient_points(client, storefront, member, session):
    response = spend(client, storefront, 1050, 100000)
    assert response.status_code == 422
    body = response.get_json()
    assert (body["type"], body["available"], body["points"]) == ("insufficient-points", 1000, 1050)
    assert codes(session) == [] and points(client, storefront, "c_1")["available"] == 1000


def test_pending_points_cannot_be_spent(client, admin, storefront, session):
    configure(client, admin)
    make_member(client, admin, "c_1")
    client.post("/v1/events", json=f.paid("c_1", lines=[f.line(unit_price=50000)]),
                headers=storefront)  # fmt: skip  # 500 points, pending
    assert points(client, storefront, "c_1")["pending"] == 500
    response = spend(client, storefront, 100, 10000)
    assert response.get_json()["type"] == "insufficient-points"


def test_disabled_is_a_409_and_changes_nothing(client, admin, storefront, session):
    make_member(client, admin, "c_1", points=1000)
    response = spend(client, storefront, 100, 10000)
    assert response.status_code == 409
    assert (response.get_json()["type"], response.get_json()["reason"]) == (
        "reward-unavailable", "disabled",
    )  # fmt: skip
    configure(client, admin, enabled=False)
    assert spend(client, storefront, 100, 10000).status_code == 409
    assert codes(session) == [] and points(client, storefront, "c_1")["available"] == 1000


def test_unknown_member_and_bad_bodies(client, storefront, member):
    assert spend(client, storefront, 100, 1000, customer_id="nobody").status_code == 404
    for body in (
        {"points": "100", "cart_subtotal": 1000},
        {"points": 100, "cart_subtotal": 0},
        {"points": 0, "cart_subtotal": 1000},
        {"points": 100},
        {"points": 100, "cart_subtotal": 1000, "currency": "USD"},
    ):
        response = client.post("/v1/members/c_1/checkout-discounts", json=body, headers=storefront)
        assert response.status_code == 422, body
        assert response.get_json()["type"] == "validation-error"


def test_the_same_idempotency_key_issues_one_code(client, storefront, member, session):
    key = {"Idempotency-Key": "cart-42"}
    first = spend(client, storefront, 200, 5000, **key)
    again = spend(client, storefront, 200, 5000, **key)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(codes(session)) == 1
    assert points(client, storefront, "c_1")["available"] == 800
    other = spend(client, storefront, 300, 5000, **key)
    assert other.status_code == 422 and other.get_json()["type"] == "idempotency-conflict"


def test_the_quote_gives_the_slider_its_bounds(client, admin, storefront, member):
    response = client.get("/v1/members/c_1/checkout-points?cart_subtotal=1500", headers=storefront)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "enabled": True, "currency": "USD", "value_per_point": "1", "min_points": 100,
        "step": 50, "max_share_of_cart": 50, "code_valid_hours": 24, "cart_subtotal": 1500,
        "points_available": 1000, "max_points": 750, "max_amount": 750,
    }  # fmt: skip
    small = client.get("/v1/members/c_1/checkout-points?cart_subtotal=150", headers=storefront)
    assert small.get_json()["max_points"] == 0  # 75 off at most: below the 100-point minimum
    configure(client, admin, enabled=False)
    off = client.get("/v1/members/c_1/checkout-points?cart_subtotal=1500", headers=storefront)
    assert (off.get_json()["enabled"], off.get_json()["max_points"]) == (False, 0)


# --- the widget -------------------------------------------------------------------------------


def mint(client, storefront, customer_id):
    response = client.post("/v1/widget-tokens", json={"customer_id": customer_id},
                           headers=storefront)  # fmt: skip
    assert response.status_code == 201
    return bearer(response.get_json()["token"])


def test_the_widget_spends_its_own_members_points_only(client, admin, storefront, member):
    make_member(client, admin, "c_2", points=100)
    ana, ben = mint(client, storefront, "c_1"), mint(client, storefront, "c_2")
    body = {"points": 300, "cart_subtotal": 5000}
    response = client.post("/v1/me/checkout-discounts", json=body, headers=ana)
    assert response.status_code == 201, response.get_json()
    made = response.get_json()
    assert (made["amount"], made["points_spent"]) == (300, 300)
    assert client.get(f"/v1/me/redemptions/{made['id']}", headers=ana).status_code == 200
    assert client.get(f"/v1/me/redemptions/{made['id']}", headers=ben).status_code == 404
    # Ben's token acts on Ben's 100 points, never on anyone else's.
    refused = client.post("/v1/me/checkout-discounts", json=body, headers=ben)
    assert refused.get_json()["type"] == "insufficient-points"
    # And a widget token has no access to the members' endpoints.
    assert spend(client, ben, 100, 5000).status_code in (401, 403)
    assert points(client, storefront, "c_1")["available"] == 700
    assert points(client, storefront, "c_2")["available"] == 100
    quote = client.get("/v1/me/checkout-points?cart_subtotal=5000", headers=ana).get_json()
    assert (quote["points_available"], quote["max_points"]) == (700, 700)


# --- the code's life --------------------------------------------------------------------------


def test_canceling_the_code_returns_its_points(client, storefront, member, session):
    made = spend(client, storefront, 400, 5000).get_json()
    response = client.post(f"/v1/redemptions/{made['id']}/cancel", headers=storefront)
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["status"], response.get_json()["points_returned"]) == (
        "canceled", 400,
    )  # fmt: skip
    assert points(client, storefront, "c_1")["available"] == 1000
    assert (
        client.post(f"/v1/redemptions/{made['id']}/cancel", headers=storefront).status_code == 409
    )
    assert points(client, storefront, "c_1")["available"] == 1000
    assert find_drift(session) == []


def test_an_unused_code_expires_with_its_points_back(client, admin, storefront, runner, member):
    # Catalog codes keep their points on expiry here (the default); checkout codes never do.
    reward = make_reward(client, admin, points_cost=100)
    catalog = redeem(client, storefront, "c_1", reward["id"]).get_json()
    made = spend(client, storefront, 200, 5000).get_json()
    assert points(client, storefront, "c_1")["available"] == 700
    f.run_job(runner, "expire-codes", datetime.now(UTC) + timedelta(hours=23))
    assert points(client, storefront, "c_1")["available"] == 700  # not yet
    f.run_job(runner, "expire-codes", datetime.now(UTC) + timedelta(hours=25))
    f.run_job(runner, "expire-codes", datetime.now(UTC) + timedelta(hours=26))  # idempotent
    assert points(client, storefront, "c_1")["available"] == 900
    items = client.get("/v1/members/c_1/redemptions", headers=storefront).get_json()["items"]
    by_id = {item["id"]: item for item in items}
    assert (by_id[made["id"]]["status"], by_id[made["id"]]["points_returned"]) == ("expired", 200)
    assert by_id[catalog["id"]]["status"] == "issued"  # 90 days
    activity = client.get("/v1/members/c_1/activity?limit=1", headers=admin).get_json()["items"]
    assert (activity[0]["kind"], activity[0]["points"]) == ("redeem_cancel", 200)
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output


def test_the_code_is_validated_and_used_on_an_order(client, storefront, member, session):
    made = spend(client, storefront, 500, 10000).get_json()
    assert made["min_order"] == 1000
    short = validate(client, storefront, made["code"], subtotal=999)
    assert (short.status_code, short.get_json()["reason"]) == (422, "below_minimum")
    other = validate(client, storefront, made["code"], customer_id="c_2", subtotal=10000)
    assert other.get_json()["reason"] == "wrong_owner"
    good = validate(client, storefront, made["code"], subtotal=10000)
    assert good.status_code == 200, good.get_json()
    assert good.get_json()["discount"] == {"kind": "amount_off", "amount": 500}
    assert good.get_json()["reward"] is None

    event = f.paid("c_1", lines=[f.line(unit_price=10000, discount=500)],
                   reward_codes=[made["code"]])  # fmt: skip
    response = client.post("/v1/events", json=event, headers=storefront)
    assert response.status_code == 200, response.get_json()
    [used] = [e for e in response.get_json()["effects"] if e["kind"] == "reward_code_used"]
    assert used["discount"] == {"kind": "amount_off", "amount": 500}
    [row] = codes(session)
    assert (row.status, row.used_discount) == ("used", 500)
    # A used code can't be canceled for its points.
    assert (
        client.post(f"/v1/redemptions/{made['id']}/cancel", headers=storefront).status_code == 409
    )


def test_reward_redeemed_is_sent_for_it(client, admin, storefront, member):
    create_endpoint(client, admin, "https://hooks.example.com/x", list(EVENT_TYPES))
    made = spend(client, storefront, 300, 5000).get_json()
    [data] = [m.data for m in messages("reward.redeemed")]
    assert data["occurred_at"]
    del data["occurred_at"]
    assert data == {
        "reward_code_id": made["id"], "reward_id": None, "customer_id": "c_1",
        "source": "checkout", "amount": 300, "points_spent": 300, "points_available": 700,
        "expires_at": made["expires_at"],
    }  # fmt: skip
    [issued] = [m.data for m in messages("reward.issued")]
    assert (issued["code"], issued["source"], issued["amount"]) == (made["code"], "checkout", 300)
