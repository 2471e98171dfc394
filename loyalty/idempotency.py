"""`Idempotency-Key` on mutating requests, and the per-request transaction.

The request's effects and the idempotency record commit together: a retried request either
replays the stored answer or, if the first attempt failed, runs again from scratch. Two
concurrent requests with one key race on a unique index; the loser rolls back and replays.
"""

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask, Response, g, request
from sqlalchemy import Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from loyalty.auth import authenticate
from loyalty.errors import (
    Conflict,
    DomainError,
    IdempotencyConflict,
    ValidationFailed,
    domain_error_response,
    unavailable,
)
from loyalty.extensions import Base, db, rowcount
from loyalty.retry import transient
from loyalty.sealing import IDEMPOTENT_REPLY, Unsealable, sealer
from loyalty.types import BigId, UTCDateTime, utcnow

log = logging.getLogger(__name__)

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


def _find(session: Session, principal: str, key: str) -> IdempotencyRecord | None:
    return session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
    ).scalar_one_or_none()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise IdempotencyConflict(
            "This Idempotency-Key was used with a different request; use a new key."
        )
    try:
        body = open_body(record.body)
    except Unsealable as exc:
        # Sealed under a secret since dropped from SECRET_KEYS: no answer to give again.
        raise Conflict(
            "The answer stored for this Idempotency-Key can no longer be read; use a new key."
        ) from exc
    response = Response(body, status=record.status_code, content_type=record.content_type)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _before_request():
    if request.method not in MUTATING:
        return None
    key = request.headers.get(HEADER)
    if key is None or request.path.startswith(EXEMPT_PREFIXES):
        return None
    if not 1 <= len(key) <= 255:
        raise ValidationFailed(errors={HEADER: ["Must be 1 to 255 characters."]})
    principal = authenticate()  # replays are only for the caller who made the request
    g.idempotency = (principal.audit_name, key, request_fingerprint())
    record = _find(db.session, principal.audit_name, key)
    if record is not None:
        return _replay(record, g.idempotency[2])
    return None


_KEPT = "loyalty.kept_if_refused"


def keep_if_refused(write: Callable[[Session], object], what: str) -> None:
    """Run `write(session)` again, in a transaction of its own, if this request is answered
    with an error and its transaction rolls back.

    For rows that a refusal is itself the reason to keep: the hit of a failed gift card guess
    (a lockout counts exactly those), the record of a refused platform delivery. The caller
    writes them into the request's transaction too, which commits them on success."""
    request.environ.setdefault(_KEPT, []).append((write, what))


def _write_kept(session: Session) -> None:
    for write, what in request.environ.pop(_KEPT, ()):
        try:
            write(session)
            session.commit()
        except SQLAlchemyError:  # the answer stands; losing this is not worth a 500
            session.rollback()
            log.exception("could not keep %s of a refused request", what)


def _after_request(response: Response) -> Response:
    """Commit the request's transaction (with its idempotency record) or roll it back,
    keeping what `keep_if_refused` asked for."""
    if not db.session.registry.has():
        return response  # the request never used the session: nothing to commit
    session = db.session()
    if response.status_code >= 400:
        session.rollback()
        _write_kept(session)
        return response
    idem = g.pop("idempotency", None)
    if idem is not None and response.headers.get("Idempotent-Replayed") != "true":
        principal, key, fingerprint = idem
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
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if idem is None:
            raise
        # A concurrent request with the same key won: our effects are gone, answer as it did.
        record = _find(session, idem[0], idem[1])
        if record is None:
            raise
        try:
            return _replay(record, idem[2])
        except DomainError as error:
            return domain_error_response(error)
    except DBAPIError as exc:
        if not transient(exc):
            raise
        # The connection was lost at COMMIT: whether it committed is unknown, so the answer
        # is "send it again" — the same Idempotency-Key (or event id) then replays or applies.
        try:
            session.rollback()
        except DBAPIError as again:
            if not transient(again):
                raise
        return domain_error_response(unavailable())
    return response


def purge_expired(session: Session, now: datetime, ttl_hours: int) -> int:
    result = session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.created_at < now - timedelta(hours=ttl_hours)
        )
    )
    return rowcount(result)


def register(app: Flask) -> None:
    app.before_request(_before_request)
    app.after_request(_after_request)
