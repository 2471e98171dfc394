"""Reports on a real PostgreSQL streaming replica (REPORTS_DATABASE_URL): they read there while
every write goes to the primary, say how far behind the replica was, and keep answering from
the primary — or with a clear 503 — when the replica is down or too far behind.

The proof that a report reads the replica: with the replica's replay paused, an order
committed on the primary (and already received by the replica as WAL) is missing from the
report until replay resumes.
"""

import gc
import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from console import accounts
from loyalty.auth import create_api_key
from loyalty.extensions import db
from loyalty.reports import aggregates
from loyalty.reports import source as reports_source
from tests import factories as f
from tests.conftest import bearer, make_app
from tests.console.conftest import PASSWORD, sign_in

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

_years = itertools.count(2001)  # each test's orders in a year of its own
_ids = itertools.count(1)


@pytest.fixture
def make_replica_app(replica_pair):
    """make_replica_app(**config) -> (app, client, keys): the app on the primary, with reports
    on the replica; the keys are admin and reports headers."""
    made = []

    def make(**config):
        app = make_app(
            replica_pair.primary.url(),
            REPORTS_DATABASE_URL=replica_pair.replica.url(),
            ADMIN_PASSWORD_HASHING="cheapest",
            **config,
        )
        made.append(app)
        with app.app_context():
            keys = {}
            for scope in ("admin", "reports"):
                _row, key = create_api_key(db.session, f"replica-{scope}", [scope])
                keys[scope] = bearer(key)
            db.session.commit()
        return app, app.test_client(), keys

    yield make
    # A streamed download left unread (a failed assertion's traceback keeps its response)
    # holds a pooled connection: give it back while the clusters still run.
    gc.collect()
    for app in made:
        with app.app_context():
            db.engine.dispose()
            found = reports_source.replica()
            if found is not None:
                found.dispose()


def pay(client, admin, customer_id: str, when: datetime) -> None:
    event_ = f.paid(customer_id, None, [f.line(unit_price=2500)], occurred_at=when)
    answer = client.post("/v1/events", json=event_, headers=admin)
    assert answer.status_code == 200, answer.get_json()
    # What the worker's `refresh-reports` job does on the primary: a replica serves the report
    # aggregates as it last replayed them, and never refreshes them itself.
    with client.application.app_context():
        aggregates.refresh(db.session)
        db.session.remove()


def retention(client, headers, year: int):
    return client.get(
        f"/v1/reports/retention?from={year}-01-01&to={year + 1}-01-01", headers=headers
    )


def test_reports_read_the_replica_while_writes_go_to_the_primary(replica_pair, make_replica_app):
    app, client, keys = make_replica_app()
    year = next(_years)
    pay(client, keys["admin"], f"rep-a-{year}", datetime(year, 3, 5, tzinfo=UTC))
    replica_pair.wait_replayed()

    first = retention(client, keys["reports"], year)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["customers"] == 1
    assert body["source"]["database"] == "replica" and body["source"]["fallback"] is None
    assert body["source"]["lag_seconds"] >= 0

    replica_pair.pause_replay()
    try:
        pay(client, keys["admin"], f"rep-b-{year}", datetime(year, 3, 6, tzinfo=UTC))
        replica_pair.wait_received()  # the replica has the WAL, but has not applied it
        on_primary = replica_pair.primary.query(
            "SELECT count(DISTINCT customer_id) FROM orders WHERE customer_id LIKE %s",
            f"rep-_-{year}",
        )[0]
        assert on_primary == 2  # the write went to the primary

        behind = retention(client, keys["reports"], year).get_json()
        assert behind["customers"] == 1  # read on the replica, which has not replayed it
        assert behind["source"]["database"] == "replica"
        assert behind["source"]["lag_seconds"] > 0
        # The replica's connections are the reports' own, named so in pg_stat_activity.
        names = replica_pair.replica.query(
            "SELECT array_agg(DISTINCT application_name) FROM pg_stat_activity WHERE datname = %s",
            "loyalty",
        )[0]
        assert reports_source.APPLICATION_NAME in names
        assert b"loyalty_reports_replica_lag_seconds" in client.get("/metrics").data
    finally:
        replica_pair.resume_replay()
    replica_pair.wait_replayed()
    caught_up = retention(client, keys["reports"], year).get_json()
    assert caught_up["customers"] == 2 and caught_up["source"]["database"] == "replica"

    for path in ("/v1/reports/cohorts", "/v1/reports/segments", "/v1/reports/overview"):
        answer = client.get(path, headers=keys["reports"])
        assert answer.status_code == 200, (path, answer.get_json())
        assert answer.get_json()["source"]["database"] == "replica", path


