from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, UTCDateTime, utcnow

LIVE_MEMBER = "erased_at IS NULL AND customer_id IS NOT NULL"


class Member(Base):
    """A shopper enrolled in the program, with the materialized balances of their ledger.

    The balances change only through `loyalty.ledger` (and the set-based jobs), in the same
    transaction as the entries that explain them; `verify-ledger` recomputes them.
    """

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("points_pending >= 0", name="pending_not_negative"),
        # Live members by id, with what the segments read of them (index-only on PostgreSQL:
        # the reports join them to their figures without reading the wide rows).
        Index(
            "ix_members_live",
            "id",
            postgresql_include=["customer_id", "enrolled_at"],
            postgresql_where=text(LIVE_MEMBER),
            sqlite_where=text(LIVE_MEMBER),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The store's customer id; NULL once the member is erased.
    customer_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_normalized: Mapped[str | None] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    birthday: Mapped[str | None] = mapped_column(String(5))  # "MM-DD"
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    points_available: Mapped[int] = mapped_column(BigInteger, default=0)
    points_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    points_lifetime: Mapped[int] = mapped_column(BigInteger, default=0)
    # Last purchase or redemption: inactivity expiry counts from here.
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tier_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("tiers.id"))
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the member unsubscribed from the program's own emails (loyalty/email); NULL: not.
    email_unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Referrals: may a referral still waiting for its order name this member (by customer id
    # or mailbox)? True from enrolment (a claim may come first) and whenever a claim names
    # them; a paid order that finds none clears it, so the orders after it need not look (see
    # referrals.service). Rows inserted by SQL without it (bulk loads) start false.
    referral_check: Mapped[bool] = mapped_column(default=True, server_default=false())
