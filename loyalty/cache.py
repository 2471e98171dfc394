"""Per-worker caches of rows that change rarely and are read on every request.

API keys, the program's settings, earning rules and webhook subscriptions are read by every
order event and most requests; asking the database for them each time was a third of the
statements a request made. A worker keeps what it read (for at most `CONFIG_CACHE_SECONDS`; 0
turns caching off), and a change is in force in every worker as soon as the request that made
it has answered:

- `config_version` holds a stamp that triggers on the cached tables change, to a value never
  used before, in the transaction of any change (migration 0014);
- a worker's cache is filled under one stamp; a request uses it only after reading the current
  stamp in a statement that began after the request did, and runs again if they differ;
- the hot paths (order events, the member view, `/v1/me`) read the stamp as one more column
  of a statement they make anyway (`version_column()`, then `seen()`): no round trip. Their
  views are `require(..., config_checked_by_view=True)`: what they take from the cache before
  that statement is used on trust, and `require` runs the request again (`StaleConfig`) if the
  stamp turns out to have moved — their work is one transaction, rolled back first;
- anywhere else the stamp is read (one statement) before the first cached value is used, or,
  in those views, before the request answers if no statement of theirs read it.

A change committed through this worker also clears the matching cache when it commits; nothing
is cached from a transaction that has itself written cached rows (it could roll back), and a
rollback of such a transaction clears the cache too.

Which cache a row belongs to is declared once, on its model: `cache.watch(Model, "name")`;
the table also needs the trigger (see the migration; tests/test_config_version.py checks it).
Writes through the ORM (flushes) are noticed automatically; a bulk UPDATE/DELETE of a watched
table must call `cache.touched(session, "name")`.

On SQLite (development: one serving process) the same triggers run, so a change made by a CLI
command, another process, is in force in `flask run` at once too.

Caches hang off the Flask app (several apps in one process never share one) and hold plain
values the loader returns — never ORM objects, which belong to one session.
"""

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, has_request_context
from sqlalchemy import BigInteger, Integer, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from loyalty.extensions import Base, read_connection, session_started

T = TypeVar("T")

_MISSING = object()
_WATCHED: dict[type, str] = {}  # model class -> cache name
_INFO_KEY = "loyalty.cache.touched"
_CHECK_KEY = "config_check"  # in `g` (a request) or the session's `info` (anything else)


class ConfigVersion(Base):
    """One row: the stamp of the cached settings (changed by triggers, never by the app)."""

    __tablename__ = "config_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


_VERSION = select(ConfigVersion.version).where(ConfigVersion.id == 1)


def version_column():
    """The stamp as a column (`config_version`) to add to a statement the request makes
    anyway; hand what it reads to `seen()`."""
    return _VERSION.scalar_subquery().label("config_version")


class StaleConfig(Exception):
    """Cached settings this request used on trust are older than the database's: the request
    is run again (by `loyalty.auth.require`)."""


class _Check:
    """What a request (or a transaction, outside requests) knows of the stamp: the one it
    used the cache under, and whether a statement of its own has read it."""

    __slots__ = ("confirmed", "optimistic", "version")

    def __init__(self, optimistic: bool = False):
        self.version: int | None = None
        self.confirmed = False
        self.optimistic = optimistic


class Caches:
    """One app's caches: name -> {key: (expires_at, value)}, all filled under `version`."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.version: int | None = None
        self._lock = threading.Lock()
        self._data: dict[str, dict[Any, tuple[float, Any]]] = {}

    def get(self, name: str, key: Any, version: int | None) -> Any:
        if version != self.version:
            return _MISSING
        entry = self._data.get(name, {}).get(key)
        if entry is None or entry[0] < time.monotonic():
            return _MISSING
        return entry[1]

    def put(self, name: str, key: Any, value: Any, version: int | None) -> None:
        with self._lock:
            if version == self.version:  # else another thread has seen another stamp since
                self._data.setdefault(name, {})[key] = (time.monotonic() + self.seconds, value)

    def sync(self, version: int) -> None:
        """The database's stamp is `version`: forget everything filled under another."""
        if version != self.version:
            with self._lock:
                if version != self.version:
                    self._data = {}
                    self.version = version

    def clear(self, *names: str) -> None:
        with self._lock:
            if not names:
                self._data, self.version = {}, None
            for name in names:
                self._data.pop(name, None)


