"""The store of `Idempotency-Key` answers: one row per caller and key, holding a fingerprint
of the request and the answer sent (sealed).

`loyalty.transaction` decides when an answer is stored (with the request's effects, in its
one transaction) and when a stored one is sent again.
"""

import hashlib
import json
from datetime import datetime, timedelta

from flask import Response, request
from sqlalchemy import Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from loyalty.extensions import Base, rowcount
from loyalty.sealing import IDEMPOTENT_REPLY, sealer
from loyalty.types import BigId, UTCDateTime, utcnow

HEADER = "Idempotency-Key"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Order events and Stripe webhooks carry their own ids and have their own idempotency.
EXEMPT_PREFIXES = ("/v1/events", "/v1/webhooks/")


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    principal: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    # The reply sealed (loyalty.sealing): it may carry a gift card code, a webhook secret or a
    # widget token, which the database never holds in the clear. Read it with `open_body`.
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def request_fingerprint() -> str:
    body = request.get_data(cache=True)
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("latin-1")
    text = f"{request.method} {request.path}?{request.query_string.decode()} {canonical}"
    return hashlib.sha256(text.encode()).hexdigest()


def seal_body(text: str) -> str:
    """A reply as stored (sealed)."""
    return sealer(IDEMPOTENT_REPLY).seal(text)


def open_body(stored: str) -> str:
    """A stored reply's text (`loyalty.sealing.Unsealable` if no key opens it)."""
    return sealer(IDEMPOTENT_REPLY).unseal(stored)


def find(session: Session, principal: str, key: str) -> IdempotencyRecord | None:
    return session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
    ).scalar_one_or_none()


def store(session: Session, principal: str, key: str, fingerprint: str, response: Response) -> None:
    """Add the answer to the session (the caller commits it with the request's effects)."""
    session.add(
        IdempotencyRecord(
            principal=principal,
            key=key,
            request_hash=fingerprint,
            status_code=response.status_code,
            content_type=response.content_type or "application/json",
            body=seal_body(response.get_data(as_text=True)),
        )
    )


def purge_expired(session: Session, now: datetime, ttl_hours: int) -> int:
    result = session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.created_at < now - timedelta(hours=ttl_hours)
        )
    )
    return rowcount(result)
