from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import JSONType, UTCDateTime, utcnow


class Tier(Base):
    __tablename__ = "tiers"
    __table_args__ = (
        CheckConstraint("threshold >= 0", name="threshold_not_negative"),
        CheckConstraint("multiplier > 0", name="multiplier_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Qualifying spend in minor units of the program currency.
    threshold: Mapped[int] = mapped_column(BigInteger, unique=True)
    multiplier: Mapped[Decimal] = mapped_column(Numeric(8, 4), default=Decimal(1))
    perks: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
