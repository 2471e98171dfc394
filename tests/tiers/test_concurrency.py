"""Concurrent orders for one member on PostgreSQL end exactly as if sent one by one."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.tiers.models import TierChange, TierSpend
from tests.tiers.helpers import VIB, early_this_year, order

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]

ORDERS = 16


def post(app, headers, path, body):
    return app.test_client().post(path, json=body, headers=headers)


def outcome(app, customer_id):
    with app.app_context():
        member = db.session.scalar(select(Member).where(Member.customer_id == customer_id))
        spend = db.session.scalar(
            select(func.sum(TierSpend.spend)).where(TierSpend.member_id == member.id)
        )
        changes = db.session.execute(
            select(TierChange.from_tier, TierChange.to_tier)
            .where(TierChange.member_id == member.id)
            .order_by(TierChange.id)
        ).all()
        return {
            "spend": spend,
            "tier_id": member.tier_id,
            "points": (member.points_pending, member.points_lifetime),
            "changes": [tuple(c) for c in changes],
        }


def test_sixteen_concurrent_orders_for_one_member(pg_app, pg_keys):
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    client = pg_app.test_client()
    for name, threshold, multiplier in (("VIB", VIB, "1.25"), ("Rouge", 100_000, "1.5")):
        body = {"name": name, "threshold": threshold, "multiplier": multiplier}
        assert client.post("/v1/tiers", json=body, headers=admin).status_code == 201
    for customer_id in ("together", "one_by_one"):
        body = {"id": customer_id, "email": f"{customer_id}@example.com"}
        assert client.post("/v1/members", json=body, headers=storefront).status_code == 201

    # 16 × 100.00: Member ×1 for 4 orders (the 4th crosses 350.00), VIB ×1.25 for 6 (the
    # 10th crosses 1,000.00), Rouge ×1.5 for 6 — whatever order they are applied in.
    def events(customer_id):
        return [order(10_000, early_this_year(i), customer_id) for i in range(ORDERS)]

    with ThreadPoolExecutor(max_workers=ORDERS) as pool:
        responses = list(
            pool.map(lambda e: post(pg_app, storefront, "/v1/events", e), events("together"))
        )
    assert [r.status_code for r in responses] == [200] * ORDERS
    for event in events("one_by_one"):
        assert post(pg_app, storefront, "/v1/events", event).status_code == 200

    together, one_by_one = outcome(pg_app, "together"), outcome(pg_app, "one_by_one")
    assert together == one_by_one
    assert together["spend"] == 160_000
    assert together["points"] == (2_050, 2_050)  # 4×100 + 6×125 + 6×150
    assert together["changes"] == [("Member", "VIB"), ("VIB", "Rouge")]
    tier_changed = [e for r in responses for e in r.get_json()["effects"]
                    if e["kind"] == "tier_changed"]  # fmt: skip
    assert len(tier_changed) == 2
    result = pg_app.test_cli_runner().invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output


def test_close_period_from_two_workers_at_once_records_each_change_once(pg_app, pg_keys):
    from datetime import UTC, datetime

    from loyalty.tiers import service as tiers

    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    client = pg_app.test_client()
    body = {"name": "VIB", "threshold": VIB, "multiplier": "1.25"}
    assert client.post("/v1/tiers", json=body, headers=admin).status_code == 201
    for i in range(12):
        assert (
            client.post(
                "/v1/events", json=order(40_000, early_this_year(i), f"m{i}"), headers=storefront
            ).status_code
            == 200
        )
    # Two years on, nobody requalified: everyone goes back to Member, exactly once.
    later = datetime(datetime.now(UTC).year + 2, 1, 1, tzinfo=UTC)

    def run(_):
        with pg_app.app_context():
            changed = tiers.close_period(db.session, later, batch_size=3)
            db.session.commit()
            return changed

    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(run, range(2)))
    assert sum(counts) == 12
    with pg_app.app_context():
        closes = db.session.scalar(
            select(func.count()).select_from(TierChange).where(TierChange.reason == "period_close")
        )
        assert closes == 12
        assert db.session.scalar(select(func.count(func.distinct(Member.tier_id)))) == 1
