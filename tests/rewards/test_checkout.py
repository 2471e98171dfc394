"""Reward codes at checkout: validation, consumption by `order.paid`, reservation, expiry."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from loyalty.ledger import LedgerEntry
from loyalty.members.models import Member
from rewards.catalog import service
from rewards.catalog.models import RewardCode
from tests import factories as f
from tests.rewards.helpers import make_member, make_reward, points, redeem, validate
from tests.statements import of_handler, touching


def issue(client, admin, storefront, customer_id="c_1", **reward_fields):
    make_member(client, admin, customer_id, points=5000)
    reward = make_reward(client, admin, **reward_fields)
    response = redeem(client, storefront, customer_id, reward["id"])
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def pay(client, headers, code, customer_id="c_1", unit_price=5000, **extra):
    event = f.paid(customer_id, lines=[f.line(unit_price=unit_price)], reward_codes=[code], **extra)
    response = client.post("/v1/events", json=event, headers=headers)
    assert response.status_code == 200, response.get_json()
    return event, response.get_json()


def code_effects(body):
    return [e for e in body["effects"] if e["kind"].startswith("reward_code")]


def test_amount_and_percent_discounts_against_the_subtotal(client, admin, storefront):
    amount = issue(client, admin, storefront, amount=1000, min_order=1000)
    response = validate(client, storefront, amount["code"], subtotal=5000)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["valid"] is True and body["reward"]["id"] == amount["reward"]["id"]
    assert body["discount"] == {"kind": "amount_off", "amount": 1000}
    assert validate(client, storefront, amount["code"], subtotal=1000).json["discount"] == {
        "kind": "amount_off",
        "amount": 1000,
    }
    below = validate(client, storefront, amount["code"], subtotal=999)
    assert below.status_code == 422
    assert below.get_json()["type"] == "code-invalid"
    assert below.get_json()["reason"] == "below_minimum"

    capped = issue(client, admin, storefront, amount=1000, points_cost=10)
    assert validate(client, storefront, capped["code"], subtotal=600).json["discount"] == {
        "kind": "amount_off",
        "amount": 600,  # never more than the subtotal
    }
    percent = issue(
        client, admin, storefront, kind="percent_off", amount=None, percent=15, points_cost=10
    )
    body = validate(client, storefront, percent["code"], subtotal=3333).get_json()
    assert body["discount"] == {"kind": "percent_off", "percent": 15, "amount": 499}
    sample = issue(
        client, admin, storefront, kind="free_product", amount=None, sku="SMP", points_cost=10
    )
    assert validate(client, storefront, sample["code"]).json["discount"] == {
        "kind": "free_product",
        "sku": "SMP",
    }
    # Typed sloppily: lower case, dashes, spaces, O for 0 — still the same code.
    sloppy = "-".join(amount["code"][i : i + 4] for i in range(0, 16, 4)).lower()
    assert validate(client, storefront, f" {sloppy} ").status_code == 200


def test_invalid_codes_say_why(client, admin, storefront, session):
    code = issue(client, admin, storefront)["code"]
    make_member(client, admin, "c_2")
    cases = [
        (validate(client, storefront, "NOPE" * 4), "unknown"),
        (validate(client, storefront, code, customer_id="c_2"), "wrong_owner"),
    ]
    for response, reason in cases:
        assert response.status_code == 422, response.get_json()
        assert response.get_json() == {**response.get_json(), "type": "code-invalid",
                                       "reason": reason}  # fmt: skip
    row = session.scalar(select(RewardCode).where(RewardCode.code == code))
    row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    session.commit()
    assert validate(client, storefront, code).json["reason"] == "expired"
    canceled = issue(client, admin, storefront, points_cost=10)
    client.post(f"/v1/redemptions/{canceled['id']}/cancel", headers=storefront)
    assert validate(client, storefront, canceled["code"]).json["reason"] == "canceled"
    used = issue(client, admin, storefront, points_cost=10)
    pay(client, storefront, used["code"])
    assert validate(client, storefront, used["code"]).json["reason"] == "used"


def test_paid_order_consumes_a_code_once_and_a_second_order_is_refused(client, admin, storefront):
    code = issue(client, admin, storefront)
    event, body = pay(client, storefront, code["code"])
    assert code_effects(body) == [
        {"kind": "reward_code_used", "code": code["code"], "code_id": code["id"],
         "reward_id": code["reward"]["id"], "discount": {"kind": "amount_off", "amount": 1000}}
    ]  # fmt: skip
    replay = client.post("/v1/events", json=event, headers=storefront).get_json()
    assert replay["duplicate"] is True and code_effects(replay) == code_effects(body)
    _, second = pay(client, storefront, code["code"])
    assert code_effects(second) == [
        {"kind": "reward_code_rejected", "code": code["code"], "reason": "used"}
    ]
    listed = client.get("/v1/members/c_1/redemptions", headers=storefront).get_json()["items"]
    assert listed[0]["status"] == "used" and listed[0]["order_id"] == event["order"]["id"]
    # A used code can't be canceled for its points.
    cancel = client.post(f"/v1/redemptions/{code['id']}/cancel", headers=storefront)
    assert cancel.status_code == 409
    assert points(client, storefront, "c_1")["available"] == 4500


def test_refusals_on_payment_record_their_reason(client, admin, storefront):
    code = issue(client, admin, storefront, min_order=8000)
    make_member(client, admin, "c_2")
    _, other = pay(client, storefront, code["code"], customer_id="c_2")
    _, below = pay(client, storefront, code["code"], unit_price=7999)
    _, unknown = pay(client, storefront, "zzzz-zzzz")
    assert [code_effects(b)[0]["reason"] for b in (other, below, unknown)] == [
        "wrong_owner", "below_minimum", "unknown"
    ]  # fmt: skip
    _, ok = pay(client, storefront, code["code"], unit_price=8000)
    assert code_effects(ok)[0]["kind"] == "reward_code_used"


def test_friend_code_by_email_for_first_order_only(client, admin, storefront, session):
    friend = service.issue_reward_code(
        session,
        kind="amount_off",
        amount=1500,
        min_order=5000,
        valid_days=30,
        email="New.Friend+shop@Example.com",
        first_order_only=True,
        source_type="referral",
        source_id="42",
    )
    session.commit()
    assert len(friend.code) >= 12 and friend.status == "issued" and friend.amount == 1500
    view = service.reward_code_view(friend)
    assert view["code"] == friend.code and view["first_order_only"] is True
    ok = validate(
        client, storefront, friend.code, customer_id="c_f", email="new.friend@example.com"
    )
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["discount"] == {"kind": "amount_off", "amount": 1500}
    wrong = validate(client, storefront, friend.code, customer_id="c_f", email="x@example.com")
    assert wrong.get_json()["reason"] == "wrong_owner"
    # Someone with that mailbox has paid before: not a first order.
    earlier = f.paid("c_old", email="new.friend@example.com")
    client.post("/v1/events", json=earlier, headers=storefront)
    late = validate(
        client, storefront, friend.code, customer_id="c_f", email="new.friend@example.com"
    )
    assert late.get_json()["reason"] == "not_first_order"
    _, body = pay(client, storefront, friend.code, customer_id="c_f",
                  email="new.friend@example.com")  # fmt: skip
    assert code_effects(body) == [
        {"kind": "reward_code_rejected", "code": friend.code, "reason": "not_first_order"}
    ]


def test_friend_code_is_used_on_the_first_paid_order(client, storefront, session):
    friend = service.issue_reward_code(
        session, kind="percent_off", percent=20, valid_days=30, customer_id="c_new",
        email="n@example.com", first_order_only=True, source_type="referral", source_id="7",
    )  # fmt: skip
    session.commit()
    _, body = pay(client, storefront, friend.code, customer_id="c_new", email="n@example.com")
    assert code_effects(body)[0]["kind"] == "reward_code_used"
    assert code_effects(body)[0]["discount"] == {"kind": "percent_off", "percent": 20,
                                                 "amount": 1000}  # fmt: skip


def test_reservation_holds_a_code_until_the_order_is_canceled(client, admin, storefront):
    code = issue(client, admin, storefront)["code"]
    held = validate(client, storefront, code, order_id="ord_a")
    assert held.status_code == 200 and held.get_json()["reserved_until"]
    assert validate(client, storefront, code, order_id="ord_a").status_code == 200
    other = validate(client, storefront, code, order_id="ord_b")
    assert other.status_code == 422 and other.get_json()["reason"] == "reserved"
    _, body = pay(client, storefront, code, order_id="ord_c")
    assert code_effects(body)[0] == {"kind": "reward_code_rejected", "code": code,
                                     "reason": "reserved"}  # fmt: skip
    canceled = client.post("/v1/events", json=f.canceled("ord_a"), headers=storefront).get_json()
    assert {"kind": "reward_code_released", "code": code} in canceled["effects"]
    assert validate(client, storefront, code, order_id="ord_b").status_code == 200
    _, paid = pay(client, storefront, code, order_id="ord_b")
    assert code_effects(paid)[0]["kind"] == "reward_code_used"


def test_expire_codes_job_returns_stock_and_points_per_setting(client, admin, storefront, runner,
                                                               session):  # fmt: skip
    make_member(client, admin, points=2000)
    reward = make_reward(client, admin, stock=5, code_valid_days=10)
    kept = redeem(client, storefront, "c_1", reward["id"]).get_json()
    later = datetime.now(UTC) + timedelta(days=11)
    result = runner.invoke(args=["loyalty", "jobs", "expire-codes", "--now", later.isoformat()])
    assert result.exit_code == 0, result.output
    assert "expire-codes: 1 changed" in result.output
    assert client.get(f"/v1/rewards/{reward['id']}", headers=admin).json["stock"] == 5
    assert points(client, storefront, "c_1")["available"] == 1500  # setting off: points kept
    again = runner.invoke(args=["loyalty", "jobs", "expire-codes", "--now", later.isoformat()])
    assert "expire-codes: 0 changed" in again.output
    listed = client.get("/v1/members/c_1/redemptions", headers=storefront).json["items"]
    assert listed[0]["id"] == kept["id"] and listed[0]["status"] == "expired"

    settings = client.put("/v1/reward-settings", json={"expired_codes_return_points": True},
                          headers=admin)  # fmt: skip
    assert settings.status_code == 200 and settings.get_json()["expired_codes_return_points"]
    returned = redeem(client, storefront, "c_1", reward["id"]).get_json()
    assert points(client, storefront, "c_1")["available"] == 1000
    later = datetime.now(UTC) + timedelta(days=11)
    runner.invoke(args=["loyalty", "jobs", "expire-codes", "--now", later.isoformat()])
    assert points(client, storefront, "c_1")["available"] == 1500
    entry = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id.desc())).first()
    assert (entry.kind, entry.points, entry.source_id) == ("redeem_cancel", 500,
                                                            str(returned["id"]))  # fmt: skip
    assert runner.invoke(args=["loyalty", "verify-ledger"]).exit_code == 0
    assert client.get(f"/v1/rewards/{reward['id']}", headers=admin).json["stock"] == 5


def test_demo_seed_adds_the_reward_catalog(client, admin, runner, session):
    result = runner.invoke(args=["loyalty", "seed-demo"])
    assert result.exit_code == 0, result.output
    items = client.get("/v1/rewards", headers=admin).get_json()["items"]
    by_cost = {r["points_cost"]: r for r in items}
    assert by_cost[500]["amount"] == 1000 and by_cost[500]["min_order"] == 1000
    assert by_cost[2500]["amount"] == 10000 and by_cost[2500]["stock"] is not None
    # The demo tiers are seeded first, so the big reward is Rouge-only and live.
    assert by_cost[2500]["tier"] == "Rouge" and by_cost[2500]["active"] is True
    kinds = {r["kind"] for r in items}
    assert {"amount_off", "free_shipping", "free_product"} <= kinds
    demo = session.scalar(select(Member).where(Member.customer_id == "demo-shopper"))
    assert demo is not None


def test_email_owned_code_asks_for_the_email(client, storefront, session):
    friend = service.issue_reward_code(
        session, kind="free_shipping", valid_days=30, email="who@example.com",
        source_type="referral", source_id="9",
    )  # fmt: skip
    session.commit()
    response = validate(client, storefront, friend.code, customer_id="c_unknown")
    assert response.status_code == 422
    assert response.get_json()["reason"] == "wrong_owner"
    assert "email" in response.get_json()["detail"]
    ok = validate(client, storefront, friend.code, customer_id="c_unknown", email="WHO@example.com")
    assert ok.get_json()["discount"] == {"kind": "free_shipping"}


def test_an_order_costs_reward_code_statements_only_for_the_codes_it_lists(
    client, admin, storefront
):
    code = issue(client, admin, storefront)
    with of_handler(service.RewardCodeConsumption) as calls:
        assert client.post("/v1/events", json=f.paid(), headers=storefront).status_code == 200
        _, body = pay(client, storefront, code["code"])
    assert code_effects(body)[0]["kind"] == "reward_code_used"
    assert calls[0] == []
    # Find the code, use it with UPDATE ... RETURNING: the row as written is not read back.
    assert [s.split(" ")[0] for s in touching(calls[1], "reward_codes")] == ["SELECT", "UPDATE"]
