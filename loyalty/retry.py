"""Tell transient database failures (a deadlock's victim, a lost connection, a server
restarting) from the rest, and pause before running work again.

What is run again, and how it is rolled back first, is `loyalty.transaction`'s (a request's
work) or the job's own.
"""

import random
import sqlite3
import time

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

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
