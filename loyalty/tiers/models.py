from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, JSONType, UTCDateTime, utcnow


class Tier(Base):
    __tablename__ = "tiers"
    __table_args__ = (
        CheckConstraint("threshold >= 0", name="threshold_not_negative"),
        CheckConstraint("multiplier > 0", name="multiplier_positive"),
        CheckConstraint("birthday_points >= 0", name="birthday_points_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # In the unit of the program's `tier_basis`: qualifying spend in minor units of the
    # program currency, points earned, or paid orders.
    threshold: Mapped[int] = mapped_column(BigInteger, unique=True)
    multiplier: Mapped[Decimal] = mapped_column(Numeric(8, 4), default=Decimal(1))
    perks: Mapped[list] = mapped_column(JSONType, default=list)
    # A catalog reward whose code is issued once per qualifying period on reaching the tier
    # (`TierEntry`); a plain id, the catalog being a domain of its own (rewards are retired,
    # never deleted).
    entry_reward_id: Mapped[int | None] = mapped_column(Integer)
    # Birthday points for members of this tier instead of each birthday rule's own points
    # (0: no birthday points in this tier); None: the rules' points.
    birthday_points: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TierSpend(Base):
    """A member's qualifying spend, points and orders in one qualifying period, with the
    period's own dates.

    Each row carries its bounds, so the rest of the code never re-derives them from settings
    that may have changed since: spend counts toward the tier while `starts_at <= now <
    keeps_until`, i.e. during its own period and the next one (the retained status). A member's
    tier is therefore the tier of the largest value among their live rows, the value being
    the column the program's `tier_basis` names — one formula for order events, refunds, the
    period close and the preview. All three are kept whatever the basis, so a change of basis
    re-evaluates everyone from what they did. Changed only by relative UPDATEs under the
    member's row lock.
    """

    __tablename__ = "tier_spend"
    __table_args__ = (
        CheckConstraint("spend >= 0", name="spend_not_negative"),
        CheckConstraint("points >= 0", name="points_not_negative"),
        CheckConstraint("paid_orders >= 0", name="paid_orders_not_negative"),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # End of the following period: a tier reached in this period is kept until then.
    keeps_until: Mapped[datetime] = mapped_column(UTCDateTime)
    spend: Mapped[int] = mapped_column(BigInteger, default=0)  # minor units, net of refunds
    # The points the period's orders earned (base and order bonuses), net of their reversals.
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    # The period's paid orders with eligible spend, less those since refunded in full.
    paid_orders: Mapped[int] = mapped_column(Integer, default=0)


class TierChange(Base):
    """Every change of a member's tier, and why: the feed for the member and outbound webhooks."""

    __tablename__ = "tier_changes"
    __table_args__ = (
        CheckConstraint("direction IN ('upgrade', 'downgrade')", name="direction"),
        Index("ix_tier_changes_member_id_id", "member_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    # Names as they were at the time: tiers may be renamed or deleted later.
    from_tier_id: Mapped[int | None] = mapped_column(Integer)
    from_tier: Mapped[str | None] = mapped_column(String(64))
    to_tier_id: Mapped[int] = mapped_column(Integer)
    to_tier: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(10))
    # order | refund | period_close | tier_config
    reason: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str | None] = mapped_column(String(300))
    # The value that decided it, in the unit of the program's basis at that moment: the
    # largest live period spend (or points, or orders).
    qualifying_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TierEntry(Base):
    """A tier's entry reward, given to a member in one qualifying period: at most one row per
    (member, tier, period), so reaching a tier again after a drop in the same period issues
    nothing (the unique key holds it, whatever runs at the same time)."""

    __tablename__ = "tier_entries"
    __table_args__ = (UniqueConstraint("member_id", "tier_id", "period_starts_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    tier_id: Mapped[int] = mapped_column(Integer)
    tier_name: Mapped[str] = mapped_column(String(64))  # as it was: tiers may be renamed
    period_starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reward_id: Mapped[int] = mapped_column(Integer)
    reward_code_id: Mapped[int | None] = mapped_column(BigInteger)
    tier_change_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
