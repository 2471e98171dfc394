"""Where reports read: a PostgreSQL streaming replica when `REPORTS_DATABASE_URL` is set, the
primary otherwise.

Reports (`/v1/reports/*`, the console's dashboard and report pages, the segments CSV) ask
`reports_session()` for the session to read from and the `Source` that says which database
answered and how far behind the primary it was. Everything else — writes, the console's own
pages, a member's personal-data export, segment award previews — stays on the primary
(`db.session`): a replica that lags could leave out what was just written.

On the replica, a request reads in one read-only REPEATABLE READ transaction (one snapshot for
every statement of a report) on an engine of its own (same pool settings as the primary's,
`application_name=loyalty-reports`, a short connect timeout). Its session carries
`info["read_only"] = True` (`read_only(session)`): code that would write on the way (a refresh
of pending report aggregates) must skip it there.

The replica's lag is measured on it at the start of each request: 0 when it has replayed all
the WAL it received (`pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()`), else
`now() - pg_last_xact_replay_timestamp()`. When the replica is down (or further behind than
`REPORTS_REPLICA_MAX_LAG_SECONDS`), `REPORTS_REPLICA_FALLBACK` decides: `primary` answers from
the primary and says so in the Source, `error` answers 503. A failed connection is remembered
for `REPORTS_REPLICA_RETRY_SECONDS`, during which reports go straight to the fallback.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass

from flask import Flask, current_app, g
from prometheus_client import Counter, Gauge
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, scoped_session

from loyalty.errors import ServiceUnavailable
from loyalty.extensions import lazy_session

log = logging.getLogger(__name__)

PRIMARY, REPLICA = "primary", "replica"
UNAVAILABLE, LAGGING = "replica-unavailable", "replica-lagging"
APPLICATION_NAME = "loyalty-reports"
_KEY = "loyalty.reports_replica"
_G = "reports_source"

REPLICA_LAG = Gauge(
    "loyalty_reports_replica_lag_seconds",
    "How far behind the primary the reports replica was at its last report (seconds)",
    multiprocess_mode="livemostrecent",
)
FALLBACKS = Counter(
    "loyalty_reports_replica_fallbacks",
    "Reports not answered from the replica: unavailable or lagging (then primary or 503)",
    ["reason"],
)

# 0 when every WAL record received is replayed (caught up, however long ago the primary last
# committed); else the age of the last transaction replayed. Not in recovery (the URL names a
# primary, or a promoted replica): 0.
LAG_SQL = text(
    """
    SELECT CASE
      WHEN NOT pg_is_in_recovery() THEN 0.0
      WHEN pg_last_wal_receive_lsn() IS NOT NULL
           AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
      ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8
    END
    """
)


@dataclass(frozen=True)
class Source:
    """Which database a report was read from, how far behind it was, and why the primary
    answered when a replica is configured (`fallback`: `replica-unavailable`,
    `replica-lagging`; None otherwise)."""

    database: str
    lag_seconds: float | None = None
    fallback: str | None = None
    replica_configured: bool = False

    def as_dict(self) -> dict:
        return {
            "database": self.database,
            "lag_seconds": self.lag_seconds,
            "fallback": self.fallback,
        }

    def headers(self) -> dict[str, str]:
        """The CSV downloads' headers: `X-Data-Source`, and `Replica-Lag-Seconds` from a
        replica."""
        headers = {"X-Data-Source": self.database}
        if self.lag_seconds is not None:
            headers["Replica-Lag-Seconds"] = f"{self.lag_seconds:.3f}"
        return headers


class Replica:
    """The replica's engine (made at the first report) and when it last failed."""

    def __init__(self, url: str, engine_options: dict, connect_timeout: int) -> None:
        self.url = url
        self.engine_options = engine_options
        self.connect_timeout = connect_timeout
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self.down_until = 0.0  # time.monotonic() before which it is not tried

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    options = {k: v for k, v in self.engine_options.items() if k != "connect_args"}
                    connect_args = {
                        **self.engine_options.get("connect_args", {}),
                        "connect_timeout": self.connect_timeout,
                        "application_name": APPLICATION_NAME,
                    }
                    self._engine = create_engine(
                        self.url, connect_args=connect_args, **options
                    ).execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def open(self) -> tuple[Session, float]:
        """A read-only session on the replica and its lag; raises DBAPIError / PoolTimeout
        when the replica can't answer."""
        session = Session(bind=self.engine, info={"read_only": True})
        try:
            lag = float(session.scalar(LAG_SQL) or 0.0)
        except BaseException:
            session.close()
            raise
        return session, max(lag, 0.0)


