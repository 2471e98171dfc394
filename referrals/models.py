from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, JSONType, UTCDateTime, utcnow

SETTINGS_ID = 1
REVIEW, CLAIMED, CONVERTED, REJECTED = "review", "claimed", "converted", "rejected"
# "rewarded" is not stored: it is a converted referral whose reward has matured (see service).
REWARDED = "rewarded"
STATUSES = (REVIEW, CLAIMED, CONVERTED, REJECTED)
REWARD_PENDING, REWARD_EARNED, REWARD_CANCELED = "pending", "earned", "canceled"
MISSING_IP_POLICIES = REFUSE, SEND_TO_REVIEW = ("refuse", "review")
USER_AGENT_MAX = 300  # what is kept of a user agent (the columns' size)


class ReferralSettings(Base):
    """The referral program's settings: a single row (id 1), created by the migration."""

    __tablename__ = "referral_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint(
            "(referrer_reward_points IS NULL) <> (referrer_reward_id IS NULL)",
            name="one_referrer_reward",
        ),
        CheckConstraint(
            "referrer_reward_points IS NULL OR referrer_reward_points > 0",
            name="referrer_points_positive",
        ),  # fmt: skip
        CheckConstraint("friend_reward_min_order >= 0", name="friend_min_order_not_negative"),
        CheckConstraint("friend_reward_valid_days > 0", name="friend_valid_days_positive"),
        CheckConstraint("max_conversions_per_referrer_30d >= 0", name="referrer_cap_not_negative"),
        CheckConstraint("max_claims_per_ip_7d >= 0", name="ip_cap_not_negative"),
        CheckConstraint("attribution_days > 0", name="attribution_days_positive"),
        CheckConstraint("min_order_amount > 0", name="min_order_amount_positive"),
        CheckConstraint("reward_hold_days > 0", name="reward_hold_days_positive"),
        CheckConstraint("missing_ip IN ('refuse', 'review')", name="missing_ip"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Where `/r/<code>` sends the friend; NULL = LOYALTY_PUBLIC_URL.
    landing_url: Mapped[str | None] = mapped_column(String(2000))
    friend_reward_kind: Mapped[str] = mapped_column(String(16), default="amount_off")
    friend_reward_amount: Mapped[int | None] = mapped_column(BigInteger, default=1000)
    friend_reward_percent: Mapped[int | None] = mapped_column(Integer)
    friend_reward_sku: Mapped[str | None] = mapped_column(String(128))
    friend_reward_min_order: Mapped[int] = mapped_column(BigInteger, default=4000)
    friend_reward_valid_days: Mapped[int] = mapped_column(Integer, default=30)
    # Exactly one of: points for the referrer, or a catalog reward (its code, without points).
    referrer_reward_points: Mapped[int | None] = mapped_column(BigInteger, default=500)
    referrer_reward_id: Mapped[int | None] = mapped_column(Integer)
    # Caps (NULL = no cap): conversions per referrer in 30 days, claims per IP in 7 days.
    max_conversions_per_referrer_30d: Mapped[int | None] = mapped_column(Integer, default=10)
    max_claims_per_ip_7d: Mapped[int | None] = mapped_column(Integer, default=5)
    # How long the signed click token of a share link attributes a claim to that click.
    attribution_days: Mapped[int] = mapped_column(Integer, default=30)
    # A friend's first order converts only with at least this much net eligible spend (minor
    # units: no gift cards, tax or shipping; refunds deducted, and re-checked on each refund).
    min_order_amount: Mapped[int] = mapped_column(BigInteger, default=1)
    # The referrer's reward stays pending at least this long, even if order points mature at
    # once (program pending_days = 0): a refund inside it still takes the reward back.
    reward_hold_days: Mapped[int] = mapped_column(Integer, default=14)
    # A new referral without the friend's IP: "refuse" it, or send it to "review".
    missing_ip: Mapped[str] = mapped_column(String(8), default=SEND_TO_REVIEW)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReferralCode(Base):
    """A member's one share code; deleted when the member is erased (the link then 404s)."""

    __tablename__ = "referral_codes"

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # normalized (loyalty.codes)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReferralClick(Base):
    """One visit of a share link per client (IPv4 address or IPv6 /64) and dedup window: more
    visits in the same window are the same click (the unique index drops them)."""

    __tablename__ = "referral_clicks"
    __table_args__ = (
        Index("ix_referral_clicks_member_id_id", "member_id", "id"),
        Index("ix_referral_clicks_dedup", "member_id", "client_key", "dedup_window", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    ip: Mapped[str | None] = mapped_column(String(64))  # canonical (loyalty.addresses)
    client_key: Mapped[str | None] = mapped_column(String(64))
    # The number of the REFERRAL_CLICK_DEDUP_SECONDS window the click fell in (epoch based).
    dedup_window: Mapped[int | None] = mapped_column(BigInteger)
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Referral(Base):
    """One friend referred by one member: claim, conversion, fraud verdicts and rewards.

    A friend (normalized email, or customer id) can be referred once: the unique indexes make
    concurrent claims of the same friend produce one row whatever the timing.
    """

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint("status IN ('review', 'claimed', 'converted', 'rejected')", name="status"),
        CheckConstraint("source IN ('claim', 'order')", name="source"),
        CheckConstraint(
            "reward_state IS NULL OR reward_state IN ('pending', 'earned', 'canceled')",
            name="reward_state",
        ),
        Index("ix_referrals_referrer_id_id", "referrer_id", "id"),
        Index("ix_referrals_referrer_id_converted_at", "referrer_id", "converted_at"),
        Index("ix_referrals_ip_key_created_at", "ip_key", "created_at"),
        Index("ix_referrals_status_id", "status", "id"),
        Index("ix_referrals_reward_state_matures_at", "reward_state", "reward_matures_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    referrer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    code: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(8))  # "claim" or an order that skipped the claim
    friend_email: Mapped[str | None] = mapped_column(String(320), unique=True)  # normalized
    friend_customer_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    friend_name: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(64))  # canonical (loyalty.addresses)
    ip_key: Mapped[str | None] = mapped_column(String(64))  # what the per-IP cap counts
    user_agent: Mapped[str | None] = mapped_column(String(300))
    click_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("referral_clicks.id"))
    # Why it waits for review (suspicions) / why it was refused (one stated reason).
    flags: Mapped[list] = mapped_column(JSONType, default=list)
    reason: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(500))  # an admin's words on a decision
    friend_reward_code_id: Mapped[int | None] = mapped_column(BigInteger)
    friend_reward: Mapped[dict | None] = mapped_column(JSONType)  # the code as issued
    order_id: Mapped[str | None] = mapped_column(String(128), index=True)  # converting order
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The referrer's reward, created pending on conversion (points or a catalog reward's code).
    reward_state: Mapped[str | None] = mapped_column(String(10))
    reward_points: Mapped[int | None] = mapped_column(BigInteger)
    reward_catalog_id: Mapped[int | None] = mapped_column(Integer)
    reward_matures_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reward_entry_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("ledger_entries.id"))
    reward_code_id: Mapped[int | None] = mapped_column(BigInteger)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
