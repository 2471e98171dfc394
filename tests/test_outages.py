"""A transient database failure is answered 503 `service-unavailable` with Retry-After, never
500 — or, where the request's work is one transaction, it is run once more and succeeds.

Real failures: PostgreSQL backends of the app terminated (pg_terminate_backend) between
requests, before a statement or before COMMIT, and a database at a closed loopback port.
"""

import socket

import psycopg
import psycopg.errors
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from loyalty import retry
from loyalty.extensions import db
from loyalty.ledger import LedgerEntry
from loyalty.orders.models import Order
from tests import factories as f
from tests.conftest import PG_ADMIN_URL, bearer, make_app


def admin_url(app) -> str:
    database = app.config["SQLALCHEMY_DATABASE_URI"].rsplit("/", 1)[1]
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def terminate(url: str, pid: int | None = None) -> int:
    """End the app's backends (or one): what a PostgreSQL restart does to its connections."""
    with psycopg.connect(url, autocommit=True) as conn:
        where = "pid = %s" if pid else "datname = current_database() AND pid <> pg_backend_pid()"
        return conn.execute(
            f"SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE {where}",
            (pid,) if pid else (),
        ).fetchone()[0]


class KillOnce:
    """Terminates the backend of the app's connection the first time a statement whose SQL
    contains `marker` is about to be sent (or, for marker "COMMIT", before the commit)."""

    def __init__(self, app, marker: str):
        self.app, self.marker, self.url, self.killed = app, marker, admin_url(app), 0
        with app.app_context():
            self.engine = db.engine
        if marker == "COMMIT":
            event.listen(self.engine, "commit", self._commit)
        else:
            event.listen(self.engine, "before_cursor_execute", self._statement)

    def _kill(self, connection):
        if not self.killed:
            self.killed += 1
            terminate(self.url, connection.connection.driver_connection.info.backend_pid)

    def _statement(self, connection, _cursor, statement, *_args):
        if self.marker in statement:
            self._kill(connection)

    def _commit(self, connection):
        self._kill(connection)

    def remove(self):
        if self.marker == "COMMIT":
            event.remove(self.engine, "commit", self._commit)
        else:
            event.remove(self.engine, "before_cursor_execute", self._statement)


def counts(app) -> tuple[int, int]:
    with app.app_context():
        orders = db.session.scalar(select(func.count()).select_from(Order))
        entries = db.session.scalar(select(func.count()).select_from(LedgerEntry))
        db.session.remove()
    return orders, entries


def assert_unavailable(response):
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "service-unavailable"
    assert response.headers["Retry-After"] == "1"


def test_connections_cut_between_requests_cost_nothing(pg_app, pg_keys):
    client, storefront = pg_app.test_client(), pg_keys["storefront"]
    assert client.post("/v1/events", json=f.paid("c_1"), headers=storefront).status_code == 200
    assert client.get("/v1/members/c_1", headers=storefront).status_code == 200

    assert terminate(admin_url(pg_app)) >= 1

    event_ = f.paid("c_1")
    assert client.post("/v1/events", json=event_, headers=storefront).status_code == 200
    assert client.get("/v1/members/c_1", headers=storefront).status_code == 200
    assert client.post("/v1/events", json=event_, headers=storefront).get_json()["duplicate"]
    assert counts(pg_app) == (2, 2)


@pytest.mark.parametrize("marker", ["INSERT INTO processed_events", "INSERT INTO ledger_entries"])
def test_an_event_whose_connection_is_cut_mid_request_is_run_again(pg_app, pg_keys, marker):
    client, storefront = pg_app.test_client(), pg_keys["storefront"]
    client.post("/v1/events", json=f.paid("c_1"), headers=storefront)  # a warm worker
    event_ = f.paid("c_1")
    killer = KillOnce(pg_app, marker)
    try:
        response = client.post("/v1/events", json=event_, headers=storefront)
    finally:
        killer.remove()
    assert killer.killed == 1
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["duplicate"] is False
    again = client.post("/v1/events", json=event_, headers=storefront)
    assert again.get_json()["duplicate"] is True
    assert counts(pg_app) == (2, 2)


def test_a_member_read_whose_connection_is_cut_is_run_again(pg_app, pg_keys):
    client, storefront = pg_app.test_client(), pg_keys["storefront"]
    client.post("/v1/events", json=f.paid("c_1"), headers=storefront)
    killer = KillOnce(pg_app, "FROM members")
    try:
        response = client.get("/v1/members/c_1", headers=storefront)
    finally:
        killer.remove()
    assert killer.killed == 1
    assert response.status_code == 200
    assert response.get_json()["id"] == "c_1"


