"""A tier's entry reward under concurrent transactions on PostgreSQL: one code per member, tier
and period, whoever records the tier first."""

import threading

import pytest
from sqlalchemy import func, select

from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.tiers import service as tiers
from loyalty.tiers.models import Tier, TierEntry
from loyalty.types import utcnow
from rewards.catalog.models import RewardCode
from tests.tiers.helpers import early_this_year, order

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]

RACERS = 8


def test_racing_transactions_issue_one_entry_code(pg_app, pg_keys):
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    client = pg_app.test_client()
    body = {"name": "10 off", "kind": "amount_off", "amount": 1000, "points_cost": 500}
    reward = client.post("/v1/rewards", json=body, headers=admin).get_json()
    body = {"name": "VIB", "threshold": 35_000, "multiplier": "1", "entry_reward_id": reward["id"]}
    assert client.post("/v1/tiers", json=body, headers=admin).status_code == 201
    body = {"id": "racer", "email": "racer@example.com"}
    assert client.post("/v1/members", json=body, headers=storefront).status_code == 201

    # Each transaction records "racer reached VIB" for the same period at the same moment —
    # on its own connection, without the member's row lock: only the unique key keeps it once.
    barrier = threading.Barrier(RACERS)
    issued = []

    def race():
        with pg_app.app_context():
            member = db.session.scalar(select(Member).where(Member.customer_id == "racer"))
            vib = db.session.scalar(select(Tier).where(Tier.name == "VIB"))
            period = tiers.period_for(tiers.program_settings(db.session), member, utcnow())
            barrier.wait()
            entry = tiers.give_entry_reward(db.session, member, vib, period)
            db.session.commit()
            issued.append(entry is not None)

    threads = [threading.Thread(target=race) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(issued) == [False] * (RACERS - 1) + [True]
    with pg_app.app_context():
        codes = db.session.scalar(
            select(func.count())
            .select_from(RewardCode)
            .where(RewardCode.source_type == "tier_entry")
        )
        assert (codes, db.session.scalar(select(func.count()).select_from(TierEntry))) == (1, 1)


def test_concurrent_orders_that_cross_the_tier_issue_one_entry_code(pg_app, pg_keys):
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    client = pg_app.test_client()
    body = {"name": "10 off", "kind": "amount_off", "amount": 1000, "points_cost": 500}
    reward = client.post("/v1/rewards", json=body, headers=admin).get_json()
    body = {"name": "VIB", "threshold": 35_000, "multiplier": "1", "entry_reward_id": reward["id"]}
    assert client.post("/v1/tiers", json=body, headers=admin).status_code == 201
    # Each order alone reaches VIB; sent together, one of them does.
    events = [order(40_000, early_this_year(i), "racer") for i in range(RACERS)]
    barrier = threading.Barrier(RACERS)
    statuses = []

    def send(event):
        barrier.wait()
        statuses.append(pg_app.test_client().post("/v1/events", json=event,
                                                  headers=storefront).status_code)  # fmt: skip

    threads = [threading.Thread(target=send, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * RACERS
    with pg_app.app_context():
        codes = db.session.scalars(
            select(RewardCode).where(RewardCode.source_type == "tier_entry")
        ).all()
        assert len(codes) == 1 and codes[0].customer_id == "racer"
