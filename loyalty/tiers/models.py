from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, JSONType, UTCDateTime, utcnow


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


class TierSpend(Base):
    """A member's qualifying spend in one qualifying period, with the period's own dates.

    Each row carries its bounds, so the rest of the code never re-derives them from settings
    that may have changed since: spend counts toward the tier while `starts_at <= now <
    keeps_until`, i.e. during its own period and the next one (the retained status). A member's
    tier is therefore the tier of the largest spend among their live rows — one formula for
    order events, refunds, the period close and the preview. Changed only by relative UPDATEs
    under the member's row lock.
    """

    __tablename__ = "tier_spend"
    __table_args__ = (CheckConstraint("spend >= 0", name="spend_not_negative"),)

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # End of the following period: a tier reached in this period is kept until then.
    keeps_until: Mapped[datetime] = mapped_column(UTCDateTime)
    spend: Mapped[int] = mapped_column(BigInteger, default=0)  # minor units, net of refunds


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
    # The spend that decided it: the largest live period spend at that moment.
    qualifying_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
