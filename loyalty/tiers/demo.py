"""The tiers and bonuses of the demo program (Beauty Insider-like numbers)."""

from datetime import timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from loyalty.earning import rules
from loyalty.tiers import service
from loyalty.types import utcnow


def seed_demo_tiers(session: Session) -> None:
    base = service.base_tier(session)
    service.update_tier(
        session, base.id, {"name": "Insider", "perks": ["Birthday gift", "Free standard shipping"]}
    )
    service.create_tier(
        session,
        {"name": "VIB", "threshold": 35_000, "multiplier": Decimal("1.25"),
         "perks": ["Birthday gift", "Seasonal savings event"]},
    )  # fmt: skip
    service.create_tier(
        session,
        {"name": "Rouge", "threshold": 100_000, "multiplier": Decimal("1.5"),
         "perks": ["Birthday gift", "Early access", "Rouge-only rewards"]},
    )  # fmt: skip
    rules.create_rule(session, {"name": "Birthday bonus", "trigger": "birthday", "points": 250})
    now = utcnow()
    rules.create_rule(
        session,
        {"name": "2× skincare week", "trigger": "order", "multiplier": Decimal(2),
         "conditions": {"categories": ["skincare"]},
         "starts_at": now, "ends_at": now + timedelta(days=7)},
    )  # fmt: skip
