"""The transaction of one HTTP request: the one place that commits or rolls it back, and that
answers a repeated `Idempotency-Key` with the stored reply.

The life of one request, in order:

1. Before the view (`_replay_stored_answer`, after the input checks of `loyalty.inputs`): a
   mutating request with an `Idempotency-Key` (not `/v1/events` or a platform's webhooks,
   which carry their own ids) is authenticated, and if the caller already has an answer
   stored under that key for the same request, that answer is sent again
   (`Idempotent-Replayed: true`) and the view does not run; the same key with another
   request is a 422.
2. The view runs. It never commits: services change rows in the request's session and flush.
   A view that may run its work again rolls back what it did so far first: `on_deadlock`
   (PostgreSQL chose the work as a deadlock's victim) and `loyalty.auth.require` (settings
   changed under it, or a transient failure of a read) call `discard`.
3. An exception becomes a problem+json answer in `loyalty.errors`, whose handlers call
   `discard` first.
4. After the view (`_finish`, on every answer that used the session):
   - an error answer (4xx, 5xx) rolls everything back, then writes what `keep_if_refused`
     asked for (a rate-limit hit, the record of a refused delivery), each in a transaction
     of its own;
   - a success stores the answer under its `Idempotency-Key` (sealed) and commits it with the
     request's effects, as one transaction. A concurrent request with the same key that
     committed first wins the unique index: ours rolls back and sends its answer instead.
     A connection lost at COMMIT leaves the outcome unknown: the answer is a 503, and the
     same request sent again (same key, or same event id) replays or applies.

Jobs and command-line commands own their transactions themselves (`loyalty.jobs`,
`loyalty.cli`).
"""

import logging
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from flask import Flask, Response, g, request
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from loyalty import idempotency
from loyalty.errors import (
    Conflict,
    DomainError,
    IdempotencyConflict,
    ValidationFailed,
    domain_error_response,
    unavailable,
)
from loyalty.extensions import db
from loyalty.retry import ATTEMPTS, pause, retryable, transient
from loyalty.sealing import Unsealable

log = logging.getLogger(__name__)

T = TypeVar("T")

REPLAYED = "Idempotent-Replayed"
_KEPT = "loyalty.kept_if_refused"


def init_app(app: Flask, caller: Callable[[], str]) -> None:
    """Steps 1 and 4. `caller()` authenticates the request and names its caller (the
    principal's audit name), to whom alone a stored answer is replayed."""
    app.before_request(partial(_replay_stored_answer, caller))
    app.after_request(_finish)


def discard() -> None:
    """Roll back what the request did so far; a connection already gone has nothing left to
    roll back."""
    try:
        db.session.rollback()
    except Exception as exc:
        if not transient(exc):
            raise


def on_deadlock(session: Session, work: Callable[[], T], what: str) -> T:
    """`work()`; if the database aborts it as a deadlock's victim, roll back and run it again
    (up to `loyalty.retry.ATTEMPTS` times in all, after a short random pause), then answer
    503 with Retry-After: nothing was changed, and the sender sends the same request again.

    Lock order is designed to avoid deadlocks (buyer, then referrer; rewards and gift cards
    in id order), but some cycles come from the data itself: two members who referred each
    other place their first orders at once, and each order locks its buyer and then the
    other. PostgreSQL breaks the cycle by failing one transaction (SQLSTATE 40P01), which
    changed nothing. An order event is all-or-nothing and idempotent, which makes this safe."""
    for attempt in range(ATTEMPTS):
        try:
            return work()
        except DBAPIError as exc:
            if not retryable(exc):
                raise
            session.rollback()
            if attempt == ATTEMPTS - 1:
                raise unavailable(f"{what} collided with concurrent changes; retry.") from exc
            pause(attempt)
    raise AssertionError("unreachable")


def keep_if_refused(write: Callable[[Session], object], what: str) -> None:
    """Run `write(session)` again, in a transaction of its own, if this request is answered
    with an error and its transaction rolls back.

    For rows that a refusal is itself the reason to keep: the hit of a failed gift card guess
    (a lockout counts exactly those), the record of a refused platform delivery. The caller
    writes them into the request's transaction too, which commits them on success."""
    request.environ.setdefault(_KEPT, []).append((write, what))


def _replay_stored_answer(caller: Callable[[], str]) -> Response | None:
    if request.method not in idempotency.MUTATING:
        return None
    key = request.headers.get(idempotency.HEADER)
    if key is None or request.path.startswith(idempotency.EXEMPT_PREFIXES):
        return None
    if not 1 <= len(key) <= 255:
        raise ValidationFailed(errors={idempotency.HEADER: ["Must be 1 to 255 characters."]})
    principal = caller()  # replays are only for the caller who made the request
    g.idempotency = (principal, key, idempotency.request_fingerprint())
    record = idempotency.find(db.session(), principal, key)
    if record is not None:
        return _replay(record, g.idempotency[2])
    return None


def _replay(record: idempotency.IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise IdempotencyConflict(
            "This Idempotency-Key was used with a different request; use a new key."
        )
    try:
        body = idempotency.open_body(record.body)
    except Unsealable as exc:
        # Sealed under a secret since dropped from SECRET_KEYS: no answer to give again.
        raise Conflict(
            "The answer stored for this Idempotency-Key can no longer be read; use a new key."
        ) from exc
    response = Response(body, status=record.status_code, content_type=record.content_type)
    response.headers[REPLAYED] = "true"
    return response


def _write_kept(session: Session) -> None:
    for write, what in request.environ.pop(_KEPT, ()):
        try:
            write(session)
            session.commit()
        except SQLAlchemyError:  # the answer stands; losing this is not worth a 500
            session.rollback()
            log.exception("could not keep %s of a refused request", what)


def _finish(response: Response) -> Response:
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
    if idem is not None and response.headers.get(REPLAYED) != "true":
        principal, key, fingerprint = idem
        idempotency.store(session, principal, key, fingerprint, response)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if idem is None:
            raise
        # A concurrent request with the same key won: our effects are gone, answer as it did.
        record = idempotency.find(session, idem[0], idem[1])
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
