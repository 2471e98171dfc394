"""The email outbox: one row per message to one address, written in the transaction of the
change it tells of, sent by the `send-emails` job with retries."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, JSONType, UTCDateTime, utcnow


class EmailMessage(Base):
    __tablename__ = "email_messages"
    __table_args__ = (
        Index(
            "ix_email_messages_due",
            "next_attempt_at",
            postgresql_where=text("sent_at IS NULL AND gave_up_at IS NULL"),
            sqlite_where=text("sent_at IS NULL AND gave_up_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The member it is for; NULL for a message to someone who need not be a member (a gift
    # card's recipient).
    member_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    to_address: Mapped[str | None] = mapped_column(String(320))  # NULL once sent or erased
    template: Mapped[str] = mapped_column(String(32))  # loyalty/email/templates/email/<name>.*
    data: Mapped[dict] = mapped_column(JSONType)  # the numbers the template shows
    # What must not rest in clear (a gift card's code): sealed (loyalty.sealing), cleared
    # once sent.
    sealed: Mapped[str | None] = mapped_column(String(500))
    # Transactional mail (a gift card's delivery) goes out whatever the member's unsubscribe.
    transactional: Mapped[bool] = mapped_column(default=False)
    # Messages sent at most once per fact carry a key naming it; NULL for the others.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When it is next due; while a worker sends it, the end of that worker's lease.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Given up after its last attempt, or not sent at all (the member unsubscribed or was
    # erased meanwhile: `last_error` says which).
    gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
