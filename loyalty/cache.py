"""Per-worker caches of rows that change rarely and are read on every request.

API keys, the program's settings, tiers and earning rules are read by every order event and
most requests; asking the database for them each time was a third of the statements a request
made. A worker keeps what it read for `CONFIG_CACHE_SECONDS` (0 turns caching off):

- a change committed through this worker clears the matching cache when it commits, so a
  worker always sees its own changes at once;
- other workers see it within `CONFIG_CACHE_SECONDS` (revoking an API key included);
- nothing is cached from a transaction that has itself written cached rows (it could roll
  back), and a rollback of such a transaction clears the cache too.

Which cache a row belongs to is declared once, on its model: `cache.watch(Model, "name")`.
Writes through the ORM (flushes) are noticed automatically; a bulk UPDATE/DELETE of a watched
table must call `cache.touched(session, "name")`.

Caches hang off the Flask app (several apps in one process never share one) and hold plain
values the loader returns — never ORM objects, which belong to one session.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

_MISSING = object()
_WATCHED: dict[type, str] = {}  # model class -> cache name
_INFO_KEY = "loyalty.cache.touched"


class Caches:
    """One app's caches: name -> {key: (expires_at, value)}."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._lock = threading.Lock()
        self._data: dict[str, dict[Any, tuple[float, Any]]] = {}

    def get(self, name: str, key: Any) -> Any:
        entry = self._data.get(name, {}).get(key)
        if entry is None or entry[0] < time.monotonic():
            return _MISSING
        return entry[1]

    def put(self, name: str, key: Any, value: Any) -> None:
        with self._lock:
            self._data.setdefault(name, {})[key] = (time.monotonic() + self.seconds, value)

    def clear(self, *names: str) -> None:
        with self._lock:
            for name in names or list(self._data):
                self._data.pop(name, None)


def init_app(app) -> None:
    app.extensions["loyalty.cache"] = Caches(float(app.config.get("CONFIG_CACHE_SECONDS", 5)))


def caches() -> Caches:
    return current_app.extensions["loyalty.cache"]


def watch(model: type, name: str) -> None:
    """Declare that rows of `model` are cached under `name`."""
    _WATCHED[model] = name


def cached(session: Session, name: str, key: Any, load: Callable[[], Any]) -> Any:
    """The cached value of (`name`, `key`), or `load()`'s answer — cached unless it is None
    (nothing found: an unknown key must not take up room) or this transaction has itself
    written rows of cache `name`."""
    store = caches()
    if store.seconds <= 0:
        return load()
    value = store.get(name, key)
    if value is not _MISSING:
        return value
    value = load()
    if value is not None and name not in session.info.get(_INFO_KEY, ()):
        store.put(name, key, value)
    return value


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
    names = session.info.pop(_INFO_KEY, None)
    if names and current_app:
        caches().clear(*names)
