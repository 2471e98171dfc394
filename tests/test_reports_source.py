"""Where reports read, without a replica: the primary, and every answer says so. (With a real
streaming replica: tests/replica.)"""

import pytest

from loyalty.config import ConfigError, from_environment
from loyalty.reports import source as reports_source


def test_the_replica_settings_from_the_environment(tmp_path):
    def settings(**env):
        return from_environment(str(tmp_path), {"DATABASE_URL": "sqlite://", **env})

    plain = settings()
    assert plain["REPORTS_DATABASE_URL"] == "" and plain["REPORTS_REPLICA_FALLBACK"] == "primary"
    assert plain["REPORTS_REPLICA_MAX_LAG_SECONDS"] is None
    given = settings(
        REPORTS_DATABASE_URL="postgres://reports@replica/loyalty",
        REPORTS_REPLICA_FALLBACK="error",
        REPORTS_REPLICA_MAX_LAG_SECONDS="30",
    )
    assert given["REPORTS_DATABASE_URL"] == "postgresql+psycopg://reports@replica/loyalty"
    assert given["REPORTS_REPLICA_FALLBACK"] == "error"
    assert given["REPORTS_REPLICA_MAX_LAG_SECONDS"] == 30.0
    for name, value in (
        ("REPORTS_DATABASE_URL", "sqlite:///reports.sqlite3"),
        ("REPORTS_REPLICA_FALLBACK", "wait"),
        ("REPORTS_REPLICA_MAX_LAG_SECONDS", "0"),
        ("REPORTS_REPLICA_RETRY_SECONDS", "-1"),
        ("REPORTS_REPLICA_CONNECT_TIMEOUT_SECONDS", "0"),
    ):
        with pytest.raises(ConfigError, match=name):
            settings(**{name: value})


PRIMARY = {"database": "primary", "lag_seconds": None, "fallback": None}


def test_without_a_replica_every_report_says_it_read_the_primary(client, keys):
    reports = keys["reports"]
    for path in (
        "/v1/reports/retention?from=2026-01-01&to=2026-02-01",
        "/v1/reports/cohorts",
        "/v1/reports/segments",
        "/v1/reports/overview",
    ):
        answer = client.get(path, headers=reports)
        assert answer.status_code == 200, (path, answer.get_json())
        assert answer.get_json()["source"] == PRIMARY, path
    download = client.get("/v1/reports/segments?format=csv", headers=reports)
    assert download.status_code == 200 and download.headers["X-Data-Source"] == "primary"
    assert "Replica-Lag-Seconds" not in download.headers
    download.get_data()
    ready = client.get("/readyz").get_json()
    assert "reports_replica" not in ready


def test_without_a_replica_reports_use_the_requests_own_session(app, session):
    with app.test_request_context("/v1/reports/overview"):
        chosen, source = reports_source.reports_session()
        assert source == reports_source.Source("primary")
        assert not reports_source.read_only(chosen)
        assert chosen is session  # the request's session: what a report refreshes, commits
