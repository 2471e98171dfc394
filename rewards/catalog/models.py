from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, UTCDateTime, utcnow

KINDS = ("amount_off", "percent_off", "free_shipping", "free_product")
ISSUED, USED, CANCELED, EXPIRED = "issued", "used", "canceled", "expired"
STATUSES = (ISSUED, USED, CANCELED, EXPIRED)

_KIND_CHECK = "kind IN ('amount_off', 'percent_off', 'free_shipping', 'free_product')"
_KIND_FIELDS_CHECK = (
    "(kind <> 'amount_off' OR amount > 0)"
    " AND (kind <> 'percent_off' OR (percent BETWEEN 1 AND 100))"
    " AND (kind <> 'free_product' OR sku IS NOT NULL)"
)


class Reward(Base):
    """A catalog item members buy with points. Deleting one only retires it (`deleted_at`):
    codes already issued for it stay valid and keep pointing at it."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint(_KIND_CHECK, name="kind"),
        CheckConstraint(_KIND_FIELDS_CHECK, name="kind_fields"),
        CheckConstraint("points_cost > 0", name="points_cost_positive"),
        CheckConstraint("min_order >= 0", name="min_order_not_negative"),
        # Stock never oversells: the conditional decrement and this check agree.
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        CheckConstraint(
            "per_member_limit IS NULL OR per_member_limit > 0", name="per_member_limit_positive"
        ),
        CheckConstraint("code_valid_days > 0", name="code_valid_days_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    kind: Mapped[str] = mapped_column(String(16))
    points_cost: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int | None] = mapped_column(BigInteger)  # minor units, amount_off
    percent: Mapped[int | None] = mapped_column(Integer)  # 1..100, percent_off
    sku: Mapped[str | None] = mapped_column(String(128))  # free_product
    min_order: Mapped[int] = mapped_column(BigInteger, default=0)
    # Minimum tier (this tier or a higher one). No foreign key on purpose: a deleted tier
    # leaves the reward locked (`tier_required`) instead of silently open to everyone.
    tier_id: Mapped[int | None] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(BigInteger)  # NULL = unlimited
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    code_valid_days: Mapped[int] = mapped_column(Integer, default=90)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RewardCode(Base):
    """A single-use code: bought with points (a redemption) or given (a referral reward).

    The discount it grants is copied from the reward at issue, so editing the catalog never
    changes a code already in a shopper's hands. Status moves only forward, each move a
    conditional UPDATE (`WHERE status = 'issued'`), so a code is used or returned at most once.
    """

    __tablename__ = "reward_codes"
    __table_args__ = (
        CheckConstraint("status IN ('issued', 'used', 'canceled', 'expired')", name="status"),
        CheckConstraint(_KIND_CHECK, name="kind"),
        CheckConstraint(_KIND_FIELDS_CHECK, name="kind_fields"),
        CheckConstraint("points_spent >= 0", name="points_spent_not_negative"),
        CheckConstraint("min_order >= 0", name="min_order_not_negative"),
        Index("ix_reward_codes_member_id_id", "member_id", "id"),
        Index("ix_reward_codes_reward_id_member_id", "reward_id", "member_id"),
        Index(
            "ix_reward_codes_issued_expires_at",
            "expires_at",
            postgresql_where=text("status = 'issued'"),
            sqlite_where=text("status = 'issued'"),
        ),
        Index("ix_reward_codes_reserved_order_id", "reserved_order_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # normalized (loyalty.codes)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    percent: Mapped[int | None] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(String(128))
    min_order: Mapped[int] = mapped_column(BigInteger, default=0)
    first_order_only: Mapped[bool] = mapped_column(default=False)
    # Who may use it: the customer id and/or the normalized email (either one matching is enough).
    customer_id: Mapped[str | None] = mapped_column(String(128))
    email_normalized: Mapped[str | None] = mapped_column(String(320))
    member_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("members.id"))
    reward_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("rewards.id"))
    points_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    # What created it: ("redemption", member id), ("referral", referral id), ...
    source_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(10), default=ISSUED)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Validation with an order id holds the code for that checkout until `reserved_until`.
    reserved_order_id: Mapped[str | None] = mapped_column(String(128))
    reserved_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_order_id: Mapped[str | None] = mapped_column(String(128))
    # The discount granted on the order that used it (minor units; what it was worth there).
    used_discount: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    points_returned: Mapped[int] = mapped_column(BigInteger, default=0)


class RewardSettings(Base):
    """Rewards' own settings (a single row, id 1), apart from the core program row."""

    __tablename__ = "reward_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("reservation_minutes > 0", name="reservation_minutes_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Whether an unused code that expires gives its points back (stock always returns).
    expired_codes_return_points: Mapped[bool] = mapped_column(default=False)
    # How long validating a code with an `order_id` holds it for that checkout.
    reservation_minutes: Mapped[int] = mapped_column(Integer, default=30)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