def test_a_connection_cut_at_commit_is_503_and_the_event_sent_again_applies_once(pg_app, pg_keys):
    """Whether a COMMIT that lost its connection committed is unknown: the sender is told to
    send the event again, and its id makes that safe."""
    client, storefront = pg_app.test_client(), pg_keys["storefront"]
    client.post("/v1/events", json=f.paid("c_1"), headers=storefront)
    event_ = f.paid("c_1")
    killer = KillOnce(pg_app, "COMMIT")
    try:
        response = client.post("/v1/events", json=event_, headers=storefront)
    finally:
        killer.remove()
    assert killer.killed == 1
    assert_unavailable(response)

    again = client.post("/v1/events", json=event_, headers=storefront)
    assert again.status_code == 200
    assert client.post("/v1/events", json=event_, headers=storefront).get_json()["duplicate"]
    assert counts(pg_app) == (2, 2)


def test_a_write_that_is_not_run_again_is_503_and_its_idempotency_key_applies_it_once(
    pg_app, pg_keys
):
    client, admin = pg_app.test_client(), pg_keys["admin"]
    client.post("/v1/events", json=f.paid("c_1"), headers=pg_keys["storefront"])
    headers = {**admin, "Idempotency-Key": "adjust-1"}
    body = {"points": 7, "reason": "goodwill"}
    killer = KillOnce(pg_app, "INSERT INTO ledger_entries")
    try:
        response = client.post("/v1/members/c_1/adjustments", json=body, headers=headers)
    finally:
        killer.remove()
    assert killer.killed == 1
    assert_unavailable(response)

    assert client.post("/v1/members/c_1/adjustments", json=body, headers=headers).status_code == 201
    replay = client.post("/v1/members/c_1/adjustments", json=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert counts(pg_app) == (1, 2)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again on leaving: nothing listens there


def test_an_unreachable_database_is_503_with_retry_after():
    app = make_app(f"postgresql+psycopg://127.0.0.1:{closed_port()}/loyalty")
    client = app.test_client()
    headers = bearer("lk_" + "x" * 43)
    assert_unavailable(client.get("/v1/members/c_1", headers=headers))
    assert_unavailable(client.post("/v1/events", json=f.paid("c_1"), headers=headers))
    keyed = {**headers, "Idempotency-Key": "k1"}  # read before the view: its own path
    assert_unavailable(client.post("/v1/members", json={"id": "c_1"}, headers=keyed))
    with app.app_context():
        db.engine.dispose()


def test_a_database_failure_after_the_view_is_503_too():
    """An after_request hook that reads the database (the widget's CORS check reads the
    program's origins) fails outside every view: Flask turns it into a 500 of its own, which
    is answered as the 503 it is."""
    app = make_app(
        f"postgresql+psycopg://127.0.0.1:{closed_port()}/loyalty",
        TESTING=False,
        PROPAGATE_EXCEPTIONS=False,
    )
    headers = {"Authorization": "Bearer not-a-token", "Origin": "https://shop.example"}
    assert_unavailable(app.test_client().get("/v1/me", headers=headers))
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (psycopg.errors.SerializationFailure("could not serialize"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), True),
        (psycopg.OperationalError("connection failed: Connection refused"), True),
        (psycopg.errors.QueryCanceled("canceling statement"), False),
        (psycopg.errors.UndefinedTable("relation does not exist"), False),
    ],
)
def test_which_database_errors_are_transient(error, expected):
    assert retry.transient(OperationalError("SELECT 1", {}, error)) is expected


def test_a_widget_read_run_again_counts_once_against_its_rate_limit(pg_app, pg_keys, monkeypatch):
    monkeypatch.setitem(pg_app.config, "WIDGET_RATE_LIMIT", "2/minute")
    client, storefront = pg_app.test_client(), pg_keys["storefront"]
    client.post("/v1/events", json=f.paid("c_1"), headers=storefront)
    token = client.post("/v1/widget-tokens", json={"customer_id": "c_1"}, headers=storefront)
    me = bearer(token.get_json()["token"])
    killer = KillOnce(pg_app, "FROM members")
    try:
        response = client.get("/v1/me", headers=me)
    finally:
        killer.remove()
    assert killer.killed == 1
    assert response.status_code == 200, response.get_json()
    assert response.headers["X-RateLimit-Remaining"] == "1"  # one read counted, not two
    assert client.get("/v1/me", headers=me).status_code == 200
    assert client.get("/v1/me", headers=me).status_code == 429
