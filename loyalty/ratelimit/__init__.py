"""Rate limits and lockouts: one limiter, over `limits`, on one storage (as pypi/warehouse's).

A `RateLimiter` holds limits (`limits` syntax: "30/minute;500/hour") under a scope and counts
them per identifiers in moving windows: `hit()` counts one and says whether every limit still
had room, `test()` asks without counting, `resets_in()` says when a full one has room again.
Per-route limits are `hit()` on every request (the `limit` decorator); a lockout is `test()`
before and `hit()` on each failure (see rewards/giftcards/throttle.py).

Storage (`RATELIMIT_STORAGE_URI`, by default `REDIS_URL`): with Redis every counter lives there,
shared by every process and machine. Without it (`memory://`), a limit declared `shared` (one
the API promises across processes, such as the gift card lockout) is counted in the database,
and the others (the widget's per-member reads, on the hot path) in this process's memory.

When Redis fails, nothing answers 500 for it: each limit is counted where it would be without
Redis until `RATELIMIT_STORAGE_RETRY_SECONDS` have passed, the failure is logged, and
`loyalty_rate_limit_storage_errors_total` in /metrics counts it. A short socket timeout
(`RATELIMIT_STORAGE_TIMEOUT_SECONDS`) keeps an unreachable Redis from holding requests up.
`RATELIMIT_ENABLED=False` turns every limit off.
"""

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from loyalty.config import rate_limit_settings
from loyalty.errors import RateLimited
from loyalty.ops.routes import RATE_LIMIT_STORAGE_ERRORS
from loyalty.ratelimit import storage

log = logging.getLogger(__name__)


