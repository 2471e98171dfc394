"""The demo program `make run` adds on first start: Beauty Insider-like numbers."""

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.audit import AuditLog, record_change
from loyalty.hooks import Hooks
from loyalty.members import service as members
from loyalty.program.service import get_program

DEMO_MARKER = "demo.seed"
DEMO_CUSTOMER = "demo-shopper"


def seed_demo_program(session: Session, hooks: Hooks) -> bool:
    if session.scalar(select(AuditLog.id).where(AuditLog.action == DEMO_MARKER).limit(1)):
        return False
    program = get_program(session, for_update=True)
    program.currency = "USD"
    program.points_per_unit = Decimal(1)
    program.pending_days = 30
    program.expiry_inactive_days = 548  # 18 months without a purchase or redemption
    program.widget_origins = ["http://127.0.0.1:5000", "http://localhost:5000"]
    # Points at checkout on, at the catalog's own rate (500 points = 10.00 off): 2 cents a
    # point, from 100 points in steps of 50, at most half the cart, codes for a day.
    program.checkout_points_enabled = True
    program.checkout_value_per_point = Decimal(2)
    program.checkout_min_points = 100
    program.checkout_points_step = 50
    program.checkout_max_share_of_cart = 50
    program.checkout_code_valid_hours = 24
    for seed in hooks.demo_seed:
        seed(session)
    members.enroll(session, hooks, DEMO_CUSTOMER, "demo@example.com", name="Demo Shopper")
    record_change(session, DEMO_MARKER, "program", "1", None, {"seeded": True})
    session.flush()
    return True
