"""The hot path's statements, run on the driver's cursor on PostgreSQL.

SQLAlchemy's execution path costs about as much CPU as a statement's whole round trip: per
execution it builds the execution context, fires its events and, above all, turns the driver's
`cursor.description` into result metadata — psycopg makes a `Column` object per column per
execution, and the member view has nineteen. `FastStatement` compiles its statement once per
dialect (and, for an INSERT or UPDATE, per set of parameter names, as SQLAlchemy does) and, on
PostgreSQL, sends it on the connection's psycopg cursor (prepared), applying the columns' own
bind and result processors: what comes out is what SQLAlchemy gives, the same values under the
same names. Elsewhere (SQLite), or with the `FASTSQL` setting off (`FASTSQL=0` in the
environment), it is plain `connection.execute`: the same statement, the same rows.

The statements stay SQLAlchemy Core, built once; `before_cursor_execute` and
`after_cursor_execute` listeners still hear each one (the tests and `bench` count statements
that way), and each runs in the connection's transaction, on one psycopg cursor kept per
connection. A driver error comes out wrapped as SQLAlchemy wraps it (`IntegrityError`,
`OperationalError`... with `.orig`), so callers catch the same exceptions either way. Like
`Connection.execute` of a Core statement, nothing is flushed first.

Where this (and `built`, below) reaches past SQLAlchemy's public API — compiled state, the
listeners' dispatch, the private `Connection._handle_dbapi_exception` — is listed in
`docs/performance.md`, with the version it was checked against and what it saves.
"""

import os
from collections import namedtuple
from functools import cache
from typing import Any

import orjson
from flask import current_app, has_app_context
from sqlalchemy import Table, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql.elements import TextClause

from loyalty.config import fastsql_setting

# An engine's dialect (one per engine) -> does it take the fast path? Decided at its first
# statement: a plain dict lookup per statement after that.
_ON: dict[Dialect, bool] = {}


def on(connection: Connection) -> bool:
    """Do `FastStatement`s run on this connection's psycopg cursor? On PostgreSQL, unless the
    app's `FASTSQL` setting (or, outside an app, the environment's) is off."""
    dialect = connection.dialect
    found = _ON.get(dialect)
    if found is None:
        wanted = current_app.config["FASTSQL"] if has_app_context() else fastsql_setting(os.environ)
        found = _ON[dialect] = dialect.name == "postgresql" and bool(wanted)
    return found


def _converted(row: tuple, processors: list, row_type: Any) -> Any:
    """A driver row as SQLAlchemy returns it: each column with a result processor converted
    (None stays None), as a named tuple of `row_type`."""
    columns = list(row)
    for index, processor in processors:
        if columns[index] is not None:
            columns[index] = processor(columns[index])
    return row_type._make(columns)