class Counters:
    """The app's storage, and what stands in for it while it fails (or when there is none)."""

    def __init__(
        self,
        config: Mapping[str, Any],
        remote: Storage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.remote = MovingWindowRateLimiter(remote) if remote is not None else None
        self.process = MovingWindowRateLimiter(storage.ProcessStorage(clock))
        self.database = MovingWindowRateLimiter(storage.DatabaseStorage(clock))
        self.clock = clock
        self._remote_down_until = 0.0
        self._limiters: dict[tuple, RateLimiter] = {}
        self._lock = threading.Lock()

    def limiter(self, limits: str, scope: str, *, shared: bool = False) -> "RateLimiter":
        key = (limits, scope, shared)
        found = self._limiters.get(key)
        if found is None:
            with self._lock:
                found = self._limiters.setdefault(key, RateLimiter(self, limits, scope, shared))
        return found

    def run(self, shared: bool, operation):
        """`operation(strategy)` on the storage in use for a limit that is (or not) `shared`."""
        stand_in = self.database if shared else self.process
        remote = self.remote
        if remote is None or time.monotonic() < self._remote_down_until:
            return operation(stand_in)
        try:
            return operation(remote)
        except StorageError as exc:
            retry = self.config["RATELIMIT_STORAGE_RETRY_SECONDS"]
            self._remote_down_until = time.monotonic() + retry
            RATE_LIMIT_STORAGE_ERRORS.inc()
            log.warning(
                "rate limit storage failed (%r); counting without it for %s s", exc.storage_error,
                retry,
            )  # fmt: skip
            return operation(stand_in)

    def reset(self) -> None:
        """Forget the counters kept outside the database (tests roll the database back)."""
        for strategy in (self.remote, self.process):
            if strategy is not None:
                strategy.storage.reset()


class Window(NamedTuple):
    allowed: bool
    item: RateLimitItem  # the limit that refused, or else the first (shortest) one
    remaining: int
    reset_at: float


class RateLimiter:
    """`limits` under `scope`, counted per identifiers; `shared` ones never in one process."""

    def __init__(self, counters: Counters, limits: str, scope: str, shared: bool):
        self.counters = counters
        self.items = _parsed(limits)
        # What `item.key_for(scope, *identifiers)` makes, around the identifiers.
        self._key_parts = [
            (
                item,
                f"{item.namespace}/",
                f"/{item.amount}/{item.multiples}/{item.GRANULARITY.name}",
                item.get_expiry(),
            )
            for item in self.items
        ]
        self.scope = scope
        self.shared = shared

    def _enabled(self) -> bool:
        return self.counters.config["RATELIMIT_ENABLED"]

    def test(self, *identifiers: str) -> bool:
        """Would one more hit be within every limit? (Counts nothing.)"""
        if not self._enabled():
            return True
        ids = (self.scope, *identifiers)
        return self.counters.run(
            self.shared, lambda s: all([s.test(item, *ids) for item in self.items])
        )

    def hit(self, *identifiers: str) -> bool:
        """Count one hit on every limit with room; True when none was full."""
        if not self._enabled():
            return True
        ids = (self.scope, *identifiers)
        return self.counters.run(
            self.shared, lambda s: all([s.hit(item, *ids) for item in self.items])
        )

    def resets_in(self, *identifiers: str) -> int:
        """Whole seconds until every full limit has room again (0 when none is full)."""
        ids = (self.scope, *identifiers)

        def wait(strategy) -> float:
            now, longest = self.counters.clock(), 0.0
            for item in self.items:
                stats = strategy.get_window_stats(item, *ids)
                if stats.remaining <= 0:
                    longest = max(longest, stats.reset_time - now)
            return longest

        return math.ceil(self.counters.run(self.shared, wait))

    def acquire(self, *identifiers: str) -> Window:
        """`hit`, and how the first limit stands afterwards (for X-RateLimit-* headers), or
        which limit refused and when it has room again. On the widget's hot path: it asks the
        storage directly, with limits' keys built here, rather than through the strategy."""
        joined = "/".join((self.scope, *identifiers))

        def acquire(strategy) -> Window:
            first = None
            for item, head, tail, expiry in self._key_parts:
                allowed, start, count = storage.acquire_window(
                    strategy.storage, head + joined + tail, item.amount, expiry
                )
                if not allowed:
                    return Window(False, item, 0, start + expiry)
                if first is None:
                    first = Window(True, item, max(0, item.amount - count), start + expiry)
            if first is None:  # never: a limit has at least one rate
                raise ValueError(f"no rate in the {self.scope!r} limit")
            return first

        return self.counters.run(self.shared, acquire)

    def clear(self, *identifiers: str) -> None:
        ids = (self.scope, *identifiers)
        self.counters.run(self.shared, lambda s: [s.clear(item, *ids) for item in self.items])


@functools.cache
def _parsed(limits: str) -> list[RateLimitItem]:
    return sorted(parse_many(limits))


def init_app(app: Flask) -> None:
    config = app.config
    for name, default in rate_limit_settings({"REDIS_URL": config.get("REDIS_URL") or ""}).items():
        config.setdefault(name, default)  # an app not made by create_app (tests)
    uri = config["RATELIMIT_STORAGE_URI"]
    remote = None
    if not uri.startswith("memory://"):
        options = {}
        if uri.startswith(("redis", "valkey")):  # rediss and redis+unix too
            timeout = config["RATELIMIT_STORAGE_TIMEOUT_SECONDS"]
            options = {
                "key_prefix": config["RATELIMIT_KEY_PREFIX"],
                "socket_connect_timeout": timeout,
                "socket_timeout": timeout,
            }
        found = storage_from_string(uri, wrap_exceptions=True, **options)
        if not isinstance(found, Storage):
            raise ValueError(f"{uri!r} is an asyncio storage; rate limits need a blocking one")
        remote = found
    app.extensions["loyalty.ratelimit"] = Counters(config, remote)


def limiter(limits: str, scope: str, *, shared: bool = False) -> RateLimiter:
    """The app's limiter for `limits` under `scope`."""
    return current_app.extensions["loyalty.ratelimit"].limiter(limits, scope, shared=shared)


def reset(app: Flask) -> None:
    """Forget every counter (tests)."""
    app.extensions["loyalty.ratelimit"].reset()


_COUNTED = "loyalty.ratelimit.counted"  # in the request's environ: scope -> Window


def limit(
    scope: str,
    key_func: Callable[[], str],
    *,
    config_key: str = "",
    limits: str = "",
    shared: bool = False,
):
    """Decorate a view: at most `limits` (e.g. "30/minute"), or the limits in config
    `config_key`, per `key_func()`; shared by every view with the same `scope`. `shared`: the
    count must hold across processes even without Redis (it is kept in the database then).
    A refused request is 429 `rate-limited` with `Retry-After`; an allowed one's answer
    carries `X-RateLimit-*` headers, as Flask-Limiter's would (Flask-Limiter itself resolved
    limits for every request of every route in a `before_request` hook, which cost a balance
    read more CPU than its own query)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            app = current_app._get_current_object()
            config = app.config
            if not config["RATELIMIT_ENABLED"]:
                return view(*args, **kwargs)
            counters = app.extensions["loyalty.ratelimit"]
            found = counters.limiter(
                config[config_key] if config_key else limits, scope, shared=shared
            )
            # A request run again (`loyalty.auth.require`: stale settings, a lost connection)
            # is still one request: its first run's count stands.
            counted = request.environ.setdefault(_COUNTED, {})
            window = counted.get(scope)
            if window is None:
                window = counted[scope] = found.acquire(key_func())
            reset_at = int(window.reset_at + 1)
            if not window.allowed:
                retry_after = max(1, int(reset_at - counters.clock()))
                raise RateLimited(str(window.item), retry_after=retry_after)
            response = app.make_response(view(*args, **kwargs))
            headers = response.headers  # the view's own answer: none of these is there yet
            headers.add("X-RateLimit-Limit", str(window.item.amount))
            headers.add("X-RateLimit-Remaining", str(window.remaining))
            headers.add("X-RateLimit-Reset", str(reset_at))
            headers.add("Retry-After", str(int(reset_at - counters.clock())))
            return response

        return wrapper

    return decorator
