from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, JSONType, UTCDateTime, utcnow


class ProcessedEvent(Base):
    """One row per order event applied: its body's hash and the answer it got.

    Written in the same transaction as the event's effects, so an event has exactly one effect
    however often (and however concurrently) it is sent.
    """

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    # The event's order: erasing its customer finds (and redacts) the stored answer through
    # it. NULL for events recorded before it was kept (erasure searches their answers).
    order_id: Mapped[str | None] = mapped_column(String(128), index=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Order(Base):
    """An order seen by the service, with the numbers recorded when it was paid."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("status IN ('paid', 'canceled')", name="status"),
        CheckConstraint("refunded_amount <= eligible_amount", name="refund_within_eligible"),
        CheckConstraint("points_reversed <= points_awarded", name="reversal_within_award"),
        Index("ix_orders_customer_id_occurred_at", "customer_id", "occurred_at"),
        # Members' paid orders by time: the overview's active members read the last 90 days'
        # (an index-only range scan, not a scan of every order).
        Index(
            "ix_orders_paid_member_occurred_at",
            "occurred_at",
            "member_id",
            postgresql_where=text("status = 'paid' AND member_id IS NOT NULL"),
            sqlite_where=text("status = 'paid' AND member_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(128), unique=True)
    customer_id: Mapped[str | None] = mapped_column(String(128))
    member_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    email_normalized: Mapped[str | None] = mapped_column(String(320))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Money in minor units.
    total_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    eligible_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # Every point the paid event created for this order (base earn and order bonuses).
    points_awarded: Mapped[int] = mapped_column(BigInteger, default=0)
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    # Lines as received plus each line's eligible amount and refunded quantity.
    lines: Mapped[list] = mapped_column(JSONType, default=list)
    # Everything else the event carried that handlers may need (codes, holds, hashes, ip).
    attributes: Mapped[dict] = mapped_column(JSONType, default=dict)
    # The numbers used when earning: rate, multiplier, tier, rules.
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderRefund(Base):
    __tablename__ = "order_refunds"
    __table_args__ = (UniqueConstraint("order_pk", "refund_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id"))
    refund_id: Mapped[str] = mapped_column(String(128))
    amount: Mapped[int] = mapped_column(BigInteger)  # eligible money refunded
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
