"""Outbound webhooks: the merchant's endpoints, the outbox of messages, one delivery per
(message, endpoint).

A message is written in the transaction of the change it reports (see `emit`), so a change
that rolls back leaves no message and a committed one is never lost; the `deliver-webhooks`
job sends what is due, at least once, with backoff.
"""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, JSONType, UTCDateTime, utcnow


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list] = mapped_column(JSONType)  # subscribed event types
    # "whsec_" + base64 of random bytes, sealed (loyalty.sealing): signing needs it back, the
    # database never holds it in the clear. Shown once, by the API that creates it.
    secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deleted endpoints are kept for their deliveries' history and never sent to again.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A disabled endpoint gets no new deliveries, and those queued wait, until it is enabled.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # After a rotation the replaced secret (sealed too) signs beside the new one until
    # `previous_secret_expires_at`, so receivers can switch without dropping a delivery.
    previous_secret: Mapped[str | None] = mapped_column(String(255))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookMessage(Base):
    """One event, whatever the number of endpoints; its id is the `webhook-id` header."""

    __tablename__ = "webhook_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict] = mapped_column(JSONType)
    # Events that must be sent at most once per fact (e.g. one expiry warning per member per
    # expiry) carry a key naming the fact; NULL for the others.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL AND gave_up_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL AND gave_up_at IS NULL"),
        ),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("webhook_messages.id"))
    endpoint_id: Mapped[int] = mapped_column(Integer, ForeignKey("webhook_endpoints.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When it is next due; while a worker sends it, the end of that worker's lease.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)  # HTTP status, NULL: no answer
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# The event types an endpoint can subscribe to (docs/webhooks.md lists each one's `data`).
EVENT_TYPES = (
    "member.enrolled",
    "member.lapsing",
    "points.earned",
    "points.adjusted",
    "points.expiring",
    "points.expired",
    "tier.changed",
    "reward.issued",
    "reward.redeemed",
    "reward.code_used",
    "reward.code_expiring",
    "referral.claimed",
    "referral.held_for_review",
    "referral.converted",
    "gift_card.issued",
    "gift_card.redeemed",
    "gift_card.low_balance",
)

# What `POST /v1/webhook-endpoints/{id}/test` sends: to that endpoint only, whatever it
# subscribes to (no endpoint subscribes to it).
TEST_EVENT = "webhook.test"


def endpoint_status(endpoint: WebhookEndpoint) -> str:
    return "disabled" if endpoint.disabled_at is not None else "enabled"


# What a delivery is: being tried (or waiting to be), delivered, or given up.
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def delivery_status(delivery: WebhookDelivery) -> str:
    if delivery.delivered_at is not None:
        return "delivered"
    return "failed" if delivery.gave_up_at is not None else "pending"
