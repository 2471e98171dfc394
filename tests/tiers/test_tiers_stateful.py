"""Hypothesis stateful test: tiers beside a plain-Python model of spend and status.

Paid orders (some back-dated into the previous year), partial and full refunds, time passing
and period closes, in any order; after every step the stored spend per year, the materialized
tier and the points each order earned (at the tier held before it) equal the model's.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.members import service as members
from loyalty.orders import service as orders
from loyalty.orders.schemas import EventSchema
from loyalty.tiers import service as tiers
from loyalty.tiers.models import TierSpend
from tests import factories as f
from tests.conftest import rolled_back

START = datetime(2021, 3, 1, 12, tzinfo=UTC)
TIERS = [("Member", 0, Decimal(1)), ("VIB", 35_000, Decimal("1.25")),
         ("Rouge", 100_000, Decimal("1.5"))]  # fmt: skip


def tier_for(spend: int) -> str:
    return [name for name, threshold, _ in TIERS if spend >= threshold][-1]


def multiplier(name: str) -> Decimal:
    return {n: m for n, _, m in TIERS}[name]


class TierMachine(RuleBasedStateMachine):
    app = None  # set by the test

    def __init__(self):
        super().__init__()
        self._context = rolled_back(self.app)
        self._context.__enter__()
        self.session = db.session
        self.now = START
        self._real_utcnow = tiers.utcnow
        tiers.utcnow = lambda: self.now  # the tier is evaluated "now": the simulated now
        for name, threshold, mult in TIERS[1:]:
            tiers.create_tier(self.session, {"name": name, "threshold": threshold,
                                             "multiplier": mult})  # fmt: skip
        self.member, _ = members.enroll(
            self.session, hooks(), "c_tier", "tier@example.com", enrolled_at=START
        )
        self.session.commit()
        self.spend: dict[int, int] = {}
        self.tier = "Member"
        self.orders: list[dict] = []

    def teardown(self):
        tiers.utcnow = self._real_utcnow
        self._context.__exit__(None, None, None)

    def send(self, event: dict) -> dict:
        data = EventSchema().load(event)
        answer = orders.process_event(self.session, hooks(), data, orders.body_hash(event))
        self.session.commit()
        return answer

    def formula(self) -> str:
        year = self.now.year
        return tier_for(max(self.spend.get(year, 0), self.spend.get(year - 1, 0)))

    @rule(days=st.integers(30, 250))
    def advance(self, days):
        later = self.now + timedelta(days=days)
        if later < datetime.now(UTC) - timedelta(days=1):
            self.now = later

    @rule(
        amount=st.integers(0, 120_000),
        back_days=st.one_of(st.just(0), st.integers(100, 400)),
    )
    def pay(self, amount, back_days):
        occurred = max(START, self.now - timedelta(days=back_days))
        event = f.paid("c_tier", lines=[f.line(unit_price=amount)], occurred_at=occurred)
        answer = self.send(event)
        earned = sum(e["points"] for e in answer["effects"] if e["kind"] == "earn")
        expected = int(Decimal(amount) / 100 * multiplier(self.tier) // 1)
        assert earned == expected  # at the tier held before this event
        self.orders.append({"id": event["order"]["id"], "year": occurred.year,
                            "eligible": amount, "refunded": 0})  # fmt: skip
        self.spend[occurred.year] = self.spend.get(occurred.year, 0) + amount
        if amount:  # an order with nothing eligible counts nothing and evaluates nothing
            self.tier = self.formula()

    @precondition(lambda self: any(o["refunded"] < o["eligible"] for o in self.orders))
    @rule(data=st.data(), full=st.booleans())
    def refund(self, data, full):
        order = data.draw(st.sampled_from([o for o in self.orders
                                           if o["refunded"] < o["eligible"]]))  # fmt: skip
        left = order["eligible"] - order["refunded"]
        amount = left if full else data.draw(st.integers(1, left))
        self.send(f.refunded(order["id"], "c_tier", amount=amount, occurred_at=self.now))
        order["refunded"] += amount
        self.spend[order["year"]] -= amount
        self.tier = self.formula()

    @rule()
    def close_period(self):
        tiers.close_period(self.session, self.now, batch_size=10)
        self.session.commit()
        self.tier = self.formula()

    @invariant()
    def stored_state_matches_the_model(self):
        self.session.refresh(self.member)
        assert tiers.current_tier(self.session, self.member).name == self.tier
        rows = self.session.scalars(
            select(TierSpend).where(TierSpend.member_id == self.member.id)
        ).all()
        assert {r.starts_at.year: r.spend for r in rows} == {
            y: s for y, s in self.spend.items() if s or any(r.starts_at.year == y for r in rows)
        }
        standing = tiers.standing(self.session, self.member, now=self.now)
        assert standing["qualifying_spend"] == self.spend.get(self.now.year, 0)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_tiers_match_model(app):
    TierMachine.app = app
    TierMachine.TestCase.settings = settings(
        max_examples=20,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    TierMachine.TestCase().runTest()
