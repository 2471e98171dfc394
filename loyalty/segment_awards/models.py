from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.ledger import LedgerEntry
from loyalty.types import JSONType, UTCDateTime, utcnow

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
STATUSES = (PENDING, RUNNING, DONE, FAILED)
UNFINISHED = (PENDING, RUNNING, FAILED)
# A recipient's state: still to be awarded, awarded (one ledger entry), or skipped (erased
# since the award was made, or the points would take a balance past MAX_RUNNING_TOTAL).
TO_AWARD, AWARDED, SKIPPED = "pending", "awarded", "skipped"
SOURCE = "segment_award"  # ledger entries: source ("segment_award", award id)


class SegmentAward(Base):
    """Bonus points for the members of a segment, as they were when the award was made."""

    __tablename__ = "segment_awards"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="status"),
        CheckConstraint("points > 0", name="points_positive"),
        UniqueConstraint("idempotency_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment: Mapped[str] = mapped_column(String(32))
    points: Mapped[int] = mapped_column(BigInteger)  # per member
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    # The segment as computed when the award was made: that moment and its thresholds.
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    thresholds: Mapped[dict] = mapped_column(JSONType, default=dict)
    member_count: Mapped[int] = mapped_column(BigInteger, default=0)
    members_done: Mapped[int] = mapped_column(BigInteger, default=0)
    members_awarded: Mapped[int] = mapped_column(BigInteger, default=0)
    members_skipped: Mapped[int] = mapped_column(BigInteger, default=0)
    points_awarded: Mapped[int] = mapped_column(BigInteger, default=0)
    # The highest member id of the chunks committed: every recipient up to it is awarded or
    # skipped, so the next chunk starts after it (no scan over the members already done).
    done_through: Mapped[int] = mapped_column(BigInteger, default=0)
    # The caller's key (API `Idempotency-Key`, the console form's submission key), prefixed by
    # who sent it: the same key makes the same award once, however often it is sent.
    idempotency_key: Mapped[str | None] = mapped_column(String(400))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(500))


class SegmentAwardMember(Base):
    """One recipient of an award, frozen when the award is made."""

    __tablename__ = "segment_award_members"
    __table_args__ = (CheckConstraint("state IN ('pending', 'awarded', 'skipped')", name="state"),)

    award_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("segment_awards.id"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(10), default=TO_AWARD)


# At most one ledger entry per award and member, whatever runs the award and however often: a
# second one fails this index and its chunk rolls back whole (balances included).
Index(
    "uq_ledger_entries_segment_award",
    LedgerEntry.source_id,
    LedgerEntry.member_id,
    unique=True,
    postgresql_where=text(f"source_type = '{SOURCE}'"),
    sqlite_where=text(f"source_type = '{SOURCE}'"),
)
