"""Extensions, created unbound and `init_app`ed by the factory."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, cast

import flask_smorest
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, Table, event
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session
from webargs.flaskparser import FlaskParser

from loyalty.errors import PROBLEM_JSON
from loyalty.schemas import ProblemSchema

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, except that each argument schema's own `unknown` decides in
    every location: webargs would drop unknown query parameters; our schemas (StrictSchema)
    refuse them, as they refuse unknown body fields."""

    ARGUMENTS_PARSER = FlaskParser(unknown=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every model maps one table (SQLAlchemy types it as any FROM clause).
    __table__: ClassVar[Table]


class ProblemApi(Api):
    """flask-smorest's Api, documenting the error responses the app really sends: the
    problem+json body of `loyalty.errors`, in its own media type (flask-smorest would
    document its own error body, as application/json)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        success = self.DEFAULT_RESPONSE_CONTENT_TYPE
        self.DEFAULT_RESPONSE_CONTENT_TYPE = PROBLEM_JSON
        try:
            super()._register_responses()
        finally:
            self.DEFAULT_RESPONSE_CONTENT_TYPE = success


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate(compare_type=True, render_as_batch=True)
api = ProblemApi()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """SQLite as an embedded server: WAL, a busy timeout, foreign keys, explicit transactions."""
    import sqlite3

    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_begin) instead of pysqlite's lazy BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    # BEGIN IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
    # instead of one failing with "database is locked" when it upgrades a read lock.
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def lazy_session() -> Session:
    """The request's session proxy (`db.session`), typed as the `Session` it stands for: it
    makes the session only when a statement needs one, so a request answered from caches makes
    none and has nothing to commit (`db.session()` would make it at once)."""
    return cast(Session, db.session)


def session_started(session: Session | scoped_session) -> bool:
    """Has this request's session begun a transaction (without making one to find out)?"""
    if isinstance(session, scoped_session):
        return session.registry.has() and session().in_transaction()
    return session.in_transaction()


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE, INSERT or DELETE run through `Session.execute` matched: its result
    is a `CursorResult`, which the session's signature does not say."""
    if not isinstance(result, CursorResult):
        raise TypeError("rowcount of a result that is not a statement's cursor")
    return result.rowcount


@contextmanager
def read_connection(session: Session | scoped_session) -> Iterator[Connection]:
    """A connection for one read-only statement of a request whose session has not begun.

    A pooled connection for that statement alone: a request that only reads never begins,
    flushes or commits a session transaction (a third of a balance read's CPU). One
    statement sees one consistent snapshot, so it needs no transaction of its own. A session
    factory bound to a connection (the tests' rolled-back transaction) reads on that one.
    """
    bind = session.session_factory.kw.get("bind") if isinstance(session, scoped_session) else None
    if bind is None and not isinstance(session, scoped_session):
        bind = session.get_bind()
    if isinstance(bind, Connection):
        yield bind
        return
    with (bind or db.engine).connect() as connection:
        if connection.dialect.name == "postgresql":
            # Autocommit: the statement is its own transaction, without the BEGIN and COMMIT
            # that psycopg would otherwise send as round trips of their own (half of a read's
            # round trips). Nothing is begun, so the pool's reset on return sends no ROLLBACK,
            # on which psycopg would drop every prepared statement of the connection
            # (DEALLOCATE ALL) and the member view would be planned again on every read.
            connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection
            return
        with connection.begin():  # SQLite: ended with COMMIT; on an error it rolls back
            yield connection
