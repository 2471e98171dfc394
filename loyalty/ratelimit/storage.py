"""Where the counters live when there is no Redis: this process's memory, or the database.

Both are `limits` storages for its moving-window strategy (the limiter's one strategy), so the
limiter runs on them exactly as on `limits`' Redis storage.
"""

import threading
import time
from collections import deque
from collections.abc import Callable

from flask import has_request_context
from limits.storage import MovingWindowSupport, Storage
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from loyalty.extensions import db, rowcount
from loyalty.ratelimit.models import RateLimitEntry
from loyalty.transaction import keep_if_refused

SWEEP_SECONDS = 60.0


class MovingWindowsOnly(Storage, MovingWindowSupport):
    """`limits` asks every storage for fixed-window counters too; these keep moving windows."""

    STORAGE_SCHEME = None  # built by `init_app`, never named in a URI

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("moving windows only")

    def get(self, key: str) -> int:
        raise NotImplementedError("moving windows only")

    def get_expiry(self, key: str) -> float:
        raise NotImplementedError("moving windows only")


class ProcessStorage(MovingWindowsOnly):
    """Moving windows in this process's memory: per key, when each of its hits expires, oldest
    first. Keys whose hits have all expired are swept now and then, under the same lock.

    Not limits' MemoryStorage: it starts a thread on nearly every hit to expire old keys, and
    under gunicorn's threads that made a widget read take twice as long."""

    base_exceptions = ()

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, deque] = {}
        self._next_sweep = 0.0

    def _live(self, key: str, now: float) -> deque | None:
        if now >= self._next_sweep:
            self._hits = {k: hits for k, hits in self._hits.items() if hits[-1] > now}
            self._next_sweep = now + SWEEP_SECONDS
        hits = self._hits.get(key)
        if hits is not None:
            while hits and hits[0] <= now:
                hits.popleft()
        return hits

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.acquire_window(key, limit, expiry, amount)[0]

    def acquire_window(self, key: str, limit: int, expiry: int, amount: int = 1):
        """`acquire_entry` and `get_moving_window` at once: (acquired, start, hits)."""
        now = self._clock()
        with self._lock:
            hits = self._live(key, now)
            if hits is None:
                hits = self._hits[key] = deque()
            count = len(hits)
            acquired = count + amount <= limit
            if acquired:
                hits.extend([now + expiry] * amount)
                count += amount
            if count > limit:
                count = limit
            return acquired, (hits[-count] - expiry if count else now), count

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(start, hits): the window has room again once the `limit`-th newest hit expires."""
        now = self._clock()
        with self._lock:
            hits = self._live(key, now)
            if not hits:
                return now, 0
            count = min(len(hits), limit)
            return hits[-count] - expiry, count

    def check(self) -> bool:
        return True

    def clear(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)

    def reset(self) -> int | None:
        with self._lock:
            count = len(self._hits)
            self._hits.clear()
        return count


def acquire_window(storage: Storage, key: str, limit: int, expiry: int):
    """One hit, if the window has room, and the window afterwards: (acquired, start, hits)."""
    if isinstance(storage, ProcessStorage):
        return storage.acquire_window(key, limit, expiry)
    if not isinstance(storage, MovingWindowSupport):
        raise TypeError(f"{type(storage).__name__} keeps no moving windows")
    acquired = storage.acquire_entry(key, limit, expiry)
    return (acquired, *storage.get_moving_window(key, limit, expiry))


class DatabaseStorage(MovingWindowsOnly):
    """Moving windows as rows, one per hit: shared by every process and machine without Redis.

    A hit is written in the request's transaction. A refused request (4xx, 5xx) rolls that
    back, yet must still count — a miss is exactly what a lockout counts — so its hits are
    written again after the rollback, in a transaction of their own. Outside a request the
    caller commits. Hits that arrive at the same moment may each see room for one more: the
    count can pass a limit by as many requests as run at once.
    """

    # Not wrapped in limits' StorageError: a failing database is the database's failure (the
    # request could not run anyway), not a counter store to work around.
    base_exceptions = SQLAlchemyError

    def __init__(self, clock=time.time):
        super().__init__()
        self._clock = clock

    def _window(self, key: str, limit: int, now: float) -> tuple[int, float | None]:
        """How many of the window's newest `limit` hits are live, and the oldest one's expiry."""
        newest = (
            select(RateLimitEntry.expires_at)
            .where(RateLimitEntry.key == key, RateLimitEntry.expires_at > now)
            .order_by(RateLimitEntry.expires_at.desc())
            .limit(limit)
            .subquery()
        )
        count, oldest = db.session.execute(
            select(func.count(), func.min(newest.c.expires_at))
        ).one()
        return count, oldest

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = self._clock()
        count, _oldest = self._window(key, limit, now)
        if count + amount > limit:
            return False
        rows = [{"key": key, "expires_at": now + expiry}] * amount
        db.session.execute(insert(RateLimitEntry), rows)
        if has_request_context():
            keep_if_refused(
                lambda session: session.execute(insert(RateLimitEntry), rows), "rate limit hits"
            )
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = self._clock()
        count, oldest = self._window(key, limit, now)
        if not count or oldest is None:
            return now, 0
        return oldest - expiry, count

    def check(self) -> bool:
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def clear(self, key: str) -> None:
        db.session.execute(delete(RateLimitEntry).where(RateLimitEntry.key == key))

    def reset(self) -> int | None:
        return rowcount(db.session.execute(delete(RateLimitEntry)))


def purge_expired(session, now: float) -> int:
    """Forget hits that no longer count."""
    return rowcount(session.execute(delete(RateLimitEntry).where(RateLimitEntry.expires_at <= now)))