class FastStatement:
    def __init__(self, statement):
        self.statement = statement
        # (dialect name, parameter names or None) -> what running it needs
        self._compiled: dict[tuple, list] = {}

    def _prepare(self, dialect, keys) -> list:
        compiled = self.statement.compile(
            dialect=dialect, column_keys=list(keys) if keys is not None else None
        )
        prefetch = [*compiled.insert_prefetch, *compiled.update_prefetch]
        if prefetch:
            # SQLAlchemy computes these Python-side defaults per execution; this does not.
            missing = ", ".join(column.key for column in prefetch)
            raise ValueError(f"FastStatement: give a value for {missing} (Python-side defaults)")
        defaults = dict(compiled.construct_params(_check=False))  # the literals' values
        binds = {
            bind.key: processor
            for bind in compiled.binds.values()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        names = tuple(self.statement.exported_columns.keys())
        row_type = _row_type(names) if names else None  # None: no rows come back
        return [str(compiled), defaults, binds, row_type, None]  # result processors: later

    def _processors(self, dialect, description) -> list:
        """The columns' result processors for the types the driver reports (as SQLAlchemy
        picks them: a NUMERIC's depends on the type code)."""
        columns = self.statement.exported_columns
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, described.type_code)
            for column, described in zip(columns, description, strict=True)
        ]
        # (index, processor) of the columns that have one: the rest pass through as read.
        return [(index, found) for index, found in enumerate(processors) if found is not None]

    def _rows(self, connection: Connection, params: dict) -> list:
        dialect = connection.dialect
        # An INSERT or UPDATE compiles to the parameters it is given (SET/VALUES columns).
        keys = None if self.statement.is_select else frozenset(params)
        prepared = self._compiled.get((dialect.name, keys))
        if prepared is None:
            prepared = self._compiled[dialect.name, keys] = self._prepare(dialect, keys)
        sql, defaults, binds, row_type, processors = prepared
        values = {**defaults, **params}
        for name, processor in binds.items():
            if name in values:
                values[name] = processor(values[name])
        cursor = _cursor(connection)
        for listener in connection.dispatch.before_cursor_execute:
            listener(connection, cursor, sql, values, None, False)
        try:
            cursor.execute(sql, values, prepare=True)
            rows = cursor.fetchall() if row_type is not None else []
        except BaseException as exc:
            # As SQLAlchemy's own execution does: the driver's error wrapped (IntegrityError,
            # OperationalError... with `.orig`, which callers such as `on_deadlock` read), a
            # lost connection invalidated, `handle_error` listeners told. It always raises.
            connection._handle_dbapi_exception(exc, sql, values, cursor, None)
        for listener in connection.dispatch.after_cursor_execute:
            listener(connection, cursor, sql, values, None, False)
        if row_type is None:
            return []
        if processors is None:
            processors = prepared[4] = self._processors(dialect, cursor.description)
        if not processors:  # no column needs converting
            return [row_type._make(row) for row in rows]
        return [_converted(row, processors, row_type) for row in rows]

    def many(self, connection: Connection, params_list: list[dict]) -> list:
        """The statement run once per parameter set (all with the same names), sent together
        (psycopg's executemany: one pipeline, not a round trip each): the first row of each
        run, or None, in order. Elsewhere, one `connection.execute` each."""
        if not params_list:
            return []
        if not on(connection):
            return [connection.execute(self.statement, params).first() for params in params_list]
        dialect = connection.dialect
        keys = None if self.statement.is_select else frozenset(params_list[0])
        prepared = self._compiled.get((dialect.name, keys))
        if prepared is None:
            prepared = self._compiled[dialect.name, keys] = self._prepare(dialect, keys)
        sql, defaults, binds, row_type, _processors = prepared
        values_list = []
        for params in params_list:
            values = {**defaults, **params}
            for name, processor in binds.items():
                if name in values:
                    values[name] = processor(values[name])
            values_list.append(values)
        cursor = _cursor(connection)
        for listener in connection.dispatch.before_cursor_execute:
            listener(connection, cursor, sql, values_list, None, True)
        found: list = []
        try:
            cursor.executemany(sql, values_list, returning=row_type is not None)
            while row_type is not None:
                found.append(cursor.fetchone())
                if not cursor.nextset():
                    break
        except BaseException as exc:
            connection._handle_dbapi_exception(exc, sql, values_list, cursor, None)
        for listener in connection.dispatch.after_cursor_execute:
            listener(connection, cursor, sql, values_list, None, True)
        if row_type is None:
            return [None] * len(params_list)
        processors = prepared[4]
        if processors is None:
            processors = prepared[4] = self._processors(dialect, cursor.description)
        return [None if row is None else _converted(row, processors, row_type) for row in found]

    def all(self, connection: Connection, params: dict) -> list:
        """Every row (named tuples with `_mapping`, like SQLAlchemy's)."""
        if not on(connection):
            return list(connection.execute(self.statement, params).all())
        return self._rows(connection, params)

    def first(self, connection: Connection, params: dict):
        """The first row (a named tuple with `_mapping`, like SQLAlchemy's), or None."""
        if not on(connection):
            return connection.execute(self.statement, params).first()
        rows = self._rows(connection, params)
        return rows[0] if rows else None

    def one_or_none(self, connection: Connection, params: dict):
        """The one row the statement finds, or None; more than one is an error."""
        if not on(connection):
            return connection.execute(self.statement, params).one_or_none()
        rows = self._rows(connection, params)
        if len(rows) > 1:
            raise RuntimeError("FastStatement.one_or_none: more than one row")
        return rows[0] if rows else None

    def scalar(self, connection: Connection, params: dict):
        """The first column of the first row, or None."""
        row = self.first(connection, params)
        return None if row is None else row[0]

    def execute(self, connection: Connection, params: dict) -> None:
        """Run it for its effect."""
        if not on(connection):
            connection.execute(self.statement, params)
        else:
            self._rows(connection, params)


