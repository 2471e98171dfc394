"""The demo history `make run` seeds: members and non-members who ordered over two years,
converted and held referrals, redemptions — all through the services, with no ledger drift."""

from datetime import timedelta

from sqlalchemy import func, select

from loyalty.demo_history import CUSTOMERS, seed_demo_history
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.members.models import Member
from loyalty.orders.models import Order
from loyalty.reports import service as reports
from loyalty.seed import seed_demo_program
from loyalty.types import utcnow
from referrals.models import Referral


def test_the_demo_history_is_left_out_when_turned_off(app, session):
    assert app.config["DEMO_HISTORY"] is False  # what the tests run with
    seed_demo_history(session)
    assert session.scalar(select(func.count(Order.id))) == 0


def test_the_demo_program_has_two_years_of_history(app, session):
    app.config["DEMO_HISTORY"] = True
    try:
        assert seed_demo_program(session, hooks())
    finally:
        app.config["DEMO_HISTORY"] = False
    session.flush()
    orders = session.execute(
        select(
            func.count(Order.id),
            func.count(func.distinct(Order.customer_id)),
            func.sum(func.cast(Order.member_id.is_(None), db.Integer)),
            func.min(Order.occurred_at),
            func.sum(func.cast(Order.refunded_amount > 0, db.Integer)),
        ).where(Order.customer_id.like("demo-c%"))
    ).one()
    count, customers, guest_orders, first, refunded = orders
    assert CUSTOMERS * 0.9 < customers <= CUSTOMERS
    assert count > customers  # some came back
    assert 0 < guest_orders < count  # members and customers who never joined
    assert refunded > 0
    assert utcnow() - first > timedelta(days=600)

    now = utcnow()
    year = reports.retention(session, now - timedelta(days=365), now)
    assert year["members"]["customers"] > 0 and year["non_members"]["customers"] > 0
    assert float(year["members"]["repeat_purchase_rate"]) > float(
        year["non_members"]["repeat_purchase_rate"]
    )

    statuses = dict(
        session.execute(select(Referral.status, func.count()).group_by(Referral.status)).all()
    )
    assert statuses == {"converted": 9, "review": 3}
    held_with_an_order = session.scalars(
        select(Referral.flags).where(Referral.status == "review", Referral.order_id.is_not(None))
    ).all()
    assert held_with_an_order == [["missing_ip"]]  # approving it rewards the referrer
    kinds = set(session.scalars(select(LedgerEntry.kind).distinct()))
    assert {"earn", "redeem", "expire", "referral", "reversal"} <= kinds
    assert session.scalar(select(func.count(Member.id))) > 100
    assert find_drift(session) == []
