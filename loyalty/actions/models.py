from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, JSONType, UTCDateTime, utcnow


class MemberAction(Base):
    """A customer action reported for a member (a review, a follow...): one row per action id,
    with its body's hash and the answer it got, written in the same transaction as its awards,
    so an action earns exactly once however often it is sent."""

    __tablename__ = "member_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    action_id: Mapped[str] = mapped_column(String(128), unique=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the store sent with it (a review's product, a network's name...); emptied on erasure.
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    body_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ActionAwardCount(Base):
    """How many awards an action rule gave a member in one period: a day ("2026-12-06"), a
    month ("2026-12") or "lifetime", in the program's time zone, by the action's `occurred_at`.

    Every award counts in all three, so a cap added to a rule later counts the awards made
    before it. Read and raised only with the member's row locked (see `service`)."""

    __tablename__ = "action_award_counts"
    __table_args__ = (CheckConstraint("awards > 0", name="awards_positive"),)

    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), primary_key=True)
    rule_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("earning_rules.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    awards: Mapped[int] = mapped_column(Integer)
