"""Demo data for the widget: the seeded shopper has an order and points to redeem at /demo."""

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from loyalty import ledger
from loyalty.hooks import hooks
from loyalty.members import service as members
from loyalty.orders import service as orders
from loyalty.orders.schemas import EventSchema
from loyalty.seed import DEMO_CUSTOMER

DEMO_WELCOME_POINTS = 1500


def seed_demo_shopper(session: Session) -> None:
    """A paid order (points pending, spend toward the next tier) and points to spend now."""
    occurred_at = datetime.now(UTC) - timedelta(days=6)
    raw = {
        "id": "demo-evt-1",
        "type": "order.paid",
        "occurred_at": occurred_at.isoformat(),
        "order": {
            "id": "demo-ord-1",
            "customer_id": DEMO_CUSTOMER,
            "email": "demo@example.com",
            "name": "Demo Shopper",
            "currency": "USD",
            "lines": [
                {"sku": "ROSE-SERUM", "quantity": 2, "unit_price": 4800, "discount": 0},
                {"sku": "SILK-LIPSTICK", "quantity": 1, "unit_price": 2600, "discount": 0},
            ],
            "shipping": 500,
            "tax": 980,
        },
    }
    orders.process_event(session, hooks(), EventSchema().load(raw), orders.body_hash(raw))
    member = members.get_member(session, DEMO_CUSTOMER)
    ledger.post_entry(
        session,
        member.id,
        "bonus",
        DEMO_WELCOME_POINTS,
        source_type="demo",
        source_id="welcome",
        detail={"reason": "Demo points to try a redemption"},
    )
