from dataclasses import dataclass
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
        CheckConstraint("checkout_value_per_point > 0", name="checkout_value_per_point_positive"),
        CheckConstraint("checkout_min_points > 0", name="checkout_min_points_positive"),
        CheckConstraint("checkout_points_step > 0", name="checkout_points_step_positive"),
        CheckConstraint(
            "checkout_max_share_of_cart BETWEEN 1 AND 100", name="checkout_max_share_of_cart"
        ),
        CheckConstraint("checkout_code_valid_hours > 0", name="checkout_code_valid_hours_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    points_per_unit: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal(1))
    pending_days: Mapped[int] = mapped_column(Integer, default=30)
    expiry_inactive_days: Mapped[int | None] = mapped_column(Integer)
    qualifying_period: Mapped[str] = mapped_column(String(16), default="calendar_year")
    auto_enroll: Mapped[bool] = mapped_column(default=True)
    widget_origins: Mapped[list] = mapped_column(JSONType, default=list)
    # Points at checkout (`checkout_points` in the API): a shopper turns points into an
    # amount-off code for the cart, worth floor(points × value_per_point) minor units.
    checkout_points_enabled: Mapped[bool] = mapped_column(default=False)
    checkout_value_per_point: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal(1))
    checkout_min_points: Mapped[int] = mapped_column(Integer, default=100)
    checkout_points_step: Mapped[int] = mapped_column(Integer, default=100)
    checkout_max_share_of_cart: Mapped[int] = mapped_column(Integer, default=50)  # percent
    checkout_code_valid_hours: Mapped[int] = mapped_column(Integer, default=24)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def checkout_points(self) -> "CheckoutPoints":
        return CheckoutPoints(
            enabled=self.checkout_points_enabled,
            value_per_point=self.checkout_value_per_point,
            min_points=self.checkout_min_points,
            step=self.checkout_points_step,
            max_share_of_cart=self.checkout_max_share_of_cart,
            code_valid_hours=self.checkout_code_valid_hours,
        )


# `checkout_points` field -> its column
CHECKOUT_POINTS_COLUMNS = {
    "enabled": "checkout_points_enabled",
    "value_per_point": "checkout_value_per_point",
    "min_points": "checkout_min_points",
    "step": "checkout_points_step",
    "max_share_of_cart": "checkout_max_share_of_cart",
    "code_valid_hours": "checkout_code_valid_hours",
}


@dataclass(frozen=True)
class CheckoutPoints:
    """The program's points-at-checkout settings, as plain values."""

    enabled: bool
    value_per_point: Decimal  # minor units of money per point (up to 4 decimal places)
    min_points: int
    step: int
    max_share_of_cart: int  # percent of the cart subtotal
    code_valid_hours: int
