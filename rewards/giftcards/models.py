"""Gift cards, their immutable transactions, holds and Stripe purchases.

A card's spendable `balance` is materialized on its row and changed only by relative,
conditional UPDATEs in the same transaction as the transaction row that explains it; the
database checks that it always equals issued + bonus + refunds + adjustments − captured −
held − expired, and never goes below zero.
"""

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, JSONType, UTCDateTime, utcnow

CARD_STATUSES = ("active", "disabled", "expired")
SOURCES = ("admin", "stripe")
HOLD_STATUSES = ("active", "captured", "voided", "expired")
MAX_HOLD_SECONDS = 7 * 24 * 3600  # the longest a checkout may hold a card
TRANSACTION_KINDS = ("issue", "hold", "capture", "release", "refund", "adjust", "expire")
PURCHASE_STATUSES = ("open", "completed")


class GiftCard(Base):
    __tablename__ = "gift_cards"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("held_amount >= 0", name="held_not_negative"),
        CheckConstraint("refunded_amount <= captured_amount", name="refunds_within_captures"),
        CheckConstraint(
            "balance = paid_amount + bonus_amount + refunded_amount + adjusted_amount"
            " - captured_amount - held_amount - expired_amount",
            name="balance_adds_up",
        ),
        CheckConstraint("status IN ('active', 'disabled', 'expired')", name="status"),
        CheckConstraint("source IN ('admin', 'stripe')", name="source"),
        Index("ix_gift_cards_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # HMAC-SHA256 of the normalized code under a key derived from the newest SECRET_KEYS entry;
    # the code itself is never stored.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10), default="active")
    source: Mapped[str] = mapped_column(String(10))
    paid_amount: Mapped[int] = mapped_column(BigInteger)  # value bought (or granted) as money
    bonus_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # promotional value
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    adjusted_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    held_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    expired_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    balance: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a capture left the balance below GIFT_CARD_LOW_BALANCE and `gift_card.low_balance`
    # went out; cleared when the balance is back at or above it (once per crossing).
    low_balance_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GiftCardTransaction(Base):
    """One immutable movement of a card's value (the database refuses updates and deletes)."""

    __tablename__ = "gift_card_transactions"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "kind IN ('issue', 'hold', 'capture', 'release', 'refund', 'adjust', 'expire')",
            name="kind",
        ),
        Index("ix_gift_card_transactions_card_id_id", "card_id", "id"),
        Index("ix_gift_card_transactions_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("gift_cards.id"))
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)  # the size of the movement
    # Its signed effect on `balance` (what can be spent now): the sum over a card is its balance.
    balance_change: Mapped[int] = mapped_column(BigInteger)
    hold_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("gift_card_holds.id"))
    order_id: Mapped[str | None] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GiftCardHold(Base):
    __tablename__ = "gift_card_holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("captured_amount <= amount", name="capture_within_hold"),
        CheckConstraint("status IN ('active', 'captured', 'voided', 'expired')", name="status"),
        Index(
            "ix_gift_card_holds_active_expires_at",
            "expires_at",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("gift_cards.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    order_id: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GiftCardPurchase(Base):
    """A Stripe Checkout session selling a card; the card is issued once, when it is paid."""

    __tablename__ = "gift_card_purchases"
    __table_args__ = (CheckConstraint("status IN ('open', 'completed')", name="status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    purchaser_email: Mapped[str] = mapped_column(String(320))
    recipient_email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(10), default="open")
    card_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("gift_cards.id"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The card's code, sealed (see codes.seal) until the storefront collects it, once.
    sealed_code: Mapped[str | None] = mapped_column(String(32))
    code_revealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
