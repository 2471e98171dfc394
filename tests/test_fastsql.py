"""`FastStatement` (the member view's statement on the driver's cursor) gives what SQLAlchemy's
own execution gives: the same names and the same values, typed the same way."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select

from loyalty.extensions import db
from loyalty.fastsql import FastStatement, fast
from loyalty.hooks import hooks
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.tiers.models import Tier
from tests.conftest import bearer
from tests.statements import recorded
from tests.tiers.helpers import at, beauty_insider, last_year, order, post_event


def test_the_view_row_equals_sqlalchemys_row(client, admin, storefront, session):
    beauty_insider(client, admin)
    body = {"id": "c_1", "email": "c_1@example.com", "name": "Ana", "birthday": "04-02"}
    assert client.post("/v1/members", json=body, headers=storefront).status_code == 201
    post_event(client, storefront, order(40_000, at(last_year(), 6)))  # a tier, an end date
    statement = members.BY_CUSTOMER_ID.statement(hooks())
    params = {"now": datetime.now(UTC), "customer_id": "c_1"}
    connection = session.connection()
    expected = connection.execute(statement.statement, params).one()
    with recorded() as sent:
        row = statement.one_or_none(connection, params)
    assert row._asdict() == expected._asdict()
    assert [type(value) for value in row] == [type(value) for value in expected]
    assert row.enrolled_at.tzinfo is UTC and row.standing_ends_at.tzinfo is UTC
    assert len(sent) == 1  # heard by before_cursor_execute listeners, as any statement
    assert statement.one_or_none(connection, {**params, "customer_id": "nobody"}) is None


def test_binds_pass_their_types_processors(session):
    """A datetime bound to a UTC column is converted as SQLAlchemy converts it (aware, UTC)."""
    statement = FastStatement(
        select(Member.id, Tier.name)
        .join(Tier, Tier.threshold == 0)
        .where(Member.enrolled_at <= bindparam("at", type_=Member.enrolled_at.type))
        .where(Member.customer_id == bindparam("customer_id"))
    )
    members.enroll(session, hooks(), "c_2", None, enrolled_at=datetime(2024, 1, 1, tzinfo=UTC))
    session.flush()
    connection = session.connection()
    found = statement.one_or_none(connection, {"at": datetime.now(UTC), "customer_id": "c_2"})
    assert found is not None and found.name
    early = {"at": datetime(2023, 1, 1, tzinfo=UTC), "customer_id": "c_2"}
    assert statement.one_or_none(connection, early) is None


def test_a_read_only_request_opens_no_session_transaction(client, storefront, app):
    """GET /v1/members/{id} reads on a connection of its own: no flush, no commit."""
    assert (
        client.post(
            "/v1/members", json={"id": "c_3", "email": "c_3@example.com"}, headers=storefront
        ).status_code
        == 201
    )
    with recorded() as sent:
        response = client.get("/v1/members/c_3", headers=storefront)
    assert response.status_code == 200
    assert [s.split(" ")[0] for s in sent] == ["SELECT"]
    assert db.session.registry.has() is False or not db.session().in_transaction()


def test_widget_me_reads_through_the_same_statement(client, storefront):
    assert (
        client.post(
            "/v1/members", json={"id": "c_4", "email": "c_4@example.com"}, headers=storefront
        ).status_code
        == 201
    )
    made = client.post("/v1/widget-tokens", json={"customer_id": "c_4"}, headers=storefront)
    with recorded() as sent:
        response = client.get("/v1/me", headers=bearer(made.get_json()["token"]))
    assert response.status_code == 200 and response.get_json()["id"] == "c_4"
    assert len(sent) == 1


def test_insert_and_update_compile_to_the_parameters_given(session):
    """An INSERT ... ON CONFLICT DO NOTHING RETURNING (the event claim) and an UPDATE whose
    SET columns are the parameters' names, as `Connection.execute` would run them."""
    from loyalty.orders import intake
    from loyalty.orders.models import ProcessedEvent

    statement = fast(intake._insert_new(session, intake._EVENTS, "event_id", "event_id"))
    row = {
        "event_id": "evt_fast",
        "type": "order.paid",
        "body_hash": "h",
        "created_at": at(2025, 1),
    }
    connection = session.connection()
    assert statement.first(connection, row) == ("evt_fast",)
    assert statement.first(connection, row) is None  # already claimed: nothing inserted
    answer = {"event_id": "evt_fast", "effects": [{"kind": "earn", "points": 3}]}
    fast(intake._STORE_RESPONSE).execute(connection, {"response": answer, "event_key": "evt_fast"})
    stored = session.get(ProcessedEvent, "evt_fast", populate_existing=True)
    assert stored.response == answer and stored.body_hash == "h"
    assert stored.created_at == at(2025, 1)