def _cursor(connection: Connection):
    """The psycopg cursor these statements run on, one per database connection, kept in the
    pool's `info` of that connection (which lives as long as the connection does): a new
    cursor per statement costs its set-up and, above all, its adapters' lookups of a dumper
    per parameter type, which a kept cursor has cached."""
    pooled = connection.connection
    driver = pooled.driver_connection
    if driver is None:
        raise RuntimeError("FastStatement: the connection has no driver connection")
    cursor = pooled.info.get("fastsql_cursor")
    if cursor is None or cursor.connection is not driver or cursor.closed:
        cursor = pooled.info["fastsql_cursor"] = driver.cursor()
    return cursor


_FAST: dict = {}


def fast(statement) -> FastStatement:
    """The `FastStatement` of a statement built once (a module constant or a cached build)."""
    found = _FAST.get(statement)
    if found is None:
        found = _FAST[statement] = FastStatement(statement)
    return found


@cache
def _row_type(names: tuple[str, ...]):
    base = namedtuple("Row", names)  # type: ignore[misc]  # the names are the statement's
    # `_mapping` as on SQLAlchemy's rows, for callers that read a row either way.
    return type("Row", (base,), {"__slots__": (), "_mapping": property(base._asdict)})


def built(model, values: dict):
    """An instance of the mapped `model` holding `values`, set as a query's load sets them:
    without the ORM's attribute events, so with no history (nothing to flush). Transient —
    `sqlalchemy.orm.make_transient_to_detached` and `Session.add` make it a loaded row of the
    session. A third of the CPU of `model(**values)`, which fires an event per attribute."""
    instance = model.__mapper__.class_manager.new_instance()
    instance.__dict__.update(values)
    return instance


def set_committed_values(instance: object, values: dict) -> None:
    """`sqlalchemy.orm.attributes.set_committed_value` for several column attributes of a
    loaded instance at once: the values into its dict, then one commit of its state for all
    of them (the private `InstanceState._commit`, which `set_committed_value` calls once per
    attribute) — loaded as a query would load them, no history, nothing to flush."""
    state = instance_state(instance)
    loaded = state.dict
    loaded.update(values)
    state._commit(loaded, values)


# --- many rows as one parameter (PostgreSQL) ------------------------------------------------


def json_rows(rows: list[dict]) -> str:
    """Rows as one JSON array (times as ISO 8601 text): the parameter `rows` of a statement that
    reads them with `jsonb_populate_recordset` or `jsonb_to_recordset`. A multi-row VALUES of
    hundreds of rows costs psycopg more CPU to parse, at every execution, than the server
    spends on the rows; one statement per row, more on the server.

    Encoded by orjson: a batch's rows are about a tenth of its CPU with the standard library's
    encoder (a Python call per time), a thirteenth of that with orjson. The text differs only
    where PostgreSQL does not look: characters beyond ASCII as themselves, not escaped."""
    return orjson.dumps(rows).decode()


@cache
def insert_json_rows(
    table: Table, columns: tuple[str, ...], returning: str, unless: str | None = None
) -> TextClause:
    """PostgreSQL: INSERT INTO `table` (`columns`) the JSON rows of the parameter `rows`
    (`json_rows`), in their order, RETURNING `returning` (column names); `unless`: a unique
    column, a row whose value is taken already skipped (ON CONFLICT DO NOTHING)."""
    names = ", ".join(columns)
    selected = ", ".join(f"r.{name}" for name in columns)
    skip = f" ON CONFLICT ({unless}) DO NOTHING" if unless else ""
    return text(
        f"INSERT INTO {table.name} ({names}) SELECT {selected}"  # noqa: S608 - the model's names
        f" FROM jsonb_populate_recordset(NULL::{table.name}, CAST(:rows AS jsonb))"
        f" WITH ORDINALITY AS r ORDER BY r.ordinality{skip} RETURNING {returning}"
    )
