from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, UTCDateTime, utcnow


class ConnectorDelivery(Base):
    """One webhook delivery (or imported record) from a store platform and what became of it:
    `applied` (an order event or enrolment ran, or was a repeat), `skipped` (nothing to do:
    a guest order, a topic or status change that means nothing here) or `refused` (could not be
    taken: another currency, invalid data), with the reason. Kept so an operator can see why
    an order earned nothing."""

    __tablename__ = "connector_deliveries"
    __table_args__ = (UniqueConstraint("platform", "delivery_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    delivery_id: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    # Indexed: a refund of an order that was skipped (a guest's) is found skipped by it.
    event_id: Mapped[str | None] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