def test_the_replica_session_is_read_only_and_the_primary_one_is_not(make_replica_app):
    app, _client, _keys = make_replica_app()
    with app.test_request_context("/v1/reports/retention"):
        session, source = reports_source.reports_session()
        assert source.database == "replica" and reports_source.read_only(session)
        assert reports_source.reports_session()[0] is session  # one per request
        with pytest.raises(DBAPIError, match="read-only transaction"):
            session.execute(text("CREATE TEMPORARY TABLE nothing (x int)"))
        assert not reports_source.read_only(db.session)
    assert not session.in_transaction()  # ended, its connection back in the pool


def test_a_replica_too_far_behind_falls_back_as_configured(replica_pair, make_replica_app):
    lenient, lenient_client, keys = make_replica_app(REPORTS_REPLICA_MAX_LAG_SECONDS=3600)
    strict, strict_client, strict_keys = make_replica_app(REPORTS_REPLICA_MAX_LAG_SECONDS=1e-6)
    refusing, refusing_client, refusing_keys = make_replica_app(
        REPORTS_REPLICA_MAX_LAG_SECONDS=1e-6, REPORTS_REPLICA_FALLBACK="error"
    )
    year = next(_years)
    replica_pair.pause_replay()
    try:
        pay(lenient_client, keys["admin"], f"lag-{year}", datetime(year, 5, 1, tzinfo=UTC))
        replica_pair.wait_received()
        within = retention(lenient_client, keys["reports"], year).get_json()
        assert within["source"]["database"] == "replica" and within["customers"] == 0

        beyond = retention(strict_client, strict_keys["reports"], year).get_json()
        assert beyond["customers"] == 1  # the primary has the order
        assert beyond["source"] == {
            "database": "primary",
            "lag_seconds": None,
            "fallback": "replica-lagging",
        }

        refused = retention(refusing_client, refusing_keys["reports"], year)
        assert refused.status_code == 503
        assert refused.content_type == "application/problem+json"
        assert refused.get_json()["type"] == "service-unavailable"
        assert refused.get_json()["reason"] == "replica-lagging"
        assert int(refused.headers["Retry-After"]) >= 1
    finally:
        replica_pair.resume_replay()
        replica_pair.wait_replayed()


def test_a_replica_that_is_down_falls_back_to_the_primary_or_answers_503(
    replica_pair, make_replica_app
):
    falling_back, client, keys = make_replica_app(REPORTS_REPLICA_RETRY_SECONDS=600)
    refusing, refusing_client, refusing_keys = make_replica_app(REPORTS_REPLICA_FALLBACK="error")
    year = next(_years)
    assert retention(client, keys["reports"], year).get_json()["source"]["database"] == "replica"

    with falling_back.app_context():
        engine = reports_source.replica().engine
    attempts = []
    event.listen(engine, "do_connect", lambda *args: attempts.append(1))
    replica_pair.stop_replica()
    try:
        pay(client, keys["admin"], f"down-{year}", datetime(year, 7, 1, tzinfo=UTC))
        answer = retention(client, keys["reports"], year)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert body["customers"] == 1  # from the primary
        assert body["source"] == {
            "database": "primary",
            "lag_seconds": None,
            "fallback": "replica-unavailable",
        }
        tried = len(attempts)
        assert tried >= 1  # the pooled connection was found dead, a new one refused
        # Remembered as down: the next report goes straight to the primary, no new attempt.
        again = retention(client, keys["reports"], year).get_json()
        assert again["source"]["fallback"] == "replica-unavailable" and len(attempts) == tried
        csv = client.get("/v1/reports/segments?format=csv", headers=keys["reports"])
        assert csv.status_code == 200 and csv.headers["X-Data-Source"] == "primary"
        assert csv.get_data(as_text=True).startswith("segment,customer_id,")
        assert "Replica-Lag-Seconds" not in csv.headers

        refused = retention(refusing_client, refusing_keys["reports"], year)
        assert refused.status_code == 503
        assert refused.content_type == "application/problem+json"
        problem = refused.get_json()
        assert problem["type"] == "service-unavailable"
        assert problem["reason"] == "replica-unavailable"
        assert refused.headers["Retry-After"] == "5"  # REPORTS_REPLICA_RETRY_SECONDS

        # Readiness shows the replica but does not fail for it: orders don't need it.
        ready = refusing_client.get("/readyz")
        assert ready.status_code == 200
        assert ready.get_json()["reports_replica"]["status"] == "unavailable"
        # Writes never needed the replica.
        pay(
            refusing_client,
            refusing_keys["admin"],
            f"down-b-{year}",
            datetime(year, 7, 2, tzinfo=UTC),
        )
    finally:
        replica_pair.start_replica()
    replica_pair.wait_replayed()
    back, back_client, back_keys = make_replica_app(REPORTS_REPLICA_RETRY_SECONDS=0)
    body = retention(back_client, back_keys["reports"], year).get_json()
    assert body["source"]["database"] == "replica" and body["customers"] == 2
    ready = back_client.get("/readyz").get_json()
    assert ready["reports_replica"]["status"] == "ok"


