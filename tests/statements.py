"""Count the SQL statements a block — or one order handler — sends: for tests that keep a hot
path's statements few."""

import re
from contextlib import contextmanager

from sqlalchemy import event

from loyalty.extensions import db
from loyalty.hooks import hooks


@contextmanager
def recorded():
    """Yields the list of SQL texts (whitespace folded) the app's engine sends in the block."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _executemany):
        sent.append(" ".join(statement.split()))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def touching(sent: list[str], table: str) -> list[str]:
    """The statements naming `table` (as a whole word)."""
    word = re.compile(rf"\b{re.escape(table)}\b")
    return [s for s in sent if word.search(s)]


class _Probe:
    """Stands in the handler list for one handler: delegates, noting what each call sent."""

    def __init__(self, handler, sent: list, calls: list):
        self._handler, self._sent, self._calls = handler, sent, calls

    def __getattr__(self, name):
        method = getattr(self._handler, name)  # a missing one stays missing: dispatch skips it

        def call(ctx):
            start = len(self._sent)
            try:
                return method(ctx)
            finally:
                self._calls.append(self._sent[start:])

        return call


@contextmanager
def of_handler(handler_type: type):
    """Yields a list that gets, for each call of the registered order handler of
    `handler_type` in the block, the list of statements that call sent."""
    calls: list[list[str]] = []
    handlers = hooks().order_handlers
    index = next(i for i, h in enumerate(handlers) if isinstance(h, handler_type))
    original = handlers[index]
    with recorded() as sent:
        handlers[index] = _Probe(original, sent, calls)
        try:
            yield calls
        finally:
            handlers[index] = original
