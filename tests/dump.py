"""The whole database as text: every row of every table the database has (not only the ones
the models know), for tests that look for a value anywhere."""

from sqlalchemy import inspect, text

from loyalty.extensions import db


def database_text() -> str:
    """Every table's rows, one line each, case-folded."""
    connection = db.session.connection()
    preparer = connection.dialect.identifier_preparer
    lines = []
    for table in inspect(connection).get_table_names():
        for row in connection.execute(text(f"SELECT * FROM {preparer.quote(table)}")):
            lines.append(f"{table}: {tuple(row)!r}")
    return "\n".join(lines).casefold()


def found_in_database(*values: str) -> list[str]:
    """The values (case-insensitive) that appear anywhere in the database."""
    dump = database_text()
    return [value for value in values if value.casefold() in dump]
