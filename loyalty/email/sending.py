"""The `send-emails` job: send the outbox's due messages over SMTP, with retries.

As `deliver-webhooks` does: each round claims a bounded batch in a short transaction (on
PostgreSQL `FOR UPDATE SKIP LOCKED`, so workers on several machines take different rows) and
moves the claimed rows' `next_attempt_at` to the end of a lease; it sends outside any
transaction, then records the results. A message whose member was erased or (for
non-transactional mail) unsubscribed meanwhile is not sent. A failed attempt is retried after
`EMAIL_RETRY_SECONDS × 2^(attempts − 1)`, at most `EMAIL_RETRY_MAX_SECONDS`, until
`EMAIL_MAX_ATTEMPTS` attempts have failed. Delivery is at least once: a worker that dies
between the SMTP server's acceptance and the record sends that message again.
"""

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from loyalty import outbox
from loyalty.email.models import EmailMessage
from loyalty.email.service import (
    TEMPLATES,
    enabled,
    mime_message,
    render,
    unsubscribe_url,
)
from loyalty.extensions import rowcount
from loyalty.members.models import Member
from loyalty.sealing import EMAIL_SECRET, Sealer, Unsealable


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    username: str
    password: str
    starttls: bool
    timeout: float
    sender: str
    batch: int
    max_attempts: int
    retry_seconds: float
    retry_max_seconds: float

    @classmethod
    def from_config(cls, config) -> "Settings":
        return cls(
            config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_USERNAME"],
            config["SMTP_PASSWORD"], config["SMTP_STARTTLS"], config["SMTP_TIMEOUT_SECONDS"],
            config["EMAIL_FROM"], config["EMAIL_BATCH_SIZE"], config["EMAIL_MAX_ATTEMPTS"],
            config["EMAIL_RETRY_SECONDS"], config["EMAIL_RETRY_MAX_SECONDS"],
        )  # fmt: skip

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(
            seconds=min(self.retry_seconds * 2 ** (attempts - 1), self.retry_max_seconds)
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.batch * self.timeout + 60)


def _claim(session: Session, now: datetime, settings: Settings) -> Sequence[Row]:
    due = (
        select(EmailMessage.id)
        .where(
            EmailMessage.sent_at.is_(None),
            EmailMessage.gave_up_at.is_(None),
            EmailMessage.next_attempt_at <= now,
        )
        .order_by(EmailMessage.next_attempt_at, EmailMessage.id)
        .limit(settings.batch)
        .with_for_update(skip_locked=True)
    )
    claimed = outbox.claim(
        session, EmailMessage, due, now=now, lease=settings.lease, last_attempt_at=now
    )
    if not claimed:
        return []
    return session.execute(
        select(
            EmailMessage.id,
            EmailMessage.member_id,
            EmailMessage.attempts,
            EmailMessage.to_address,
            EmailMessage.template,
            EmailMessage.data,
            EmailMessage.sealed,
            EmailMessage.transactional,
            Member.erased_at,
            Member.email_unsubscribed_at,
        )
        .outerjoin(Member, Member.id == EmailMessage.member_id)
        .where(EmailMessage.id.in_(claimed))
        .order_by(EmailMessage.id)
    ).all()


def _not_sent_because(row: Row) -> str | None:
    if row.to_address is None or row.template not in TEMPLATES:
        return "nothing to send"
    if row.member_id is not None and row.erased_at is not None:
        return "the member was erased"
    if not row.transactional and row.email_unsubscribed_at is not None:
        return "the member unsubscribed"
    return None


class _Connection:
    """One SMTP session per round, opened at the first message that needs it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def send(self, message) -> None:
        if self.smtp is None:
            s = self.settings
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            try:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password)
            except BaseException:
                smtp.close()
                raise
            self.smtp = smtp
        self.smtp.send_message(message)

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None


def _send(row: Row, settings: Settings, connection: _Connection) -> str | None:
    """Send one message; None when the server accepted it, else what went wrong."""
    secret = None
    if row.sealed is not None:
        try:
            secret = Sealer(current_app.config["SECRET_KEYS"], EMAIL_SECRET).unseal(row.sealed)
        except Unsealable:
            return "The sealed part opens with no key of SECRET_KEYS."
    link = None
    if not row.transactional and row.member_id is not None:
        link = unsubscribe_url(row.member_id)
    rendered = render(row.template, row.data, secret=secret, unsubscribe=link)
    message = mime_message(rendered, row.to_address, settings.sender, f"email.{row.id}", link)
    try:
        connection.send(message)
    except (smtplib.SMTPException, OSError) as exc:
        connection.close()  # a broken session is not reused; the next message opens another
        return f"{type(exc).__name__}: {exc}"[:500]
    return None


_RECORD = (
    update(EmailMessage.__table__)
    .where(EmailMessage.__table__.c.id == bindparam("message_id"))
    .values(
        last_error=bindparam("error"),
        sent_at=bindparam("sent"),
        gave_up_at=bindparam("gave_up"),
        next_attempt_at=bindparam("next_at"),
        sealed=bindparam("sealed"),
    )
)


def send_emails(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """Send every message due at `now`, `EMAIL_BATCH_SIZE` at a time; returns how many were
    sent. Nothing to do while the channel is off."""
    if not enabled():
        return 0
    settings = Settings.from_config(current_app.config)
    sent = 0
    while True:
        rows = _claim(session, now, settings)
        session.commit()  # the lease is visible to other workers; no lock is kept
        if not rows:
            return sent
        connection = _Connection(settings)
        results = []
        try:
            for row in rows:
                skipped = _not_sent_because(row)
                error = skipped or _send(row, settings, connection)
                done = error is None
                last = row.attempts >= settings.max_attempts
                gave_up = skipped is not None or (not done and last)
                results.append(
                    {
                        "message_id": row.id,
                        "error": error,
                        "sent": now if done else None,
                        "gave_up": now if gave_up else None,
                        "next_at": now + settings.backoff(row.attempts),
                        # A code goes once: forgotten when sent or given up.
                        "sealed": None if done or gave_up else row.sealed,
                    }
                )
                sent += done
        finally:
            connection.close()
        session.execute(_RECORD, results)
        session.commit()


def purge_emails(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """`purge-emails`: forget messages sent or given up more than `WEBHOOK_RETENTION_DAYS`
    ago (at least `POINTS_EXPIRY_WARNING_DAYS` + 1 days: a warning's row keeps the same
    warning from going out twice)."""
    config = current_app.config
    days = max(config["WEBHOOK_RETENTION_DAYS"], config["POINTS_EXPIRY_WARNING_DAYS"] + 1)
    before = now - timedelta(days=days)
    removed = rowcount(
        session.execute(
            delete(EmailMessage).where(
                EmailMessage.created_at < before,
                or_(EmailMessage.sent_at.is_not(None), EmailMessage.gave_up_at.is_not(None)),
            ),
            execution_options={"synchronize_session": False},
        )
    )
    session.commit()
    return removed