def test_reads_keep_the_connections_prepared_statements(pg_app, pg_keys):
    """A read ends with COMMIT, not the pool's ROLLBACK (on which psycopg deallocates every
    prepared statement): the member view is parsed and planned once per connection."""
    from sqlalchemy import text

    client = pg_app.test_client()
    storefront = pg_keys["storefront"]
    body = {"id": "c_prep", "email": "c_prep@example.com"}
    assert client.post("/v1/members", json=body, headers=storefront).status_code == 201
    for _ in range(3):
        assert client.get("/v1/members/c_prep", headers=storefront).status_code == 200
    # The one pooled connection the requests used:
    with pg_app.app_context(), db.engine.connect() as connection:
        prepared = connection.execute(text("SELECT statement FROM pg_prepared_statements"))
        assert any("FROM members" in s and "standing_tier" in s for s in prepared.scalars())


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_column_left_to_its_python_default_is_refused_not_nulled(session):
    """SQLAlchemy fills Python-side defaults (`default=utcnow`) per execution; FastStatement
    does not, so it refuses a statement that relies on one instead of inserting NULL."""
    from sqlalchemy import insert

    from loyalty.orders.models import ProcessedEvent

    statement = fast(insert(ProcessedEvent.__table__))
    row = {"event_id": "evt_default", "type": "order.paid", "body_hash": "h"}  # no created_at
    with pytest.raises(ValueError, match="created_at"):
        statement.execute(session.connection(), row)


def test_statements_share_one_cursor_per_connection_and_survive_an_error(pg_app, pg_keys):
    """The cursor is kept with its connection (set-up and dumper lookups once); a statement
    that fails raises SQLAlchemy's wrapped error (what `on_deadlock` reads), as SQLAlchemy's
    own execution does, and the next statement after the rollback runs on a fresh cursor."""
    from sqlalchemy.exc import DBAPIError

    statement = fast(select(Member.id).where(Member.customer_id == bindparam("customer_id")))
    failing = fast(select(Member.id).where(Member.id == bindparam("member_id")))
    client = pg_app.test_client()
    body = {"id": "c_cursor", "email": "c_cursor@example.com"}
    assert client.post("/v1/members", json=body, headers=pg_keys["storefront"]).status_code == 201
    with pg_app.app_context(), db.engine.connect() as connection:
        found = statement.scalar(connection, {"customer_id": "c_cursor"})
        kept = connection.connection.info["fastsql_cursor"]
        assert found is not None
        assert statement.scalar(connection, {"customer_id": "nobody"}) is None
        assert connection.connection.info["fastsql_cursor"] is kept
        with pytest.raises(DBAPIError) as raised:
            failing.scalar(connection, {"member_id": "not a number"})
        assert raised.value.orig.sqlstate == "22P02"  # the driver's error, as `.orig`
        connection.rollback()
        assert statement.scalar(connection, {"customer_id": "c_cursor"}) == found
        fresh = connection.connection.info["fastsql_cursor"]
        assert fresh is not kept and not fresh.closed
        assert statement.scalar(connection, {"customer_id": "c_cursor"}) == found
        assert connection.connection.info["fastsql_cursor"] is fresh