def test_the_segments_csv_is_read_on_the_replica(replica_pair, make_replica_app):
    app, client, keys = make_replica_app()
    year = next(_years)
    seen, unseen = f"csv-seen-{year}", f"csv-unseen-{year}"
    for customer_id in (seen,):
        enrolled = client.post(
            "/v1/members",
            json={"id": customer_id, "email": f"{customer_id}@example.com"},
            headers=keys["admin"],
        )
        assert enrolled.status_code in (200, 201), enrolled.get_json()
    replica_pair.wait_replayed()
    replica_pair.pause_replay()
    try:
        enrolled = client.post(
            "/v1/members",
            json={"id": unseen, "email": f"{unseen}@example.com"},
            headers=keys["admin"],
        )
        assert enrolled.status_code in (200, 201), enrolled.get_json()
        replica_pair.wait_received()
        download = client.get(
            "/v1/reports/segments?format=csv&segment=new_subscribers", headers=keys["reports"]
        )
        assert download.status_code == 200 and download.mimetype == "text/csv"
        assert download.headers["X-Data-Source"] == "replica"
        assert float(download.headers["Replica-Lag-Seconds"]) > 0
        rows = download.get_data(as_text=True)
        assert f",{seen}," in rows and f",{unseen}," not in rows
    finally:
        replica_pair.resume_replay()
        replica_pair.wait_replayed()
    rows = client.get(
        "/v1/reports/segments?format=csv&segment=new_subscribers", headers=keys["reports"]
    ).get_data(as_text=True)
    assert f",{unseen}," in rows


def test_the_console_reads_its_reports_on_the_replica(replica_pair, make_replica_app):
    app, client, keys = make_replica_app()
    with app.app_context():
        admin = accounts.create_admin(
            db.session, f"replica-owner-{next(_ids)}@example.com", "owner", PASSWORD
        )
        db.session.commit()
        email = admin.email
    assert sign_in(client, email).status_code == 303
    replica_pair.wait_replayed()

    def members_on_dashboard() -> tuple[int, str]:
        page = client.get("/console/dashboard")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        count = html.split('data-testid="members">', 1)[1].split("<", 1)[0]
        line = html.split('data-testid="data-source"', 1)[1].split("</p>", 1)[0]
        return int(count.replace(",", "")), line

    before, line = members_on_dashboard()
    assert 'data-database="replica"' in line and "Figures from the read replica" in line
    replica_pair.pause_replay()
    try:
        customer_id = f"console-{next(_ids)}"
        enrolled = client.post(
            "/v1/members",
            json={"id": customer_id, "email": f"{customer_id}@example.com"},
            headers=keys["admin"],
        )
        assert enrolled.status_code in (200, 201)
        replica_pair.wait_received()
        during, line = members_on_dashboard()
        assert during == before  # the new member is on the primary only
        assert "behind" in line
        for path in ("/console/reports", "/console/reports/cohorts", "/console/reports/segments"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert 'data-database="replica"' in page.get_data(as_text=True), path
        download = client.get("/console/reports/segments/new_subscribers/members.csv")
        assert download.headers["X-Data-Source"] == "replica"
        assert f",{customer_id}," not in download.get_data(as_text=True)
    finally:
        replica_pair.resume_replay()
        replica_pair.wait_replayed()
    after, _line = members_on_dashboard()
    assert after == before + 1
