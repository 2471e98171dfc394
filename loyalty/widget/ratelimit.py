"""The widget's rate limits: one allowance per member (not per IP) and scope.

Counted on Flask-Limiter's storage and strategy (Redis with `REDIS_URL`: shared by every process)
and answered like Flask-Limiter answers (429 `rate-limited` with `Retry-After`; `X-RateLimit-*`
and `Retry-After` headers on the view's answer), without its per-request limit resolution, which
cost a widget read more than the rest of the request.

Without Redis (`memory://`, counters per process as documented) the fixed windows are kept here:
limits' MemoryStorage starts a thread on nearly every hit to expire old keys, and under
gunicorn's threads that made a widget read take twice as long.
"""

import functools
import threading
import time
from collections.abc import Callable

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from loyalty.errors import RateLimited
from loyalty.extensions import limiter

SWEEP_SECONDS = 60.0


class ProcessWindows:
    """Fixed windows in this process's memory, as limits' fixed window counts them: a window
    opens at its key's first hit and lasts the limit's period; expired ones are swept now and
    then, under the same lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._windows: dict[str, list] = {}  # key -> [reset_time, hits]
        self._next_sweep = 0.0

    def hit(self, item: RateLimitItem, *identifiers: str) -> tuple[bool, int, float]:
        """Count one hit unless the window is full: (allowed, remaining, reset_time)."""
        key, now = item.key_for(*identifiers), time.time()
        with self._lock:
            if now >= self._next_sweep:
                self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
                self._next_sweep = now + SWEEP_SECONDS
            window = self._windows.get(key)
            if window is None or window[0] <= now:
                window = self._windows[key] = [now + item.get_expiry(), 0]
            if window[1] >= item.amount:
                return False, 0, window[0]
            window[1] += 1
            return True, item.amount - window[1], window[0]


class StorageWindows:
    """The same, on Flask-Limiter's own strategy and storage (e.g. Redis)."""

    def __init__(self, strategy):
        self.strategy = strategy

    def hit(self, item: RateLimitItem, *identifiers: str) -> tuple[bool, int, float]:
        allowed = self.strategy.hit(item, *identifiers)
        stats = self.strategy.get_window_stats(item, *identifiers)
        return allowed, max(0, stats.remaining), stats.reset_time


def _counters():
    strategy = limiter.limiter
    if isinstance(strategy, FixedWindowRateLimiter) and isinstance(strategy.storage, MemoryStorage):
        windows = current_app.extensions.get("loyalty.widget-windows")
        if windows is None:
            windows = current_app.extensions["loyalty.widget-windows"] = ProcessWindows()
        return windows
    return StorageWindows(strategy)


@functools.cache
def _parsed(limit: str) -> list[RateLimitItem]:
    return sorted(parse_many(limit))


def member_limit(key_func: Callable[[], str], config_key: str, scope: str):
    """Decorate a view: at most `config_key`'s limits (e.g. "120/minute") per `key_func()`,
    shared by every view with the same `scope`."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not limiter.enabled:
                return view(*args, **kwargs)
            counters, key = _counters(), key_func()
            first = None
            for item in _parsed(current_app.config[config_key]):
                allowed, remaining, reset_time = counters.hit(item, scope, key)
                reset_at = int(reset_time + 1)
                if not allowed:
                    raise RateLimited(str(item), retry_after=max(1, int(reset_at - time.time())))
                first = first or (item, remaining, reset_at)
            response = view(*args, **kwargs)
            item, remaining, reset_at = first
            response.headers["X-RateLimit-Limit"] = str(item.amount)
            response.headers["X-RateLimit-Remaining"] = str(remaining)
            response.headers["X-RateLimit-Reset"] = str(reset_at)
            response.headers["Retry-After"] = str(int(reset_at - time.time()))
            return response

        return wrapper

    return decorator
