"""Redemptions and code consumption under real concurrency (PostgreSQL, many connections)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from loyalty.extensions import db
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.members.models import Member
from rewards.catalog.models import Reward, RewardCode
from tests import factories as f
from tests.rewards.helpers import make_member, make_reward, redeem

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]


def in_parallel(count: int, call):
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def answer(response):
    body = response.get_json()
    return response.status_code, body.get("type"), body.get("reason")


def assert_ledger_clean(pg_app):
    with pg_app.app_context():
        assert find_drift(db.session) == []
    result = pg_app.test_cli_runner().invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output


def test_10_concurrent_redemptions_of_500_with_1000_points_issue_exactly_2(pg_app, pg_keys):
    client = pg_app.test_client()
    make_member(client, pg_keys["admin"], "c_rich", points=1000)
    reward = make_reward(client, pg_keys["admin"])

    results = in_parallel(
        10,
        lambda _: answer(
            redeem(pg_app.test_client(), pg_keys["storefront"], "c_rich", reward["id"])
        ),
    )
    assert sorted(results, key=str) == sorted(
        [(201, None, None)] * 2 + [(422, "insufficient-points", None)] * 8, key=str
    )
    with pg_app.app_context():
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_rich")).one()
        assert member.points_available == 0
        codes = db.session.scalars(select(RewardCode.code)).all()
        assert len(codes) == len(set(codes)) == 2
        assert (
            db.session.scalar(
                select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "redeem")
            )
            == 2
        )
    assert_ledger_clean(pg_app)


def test_stock_of_5_redeemed_by_50_members_at_once_issues_exactly_5(pg_app, pg_keys):
    client = pg_app.test_client()
    for i in range(50):
        make_member(client, pg_keys["admin"], f"c_{i}", points=800)
    reward = make_reward(client, pg_keys["admin"], stock=5)

    results = in_parallel(
        50,
        lambda i: answer(
            redeem(pg_app.test_client(), pg_keys["storefront"], f"c_{i}", reward["id"])
        ),
    )
    assert results.count((201, None, None)) == 5
    assert results.count((409, "reward-unavailable", "out_of_stock")) == 45
    with pg_app.app_context():
        assert db.session.get(Reward, reward["id"]).stock == 0
        balances = db.session.scalars(select(Member.points_available)).all()
        assert sorted(balances) == [300] * 5 + [800] * 45  # nobody refused lost a point
        assert db.session.scalar(select(func.count()).select_from(RewardCode)) == 5
    assert_ledger_clean(pg_app)


def test_one_code_on_two_concurrent_orders_is_used_once(pg_app, pg_keys):
    client = pg_app.test_client()
    make_member(client, pg_keys["admin"], "c_shop", points=500)
    reward = make_reward(client, pg_keys["admin"])
    code = redeem(client, pg_keys["storefront"], "c_shop", reward["id"]).get_json()["code"]
    # Two different orders of the code's owner, paid at the same moment.
    events = [f.paid("c_shop", lines=[f.line(unit_price=5000)], reward_codes=[code])
              for _ in range(2)]  # fmt: skip

    def send(i):
        response = pg_app.test_client().post(
            "/v1/events", json=events[i], headers=pg_keys["storefront"]
        )
        assert response.status_code == 200, response.get_json()
        return [e for e in response.get_json()["effects"] if e["kind"].startswith("reward_code")]

    results = in_parallel(2, send)
    kinds = sorted(effects[0]["kind"] for effects in results)
    assert kinds == ["reward_code_rejected", "reward_code_used"]
    rejected = next(e[0] for e in results if e[0]["kind"] == "reward_code_rejected")
    assert rejected == {"kind": "reward_code_rejected", "code": code, "reason": "used"}
    with pg_app.app_context():
        row = db.session.scalars(select(RewardCode)).one()
        assert row.status == "used" and row.used_discount == 1000
        assert row.used_order_id in {e["order"]["id"] for e in events}
    assert_ledger_clean(pg_app)


def test_friend_code_on_concurrent_orders_of_8_customers_is_used_once(pg_app, pg_keys):
    from rewards.catalog.service import issue_reward_code

    with pg_app.app_context():
        row = issue_reward_code(
            db.session, kind="amount_off", amount=1500, valid_days=30, email="pal@example.com",
            source_type="referral", source_id="1",
        )  # fmt: skip
        db.session.commit()
        code = row.code
    events = [f.paid(f"c_pal{i}", email="pal@example.com", reward_codes=[code]) for i in range(8)]

    def send(i):
        response = pg_app.test_client().post(
            "/v1/events", json=events[i], headers=pg_keys["storefront"]
        )
        assert response.status_code == 200, response.get_json()
        return [e for e in response.get_json()["effects"] if e["kind"].startswith("reward_code")]

    results = in_parallel(8, send)
    assert sum(1 for effects in results if effects[0]["kind"] == "reward_code_used") == 1
    assert all(
        effects[0] == {"kind": "reward_code_rejected", "code": code, "reason": "used"}
        for effects in results
        if effects[0]["kind"] != "reward_code_used"
    )


def test_per_member_limit_holds_under_concurrent_redemptions(pg_app, pg_keys):
    client = pg_app.test_client()
    make_member(client, pg_keys["admin"], "c_limit", points=10_000)
    reward = make_reward(client, pg_keys["admin"], per_member_limit=2)

    results = in_parallel(
        10,
        lambda _: answer(
            redeem(pg_app.test_client(), pg_keys["storefront"], "c_limit", reward["id"])
        ),
    )
    assert results.count((201, None, None)) == 2
    assert results.count((409, "reward-unavailable", "limit_reached")) == 8
    with pg_app.app_context():
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_limit")).one()
        assert member.points_available == 9000
    assert_ledger_clean(pg_app)


def test_cancel_racing_the_order_that_uses_the_code_has_one_winner(pg_app, pg_keys):
    client = pg_app.test_client()
    make_member(client, pg_keys["admin"], "c_race", points=3000)
    reward = make_reward(client, pg_keys["admin"], stock=6)
    codes = [redeem(client, pg_keys["storefront"], "c_race", reward["id"]).get_json()
             for _ in range(6)]  # fmt: skip

    def act(i):
        code = codes[i // 2]
        if i % 2 == 0:
            response = pg_app.test_client().post(
                f"/v1/redemptions/{code['id']}/cancel", headers=pg_keys["storefront"]
            )
            return "cancel", response.status_code
        event = f.paid("c_race", lines=[f.line(unit_price=5000)], reward_codes=[code["code"]])
        response = pg_app.test_client().post(
            "/v1/events", json=event, headers=pg_keys["storefront"]
        )
        effect = next(
            e for e in response.get_json()["effects"] if e["kind"].startswith("reward_code")
        )
        return "pay", effect.get("reason", effect["kind"])

    results = in_parallel(12, act)
    canceled = 0
    for k in range(6):
        cancel, pay = results[2 * k][1], results[2 * k + 1][1]
        # Either the cancel won (the order is refused: canceled) or the order did (cancel: 409).
        assert (cancel, pay) in {(200, "canceled"), (409, "reward_code_used")}, (cancel, pay)
        canceled += cancel == 200
    with pg_app.app_context():
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_race")).one()
        assert member.points_available == 500 * canceled
        assert db.session.get(Reward, reward["id"]).stock == canceled
    assert_ledger_clean(pg_app)


def test_10_concurrent_checkout_discounts_of_300_with_1000_points_issue_exactly_3(pg_app, pg_keys):
    client = pg_app.test_client()
    terms = {"enabled": True, "value_per_point": "0.5", "min_points": 100, "step": 100,
             "max_share_of_cart": 100, "code_valid_hours": 24}  # fmt: skip
    response = client.put("/v1/program", json={"checkout_points": terms}, headers=pg_keys["admin"])
    assert response.status_code == 200, response.get_json()
    make_member(client, pg_keys["admin"], "c_cart", points=1000)

    def spend(_):
        return answer(
            pg_app.test_client().post(
                "/v1/members/c_cart/checkout-discounts",
                json={"points": 300, "cart_subtotal": 10000},
                headers=pg_keys["storefront"],
            )
        )

    results = in_parallel(10, spend)
    assert results.count((201, None, None)) == 3
    assert results.count((422, "insufficient-points", None)) == 7
    with pg_app.app_context():
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_cart")).one()
        assert member.points_available == 100
        amounts = db.session.scalars(
            select(RewardCode.amount).where(RewardCode.source_type == "checkout")
        ).all()
        assert amounts == [150, 150, 150]
    assert_ledger_clean(pg_app)

    # Canceling one code from many connections at once returns its points once.
    with pg_app.app_context():
        code_id = db.session.scalars(select(RewardCode.id).order_by(RewardCode.id)).first()
    cancels = in_parallel(
        8,
        lambda _: (
            pg_app.test_client()
            .post(f"/v1/redemptions/{code_id}/cancel", headers=pg_keys["storefront"])
            .status_code
        ),
    )
    assert sorted(cancels) == [200] + [409] * 7
    with pg_app.app_context():
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_cart")).one()
        assert member.points_available == 400
    assert_ledger_clean(pg_app)
