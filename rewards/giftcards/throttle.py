"""Lookup lockout: too many failed balance checks from one client lock it out for a while.

The counts must be shared by every process and machine, so they live in Redis when `REDIS_URL`
is set and in the database otherwise — never in one process's memory. (The plain per-minute
cap on lookups is `loyalty.ratelimit`'s, on its own storage; see routes.)
"""

import math
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty.errors import RateLimited
from rewards.giftcards.models import GiftCardLookupFailure, GiftCardLookupLock

LOOKUPS_PER_MINUTE = 30
MAX_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)


def _locked(seconds: float) -> RateLimited:
    return RateLimited(
        "Too many failed gift card lookups; try again later.",
        retry_after=max(1, math.ceil(seconds)),
    )


class DatabaseLockout:
    """Failures as rows. A failed lookup answers 404 and its transaction rolls back, so the
    failure is written after that rollback, in its own commit (`defer` runs it then)."""

    def __init__(self, session: Session, defer):
        self.session = session
        self.defer = defer

    def check(self, client: str, now: datetime) -> None:
        until = self.session.scalar(
            select(GiftCardLookupLock.locked_until).where(GiftCardLookupLock.client == client)
        )
        if until is not None and until > now:
            raise _locked((until - now).total_seconds())

    def record_failure(self, client: str, now: datetime) -> None:
        self.defer(lambda: self.write_failure(client, now))

    def write_failure(self, client: str, now: datetime) -> None:
        session = self.session
        session.add(GiftCardLookupFailure(client=client, failed_at=now))
        session.flush()
        recent = session.scalar(
            select(func.count()).where(
                GiftCardLookupFailure.client == client,
                GiftCardLookupFailure.failed_at > now - FAILURE_WINDOW,
            )
        )
        if recent >= MAX_FAILURES:
            self._lock(client, now + LOCKOUT)
        session.commit()

    def _lock(self, client: str, until: datetime) -> None:
        session = self.session
        changed = session.execute(
            update(GiftCardLookupLock)
            .where(GiftCardLookupLock.client == client)
            .values(locked_until=until),
            execution_options={"synchronize_session": False},
        )
        if changed.rowcount:
            return
        try:
            with session.begin_nested():
                session.add(GiftCardLookupLock(client=client, locked_until=until))
                session.flush()
        except IntegrityError:
            pass  # a concurrent failure locked it a moment ago: locked either way


def purge_lookup_failures(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """Forget failures and locks that no longer count."""
    removed = session.execute(
        delete(GiftCardLookupFailure).where(GiftCardLookupFailure.failed_at <= now - FAILURE_WINDOW)
    ).rowcount
    removed += session.execute(
        delete(GiftCardLookupLock).where(GiftCardLookupLock.locked_until <= now)
    ).rowcount
    session.commit()
    return removed


class RedisLockout:
    """Failures in a sorted set per client (a sliding window); the lock is a key with a TTL."""

    def __init__(self, redis, prefix: str = "loyalty:gift-card-lookup:"):
        self.redis = redis
        self.prefix = prefix

    def check(self, client: str, now: datetime) -> None:
        ttl_ms = self.redis.pttl(f"{self.prefix}lock:{client}")
        if ttl_ms and ttl_ms > 0:
            raise _locked(ttl_ms / 1000)

    def record_failure(self, client: str, now: datetime) -> None:
        key, stamp = f"{self.prefix}fail:{client}", now.timestamp()
        window = int(FAILURE_WINDOW.total_seconds())
        pipe = self.redis.pipeline()
        pipe.zadd(key, {uuid.uuid4().hex: stamp})
        pipe.zremrangebyscore(key, "-inf", stamp - window)
        pipe.zcard(key)
        pipe.expire(key, window)
        recent = pipe.execute()[2]
        if recent >= MAX_FAILURES:
            self.redis.set(
                f"{self.prefix}lock:{client}", "1", ex=int(LOCKOUT.total_seconds()), nx=True
            )
