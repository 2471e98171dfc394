"""Hypothesis stateful test: the real ledger beside a plain-Python model of the balances.

Earn, refund (partial and full), adjust, spend, mature, expire and replayed events, in any
order and at any simulated time; after every step the stored balances equal the model, the
ledger recomputes to them (no drift), and a fully refunded order nets zero points.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import func, select

from loyalty import jobs
from loyalty.errors import InsufficientPoints
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.members import service as members
from loyalty.orders import service as orders
from loyalty.orders.schemas import EventSchema
from loyalty.program.service import get_program
from tests import factories as f
from tests.conftest import rolled_back

PENDING_DAYS = 30
EXPIRY_DAYS = 60
START = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class ModelOrder:
    order_id: str
    eligible: int
    awarded: int
    matures_at: datetime
    refunded: int = 0
    reversed: int = 0
    pending_left: int = 0


class LedgerMachine(RuleBasedStateMachine):
    app = None  # set by the test

    def __init__(self):
        super().__init__()
        self._context = rolled_back(self.app)
        self._context.__enter__()
        self.session = db.session
        program = get_program(self.session)
        program.pending_days = PENDING_DAYS
        program.expiry_inactive_days = EXPIRY_DAYS
        self.now = START
        self.member, _ = members.enroll(
            self.session, hooks(), "c_model", "model@example.com", enrolled_at=START
        )
        self.session.commit()
        self.available = self.pending = self.lifetime = 0
        self.last_activity = START
        self.orders: list[ModelOrder] = []
        self.sent: list[tuple[dict, dict]] = []  # (event, first answer)

    def teardown(self):
        self._context.__exit__(None, None, None)

    def send(self, event: dict) -> dict:
        data = EventSchema().load(event)
        answer = orders.process_event(self.session, hooks(), data, orders.body_hash(event))
        self.session.commit()
        return answer

    @rule(days=st.integers(0, 45))
    def advance(self, days):
        self.now += timedelta(days=days)

    @rule(amount=st.integers(0, 50_000))
    def earn(self, amount):
        event = f.paid(
            "c_model",
            lines=[f.line(unit_price=amount)],
            occurred_at=self.now,
        )
        answer = self.send(event)
        self.sent.append((event, answer))
        points = amount // 100
        order = ModelOrder(
            event["order"]["id"], amount, points, self.now + timedelta(days=PENDING_DAYS)
        )
        order.pending_left = points
        self.orders.append(order)
        self.pending += points
        self.lifetime += points
        self.last_activity = max(self.last_activity, self.now)

    @precondition(lambda self: any(o.refunded < o.eligible for o in self.orders))
    @rule(data=st.data(), full=st.booleans())
    def refund(self, data, full):
        open_orders = [o for o in self.orders if o.refunded < o.eligible]
        order = data.draw(st.sampled_from(open_orders))
        left = order.eligible - order.refunded
        amount = left if full else data.draw(st.integers(0, left))
        event = f.refunded(order.order_id, "c_model", amount=amount, occurred_at=self.now)
        self.sent.append((event, self.send(event)))
        order.refunded += amount
        if order.refunded == order.eligible:
            target = order.awarded
        else:
            target = order.awarded * order.refunded // order.eligible
        delta = target - order.reversed
        cancel = min(delta, order.pending_left)
        order.pending_left -= cancel
        self.pending -= cancel
        self.available -= delta - cancel
        self.lifetime -= delta
        order.reversed += delta

    @rule(points=st.integers(-2_000, 2_000).filter(bool))
    def adjust(self, points):
        try:
            members.adjust(self.session, self.member, points, "model", "test")
            self.session.commit()
        except InsufficientPoints:
            self.session.rollback()
            assert points < 0 and self.available < -points
            return
        assert points > 0 or self.available >= -points
        self.available += points
        self.lifetime += points

    @rule()
    def mature(self):
        jobs.mature_points(self.session, self.now, batch_size=100)
        self.session.commit()
        for order in self.orders:
            if order.matures_at <= self.now and order.pending_left:
                self.available += order.pending_left
                self.pending -= order.pending_left
                order.pending_left = 0

    @rule()
    def expire(self):
        jobs.expire_points(self.session, self.now, batch_size=100)
        self.session.commit()
        if self.last_activity <= self.now - timedelta(days=EXPIRY_DAYS) and self.available > 0:
            self.available = 0

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def replay(self, data):
        event, first = data.draw(st.sampled_from(self.sent))
        again = self.send(event)
        assert again == {**first, "duplicate": True}

    @invariant()
    def balances_match_the_model(self):
        self.session.refresh(self.member)
        stored = (
            self.member.points_available,
            self.member.points_pending,
            self.member.points_lifetime,
        )
        assert stored == (self.available, self.pending, self.lifetime)
        assert self.member.points_pending >= 0
        assert find_drift(self.session) == []

    @invariant()
    def fully_refunded_orders_net_zero(self):
        for order in self.orders:
            if order.refunded == order.eligible:
                net = self.session.scalar(
                    select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                        LedgerEntry.source_type == "order", LedgerEntry.source_id == order.order_id
                    )
                )
                assert net == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_ledger_matches_model(app):
    LedgerMachine.app = app
    LedgerMachine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    LedgerMachine.TestCase().runTest()