def test_a_deadlock_in_a_fast_statement_is_one_on_deadlock_retries(pg_app, pg_keys):
    """Two transactions lock two members in opposite orders through FastStatements: PostgreSQL
    fails one (40P01), and what it raises is the wrapped error `on_deadlock` retries."""
    import threading

    from sqlalchemy import update
    from sqlalchemy.exc import DBAPIError

    from loyalty.retry import retryable

    client = pg_app.test_client()
    for name in ("c_dl_1", "c_dl_2"):
        body = {"id": name, "email": f"{name}@example.com"}
        assert client.post("/v1/members", json=body, headers=pg_keys["storefront"]).status_code
    touch = fast(
        update(Member.__table__)
        .where(Member.__table__.c.customer_id == bindparam("who"))
        .values(name=bindparam("new_name"))
    )
    both_locked_one = threading.Barrier(2, timeout=10)
    raised: list[BaseException] = []

    def lock(first: str, second: str) -> None:
        with pg_app.app_context(), db.engine.connect() as connection:
            try:
                touch.execute(connection, {"who": first, "new_name": first})
                both_locked_one.wait()
                touch.execute(connection, {"who": second, "new_name": first})
                connection.commit()
            except DBAPIError as exc:
                raised.append(exc)
                connection.rollback()

    threads = [
        threading.Thread(target=lock, args=("c_dl_1", "c_dl_2")),
        threading.Thread(target=lock, args=("c_dl_2", "c_dl_1")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(raised) == 1, raised  # one victim; the other committed
    assert raised[0].orig.sqlstate == "40P01" and retryable(raised[0])


def test_a_read_runs_in_autocommit_without_begin_or_commit(pg_app, pg_keys):
    """GET /v1/members/{id} on PostgreSQL: its one SELECT is its own transaction (psycopg in
    autocommit sends no BEGIN before it and no COMMIT after it: two round trips fewer), and
    the connection goes back to the pool idle, out of autocommit, its prepared statements
    kept."""
    from sqlalchemy import event, text

    client = pg_app.test_client()
    storefront = pg_keys["storefront"]
    body = {"id": "c_auto", "email": "c_auto@example.com"}
    assert client.post("/v1/members", json=body, headers=storefront).status_code == 201
    seen = []

    def on_statement(connection, _cursor, statement, *_args):
        driver = connection.connection.driver_connection
        seen.append((statement, driver.autocommit, driver.info.transaction_status.name))

    with pg_app.app_context():
        engine = db.engine
    event.listen(engine, "after_cursor_execute", on_statement)
    try:
        assert client.get("/v1/members/c_auto", headers=storefront).status_code == 200
    finally:
        event.remove(engine, "after_cursor_execute", on_statement)
    views = [(auto, status) for sql, auto, status in seen if "standing_tier" in sql]
    assert views == [(True, "IDLE")]  # autocommit: no transaction left open after it
    with pg_app.app_context(), db.engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver.autocommit is False  # the pool gave it back as it was
        prepared = connection.execute(text("SELECT statement FROM pg_prepared_statements"))
        assert any("standing_tier" in s for s in prepared.scalars())


@pytest.mark.parametrize("setting", [True, False])
def test_the_fastsql_setting_picks_the_cursor_or_sqlalchemys_execution(pg_template, setting):
    """FASTSQL on: a FastStatement runs on the connection's kept psycopg cursor, past
    SQLAlchemy's execution path. Off (`FASTSQL=0`): the same statement through
    `Connection.execute` (its `before_execute` listeners hear it), the same row back."""
    from sqlalchemy import event, insert

    from tests.conftest import clone_pg, make_app

    app = make_app(clone_pg(pg_template, "switch"), FASTSQL=setting)
    statement = fast(
        select(Member.id, Member.enrolled_at).where(Member.customer_id == bindparam("c"))
    )
    try:
        with app.app_context(), db.engine.connect() as connection:
            connection.execute(
                insert(Member.__table__).values(customer_id="c_switch", enrolled_at=at(2025, 3))
            )
            executed = []
            event.listen(connection, "before_execute", lambda *args: executed.append(args[1]))
            row = statement.first(connection, {"c": "c_switch"})
            assert row.enrolled_at == at(2025, 3) and row.enrolled_at.tzinfo is UTC
            assert executed == ([] if setting else [statement.statement])
            assert ("fastsql_cursor" in connection.connection.info) is setting
            connection.rollback()
    finally:
        with app.app_context():
            db.engine.dispose()


def test_set_committed_values_loads_the_values_with_nothing_to_flush(session):
    """`set_committed_values` leaves a held member as a query would load the values: no
    history, nothing expired or dirty, and a flush writes nothing."""
    from sqlalchemy import inspect

    from loyalty.fastsql import set_committed_values

    member, _created = members.enroll(session, hooks(), "c_committed", "c@example.com")
    session.flush()
    session.expire(member, ["points_pending"])
    set_committed_values(member, {"points_pending": 70, "points_lifetime": 90, "name": "Cy"})
    state = inspect(member)
    assert (member.points_pending, member.points_lifetime, member.name) == (70, 90, "Cy")
    assert not state.modified and not state.expired_attributes and member not in session.dirty
    with recorded() as statements:
        session.flush()
    assert statements == []