def init_app(app) -> None:
    app.extensions["loyalty.cache"] = Caches(float(app.config.get("CONFIG_CACHE_SECONDS", 5)))


def caches() -> Caches:
    return current_app.extensions["loyalty.cache"]


def watch(model: type, name: str) -> None:
    """Declare that rows of `model` are cached under `name`."""
    _WATCHED[model] = name


def cached(session: Session, name: str, key: Any, load: Callable[[], T]) -> T:
    """The cached value of (`name`, `key`), or `load()`'s answer — cached unless it is None
    (nothing found: an unknown key must not take up room) or this transaction has itself
    written rows of cache `name`. Never older than the stamp this request read, or, used on
    trust (`optimistic`), checked against it before the request answers."""
    store = caches()
    if store.seconds <= 0:
        return load()
    check = _check(session)
    if not check.confirmed:
        version = check.version
        if version is None and check.optimistic:
            version = store.version  # used on trust: the request's statements will tell
        value = store.get(name, key, version)
        if value is not _MISSING:
            check.version = version
            return value
        _read_version(session, check)  # may raise StaleConfig: what was used is outdated
    value = store.get(name, key, check.version)
    if value is not _MISSING:
        return value
    value = load()  # read after the stamp: at least as new as it
    if value is not None and name not in session.info.get(_INFO_KEY, ()):
        store.put(name, key, value, check.version)
    return value


def seen(session: Session, version: int) -> None:
    """A statement of this request (begun after it) read the stamp `version`
    (`version_column()`): StaleConfig if the request used cached settings of another."""
    store = caches()
    if store.seconds <= 0:
        return
    store.sync(version)
    check = _check(session)
    stale = check.version is not None and not check.confirmed and check.version != version
    check.version, check.confirmed = version, True
    if stale:
        raise StaleConfig


def optimistic() -> None:
    """This request's cached settings may be used on trust (see the module's docstring)."""
    names = _request_g()
    check = names.get(_CHECK_KEY)
    if check is None:
        names[_CHECK_KEY] = _Check(optimistic=True)
    else:
        check.optimistic = True


def confirm(session: Session) -> None:
    """Before the request answers: if it used cached settings on trust and no statement of
    its own read the stamp, read it now (one statement); StaleConfig if it moved."""
    check = _request_g().get(_CHECK_KEY)
    if check is not None and check.version is not None and not check.confirmed:
        _read_version(session, check)


def _request_names() -> dict | None:
    """The names in this request's `g` (a plain dict: one proxy lookup), or None outside one."""
    if not has_request_context():
        return None
    return vars(g._get_current_object())


def _request_g() -> dict:
    """`_request_names()` where there is a request: the views that call it run in one."""
    return vars(g._get_current_object())


def _check(session: Session) -> _Check:
    names = _request_names()
    if names is None:  # outside requests (CLI, jobs): per transaction, read again by the next
        names = session.info
    check = names.get(_CHECK_KEY)
    if check is None:
        check = names[_CHECK_KEY] = _Check()
    return check


def _read_version(session: Session, check: _Check) -> None:
    if session_started(session) or not has_request_context():
        version = session.execute(_VERSION).scalar_one()
    else:
        with read_connection(session) as connection:
            version = connection.execute(_VERSION).scalar_one()
    seen(session, version)


def touched(session: Session, *names: str) -> None:
    """This transaction wrote rows of caches `names`: stop caching them, clear them at its end."""
    session.info.setdefault(_INFO_KEY, set()).update(names)
    if current_app:
        caches().clear(*names)


def clear_all() -> None:
    if current_app:
        caches().clear()


@event.listens_for(Session, "after_flush")
def _noticed_writes(session: Session, _flush_context) -> None:
    names = {
        _WATCHED[type(obj)]
        for obj in (*session.new, *session.dirty, *session.deleted)
        if type(obj) in _WATCHED
    }
    if names:
        touched(session, *names)


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction) -> None:
    if transaction.parent is not None:  # a savepoint: the outer transaction goes on
        return
    session.info.pop(_CHECK_KEY, None)
    names = session.info.pop(_INFO_KEY, None)
    if names and current_app:
        caches().clear(*names)
