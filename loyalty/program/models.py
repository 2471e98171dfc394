from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import JSONType, UTCDateTime, utcnow

PROGRAM_ID = 1


class Program(Base):
    """The one program of this installation (a single row, id 1)."""

    __tablename__ = "program"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("points_per_unit >= 0", name="points_per_unit_not_negative"),
        CheckConstraint("pending_days >= 0", name="pending_days_not_negative"),
        CheckConstraint(
            "qualifying_period IN ('calendar_year', 'rolling_365')", name="qualifying_period"
        ),
        CheckConstraint("tier_basis IN ('spend', 'points', 'orders')", name="tier_basis"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    points_per_unit: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal(1))
    pending_days: Mapped[int] = mapped_column(Integer, default=30)
    expiry_inactive_days: Mapped[int | None] = mapped_column(Integer)
    qualifying_period: Mapped[str] = mapped_column(String(16), default="calendar_year")
    # What tier thresholds count: spend (minor units), points earned, or paid orders.
    tier_basis: Mapped[str] = mapped_column(String(8), default="spend")
    auto_enroll: Mapped[bool] = mapped_column(default=True)
    widget_origins: Mapped[list] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
