"""Run a request's unit of work again when PostgreSQL chose it as a deadlock's victim, and
tell transient database failures from the rest.

Lock order is designed to avoid deadlocks (buyer, then referrer; rewards and gift cards in id
order), but some cycles come from the data itself: two members who referred each other place
their first orders at once, and each order locks its buyer and then the other. PostgreSQL
breaks the cycle by failing one transaction (SQLSTATE 40P01); that transaction changed
nothing, so it is rolled back and run again from the start, after a short random pause. An
order event is all-or-nothing and idempotent, which makes this safe.
"""

import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from loyalty.errors import unavailable

T = TypeVar("T")

RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
ATTEMPTS = 4
# Besides those: the server shutting down or restarting (a terminated backend is 57P01),
# too many connections; and any connection exception (class 08).
TRANSIENT = RETRYABLE | {"57P01", "57P02", "57P03", "53300"}


def retryable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE


def transient(exc: BaseException) -> bool:
    """A database failure that passes by itself, which the caller should simply retry."""
    if isinstance(exc, PoolTimeout):  # every pooled connection busy for pool_timeout
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:  # SQLAlchemy recognised a lost connection
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if state:
        return state in TRANSIENT or state.startswith("08")
    if isinstance(orig, psycopg.OperationalError):
        return True  # no SQLSTATE: the connection itself failed (refused, closed, timed out)
    if isinstance(orig, sqlite3.OperationalError):
        return "locked" in str(orig) or "busy" in str(orig)
    return False


def pause(attempt: int) -> None:
    """A short random pause before running work again, longer after each attempt."""
    time.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311 - jitter, not secrets


def on_deadlock(session: Session, work: Callable[[], T], what: str) -> T:
    """`work()`; if the database aborts it as a deadlock victim, roll back and run it again
    (up to ATTEMPTS times in all), then answer 503 with Retry-After: nothing was changed, and
    the sender sends the same request again."""
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
