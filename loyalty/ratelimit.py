"""Rate limits: fixed windows per key and scope, counted with `limits` (the engine under
Flask-Limiter), checked only by the views that carry a limit.

- The widget: one allowance per member (not per IP) and scope (`WIDGET_RATE_LIMIT`,
  `WIDGET_REDEEM_RATE_LIMIT`).
- Gift card balance lookups: per caller IP.

Answers are what Flask-Limiter's would be: 429 `rate-limited` with `Retry-After`, and
`X-RateLimit-*` and `Retry-After` headers on the view's answer. Flask-Limiter itself is not
used: its `before_request` hook resolved limits for every request of every route, which cost a
balance read more CPU than its own query.

With `REDIS_URL` (storage `RATELIMIT_STORAGE_URI`) the counters live in Redis, shared by every
process. Without it (`memory://`) they are this process's: the windows are kept here, because
limits' MemoryStorage starts a thread on nearly every hit to expire old keys, and under
gunicorn's threads that made a widget read take twice as long. `RATELIMIT_ENABLED=False` turns
every limit off.
"""

import functools
import threading
import time
from collections.abc import Callable

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from loyalty.errors import RateLimited

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
        key, now = (item, *identifiers), time.time()  # limits' key_for, without the string
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

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()


class StorageWindows:
    """The same, on a `limits` strategy and storage (Redis: shared by every process)."""

    def __init__(self, strategy):
        self.strategy = strategy

    def hit(self, item: RateLimitItem, *identifiers: str) -> tuple[bool, int, float]:
        allowed = self.strategy.hit(item, *identifiers)
        stats = self.strategy.get_window_stats(item, *identifiers)
        return allowed, max(0, stats.remaining), stats.reset_time


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_ENABLED", True)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    uri = app.config["RATELIMIT_STORAGE_URI"]
    if uri.startswith("memory://"):
        counters = ProcessWindows()
    else:
        counters = StorageWindows(FixedWindowRateLimiter(storage_from_string(uri)))
    app.extensions["loyalty.ratelimit"] = counters


def reset(app: Flask) -> None:
    """Forget every counter (tests)."""
    counters = app.extensions["loyalty.ratelimit"]
    if isinstance(counters, ProcessWindows):
        counters.clear()
    else:
        counters.strategy.storage.reset()


@functools.cache
def _parsed(limit: str) -> list[RateLimitItem]:
    return sorted(parse_many(limit))


def limit(scope: str, key_func: Callable[[], str], *, config_key: str = "", limits: str = ""):
    """Decorate a view: at most `limits` (e.g. "30/minute"), or the limits in config
    `config_key`, per `key_func()`; shared by every view with the same `scope`."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            app = current_app._get_current_object()
            config = app.config
            if not config["RATELIMIT_ENABLED"]:
                return view(*args, **kwargs)
            counters, key = app.extensions["loyalty.ratelimit"], key_func()
            first = None
            for item in _parsed(config[config_key] if config_key else limits):
                allowed, remaining, reset_time = counters.hit(item, scope, key)
                reset_at = int(reset_time + 1)
                if not allowed:
                    raise RateLimited(str(item), retry_after=max(1, int(reset_at - time.time())))
                first = first or (item, remaining, reset_at)
            response = app.make_response(view(*args, **kwargs))
            item, remaining, reset_at = first
            headers = response.headers  # the view's own answer: none of these is there yet
            headers.add("X-RateLimit-Limit", str(item.amount))
            headers.add("X-RateLimit-Remaining", str(remaining))
            headers.add("X-RateLimit-Reset", str(reset_at))
            headers.add("Retry-After", str(int(reset_at - time.time())))
            return response

        return wrapper

    return decorator
