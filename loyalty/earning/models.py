from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import JSONType, UTCDateTime, utcnow

TRIGGERS = ("order", "signup", "first_order", "birthday")


class EarningRule(Base):
    """A bonus on top of the base rate: a multiplier on matching lines, or fixed points."""

    __tablename__ = "earning_rules"
    __table_args__ = (
        CheckConstraint(
            "\"trigger\" IN ('order', 'signup', 'first_order', 'birthday')", name="trigger"
        ),
        CheckConstraint("(multiplier IS NULL) <> (points IS NULL)", name="multiplier_or_points"),
        CheckConstraint("multiplier IS NULL OR multiplier > 0", name="multiplier_positive"),
        CheckConstraint("points IS NULL OR points > 0", name="points_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    trigger: Mapped[str] = mapped_column(String(16))
    multiplier: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    points: Mapped[int | None] = mapped_column(BigInteger)
    # {"skus": [...], "categories": [...], "tiers": [tier names], "min_spend": minor units}
    conditions: Mapped[dict] = mapped_column(JSONType, default=dict)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