def init_app(app: Flask) -> None:
    url = app.config.get("REPORTS_DATABASE_URL")
    if url:
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        app.extensions[_KEY] = Replica(
            url, options, int(app.config.get("REPORTS_REPLICA_CONNECT_TIMEOUT_SECONDS", 2))
        )
    app.teardown_request(_close)


def replica() -> Replica | None:
    """This app's replica, when REPORTS_DATABASE_URL is set."""
    return current_app.extensions.get(_KEY)


def read_only(session: Session | scoped_session) -> bool:
    """Is `session` a reports replica's (nothing may be written through it)?"""
    return bool(session.info.get("read_only", False))


def reports_session() -> tuple[Session, Source]:
    """The session this request's reports read from, and where it reads; the same for every
    report of one request."""
    found = g.get(_G)
    if found is not None:
        return found
    chosen = _choose()
    g.setdefault(_G, chosen)
    return chosen


def _choose() -> tuple[Session, Source]:
    target = replica()
    if target is None:
        return lazy_session(), Source(PRIMARY)
    if time.monotonic() < target.down_until:
        return _fallback(UNAVAILABLE, "The reports replica is unavailable.")
    try:
        session, lag = target.open()
    except (DBAPIError, PoolTimeout) as exc:
        log.warning("Reports replica unavailable: %s", type(exc).__name__)
        target.down_until = time.monotonic() + current_app.config["REPORTS_REPLICA_RETRY_SECONDS"]
        return _fallback(UNAVAILABLE, "The reports replica is unavailable.")
    REPLICA_LAG.set(lag)
    max_lag = current_app.config.get("REPORTS_REPLICA_MAX_LAG_SECONDS")
    if max_lag is not None and lag > max_lag:
        session.close()
        return _fallback(LAGGING, f"The reports replica is {lag:.0f} s behind the primary.")
    return session, Source(REPLICA, round(lag, 3), replica_configured=True)


def _fallback(reason: str, detail: str) -> tuple[Session, Source]:
    FALLBACKS.labels(reason).inc()
    config = current_app.config
    if config["REPORTS_REPLICA_FALLBACK"] == "error":
        raise ServiceUnavailable(
            f"{detail} Send the same request again later.",
            retry_after=max(1, math.ceil(config["REPORTS_REPLICA_RETRY_SECONDS"])),
            reason=reason,
        )
    return lazy_session(), Source(PRIMARY, fallback=reason, replica_configured=True)


def _close(_error: BaseException | None = None) -> None:
    """At the request's end (after a streamed download's last row): end the replica's
    read-only transaction and give its connection back."""
    found = g.pop(_G, None)
    if found is not None and read_only(found[0]):
        found[0].close()


def status() -> dict | None:
    """The replica as /readyz shows it (None when none is configured): reachable or not, and
    its lag. Never counts towards readiness: orders and the API don't need it."""
    target = replica()
    if target is None:
        return None
    unavailable = {
        "status": "unavailable",
        "fallback": current_app.config["REPORTS_REPLICA_FALLBACK"],
    }
    if time.monotonic() < target.down_until:
        return unavailable  # known to be down: no connection attempt to wait for
    try:
        session, lag = target.open()
    except (DBAPIError, PoolTimeout):
        target.down_until = time.monotonic() + current_app.config["REPORTS_REPLICA_RETRY_SECONDS"]
        return unavailable
    session.close()
    REPLICA_LAG.set(lag)
    max_lag = current_app.config.get("REPORTS_REPLICA_MAX_LAG_SECONDS")
    lagging = max_lag is not None and lag > max_lag
    return {
        "status": "lagging" if lagging else "ok",
        "lag_seconds": round(lag, 3),
        "fallback": current_app.config["REPORTS_REPLICA_FALLBACK"],
    }
