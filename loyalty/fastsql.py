"""One hot SELECT, run on the driver's cursor on PostgreSQL: the member view's.

SQLAlchemy's execution path costs about as much CPU as the statement's whole round trip:
per execution it builds the execution context, fires its events and, above all, turns the
driver's `cursor.description` into result metadata — psycopg makes a `Column` object per
column per execution, and the member view has nineteen. `FastSelect` compiles its statement
once per dialect and, on PostgreSQL, sends it on the connection's psycopg cursor (prepared)
and applies the columns' own result processors, so what comes out is what SQLAlchemy gives:
the same values, with the same names. Elsewhere (SQLite) it is plain `connection.execute`.

The statement is still SQLAlchemy's (Core, built once), bind values still pass the types'
bind processors, `before_cursor_execute` listeners still hear it (the tests and `bench` count
statements that way) and the statement runs in the connection's transaction, if it has one.
"""

from collections import namedtuple

from sqlalchemy import Select
from sqlalchemy.engine import Connection


class FastSelect:
    def __init__(self, statement: Select):
        self.statement = statement
        self._compiled: dict[str, list] = {}  # dialect name -> what running it needs

    def _prepare(self, dialect) -> list:
        compiled = self.statement.compile(dialect=dialect)
        defaults = dict(compiled.construct_params(_check=False))  # the literals' values
        binds = {
            bind.key: processor
            for bind in compiled.binds.values()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        row_type = namedtuple("Row", list(self.statement.selected_columns.keys()))
        return [str(compiled), defaults, binds, row_type, None]  # result processors: later

    def _processors(self, dialect, description) -> list:
        """The columns' result processors for the types the driver reports (as SQLAlchemy
        picks them: a NUMERIC's depends on the type code)."""
        columns = self.statement.selected_columns
        return [
            column.type.dialect_impl(dialect).result_processor(dialect, described.type_code)
            for column, described in zip(columns, description, strict=True)
        ]

    def one_or_none(self, connection: Connection, params: dict):
        """The one row the statement finds with `params` (a named tuple), or None."""
        dialect = connection.dialect
        if dialect.name != "postgresql":
            return connection.execute(self.statement, params).one_or_none()
        prepared = self._compiled.get(dialect.name)
        if prepared is None:
            prepared = self._compiled[dialect.name] = self._prepare(dialect)
        sql, defaults, binds, row_type, processors = prepared
        values = {**defaults, **params}
        for name, processor in binds.items():
            values[name] = processor(values[name])
        cursor = connection.connection.driver_connection.cursor()
        try:
            for listener in connection.dispatch.before_cursor_execute:
                listener(connection, cursor, sql, values, None, False)
            cursor.execute(sql, values, prepare=True)
            rows = cursor.fetchall()
            if processors is None:
                processors = prepared[4] = self._processors(dialect, cursor.description)
        finally:
            cursor.close()
        if not rows:
            return None
        if len(rows) > 1:
            raise RuntimeError("FastSelect.one_or_none: more than one row")
        return row_type._make(
            value if processor is None or value is None else processor(value)
            for processor, value in zip(processors, rows[0], strict=True)
        )
