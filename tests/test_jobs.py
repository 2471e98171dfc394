"""Scheduled jobs from the command line: maturing, expiring, verifying the ledger."""

from datetime import UTC, datetime

from sqlalchemy import update

from loyalty.extensions import db
from loyalty.members.models import Member
from tests import factories as f


def points(client, headers, customer_id="c_1"):
    return client.get(f"/v1/members/{customer_id}", headers=headers).get_json()["points"]


def run(runner, *args):
    result = runner.invoke(args=["loyalty", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_mature_points_after_the_return_window_only_once(client, runner, storefront):
    paid_at = datetime(2026, 1, 10, tzinfo=UTC)
    client.post(
        "/v1/events", json=f.paid(occurred_at=paid_at, lines=[f.line(unit_price=7000)]),
        headers=storefront,
    )  # fmt: skip
    run(runner, "jobs", "mature-points", "--now", "2026-02-08T23:59:00Z")  # 29 days later
    assert points(client, storefront) == {"available": 0, "pending": 70, "lifetime_earned": 70}
    output = run(runner, "jobs", "mature-points", "--now", "2026-02-09T10:00:00Z")
    assert "mature-points: 1 changed" in output
    assert points(client, storefront) == {"available": 70, "pending": 0, "lifetime_earned": 70}
    output = run(runner, "jobs", "mature-points", "--now", "2026-03-01T00:00:00Z")
    assert "mature-points: 0 changed" in output
    assert points(client, storefront)["available"] == 70


def test_pending_days_zero_makes_points_available_at_once(client, admin):
    client.put("/v1/program", json={"pending_days": 0}, headers=admin)
    client.post("/v1/events", json=f.paid(lines=[f.line(unit_price=2500)]), headers=admin)
    assert points(client, admin) == {"available": 25, "pending": 0, "lifetime_earned": 25}


def test_expire_points_after_inactivity_keeps_active_members(client, runner, admin):
    client.put("/v1/program", json={"pending_days": 0, "expiry_inactive_days": 548}, headers=admin)
    old = datetime(2024, 1, 1, tzinfo=UTC)
    recent = datetime(2025, 6, 1, tzinfo=UTC)
    client.post("/v1/events", json=f.paid("c_old", occurred_at=old), headers=admin)
    client.post("/v1/events", json=f.paid("c_recent", occurred_at=recent), headers=admin)
    output = run(runner, "jobs", "expire-points", "--now", "2025-07-10T00:00:00Z")
    assert "expire-points: 1 changed" in output
    assert points(client, admin, "c_old") == {"available": 0, "pending": 0, "lifetime_earned": 50}
    assert points(client, admin, "c_recent")["available"] == 50
    run(runner, "jobs", "expire-points", "--now", "2025-07-10T00:00:00Z")
    activity = client.get("/v1/members/c_old/activity", headers=admin).get_json()["items"]
    assert [(e["kind"], e["points"]) for e in activity] == [("expire", -50), ("earn", 50)]
    assert activity[0]["source"] == {"type": "inactivity", "id": "2024-01-09"}  # the cutoff date
    run(runner, "verify-ledger")


def test_run_due_runs_every_job(runner):
    output = run(runner, "jobs", "run-due", "--now", "2026-01-01T00:00:00Z")
    assert "mature-points" in output and "expire-points" in output


def test_unknown_job_and_bad_time_are_usage_errors(runner):
    assert runner.invoke(args=["loyalty", "jobs", "nope"]).exit_code == 2
    bad_time = runner.invoke(args=["loyalty", "jobs", "mature-points", "--now", "2026-01-01"])
    assert bad_time.exit_code == 2


def test_verify_ledger_reports_drift_and_exits_non_zero(client, runner, admin):
    client.post("/v1/events", json=f.paid(), headers=admin)
    run(runner, "verify-ledger")
    db.session.execute(
        update(Member)
        .where(Member.customer_id == "c_1")
        .values(points_pending=Member.points_pending + 1)
    )
    db.session.commit()
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 1
    assert "c_1" in result.output and "(0, 51, 50) != entries (0, 50, 50)" in result.output


def test_ledger_entries_cannot_be_edited_or_deleted(client, session, admin):
    import pytest
    from sqlalchemy import delete
    from sqlalchemy.exc import DatabaseError

    from loyalty.ledger import LedgerEntry

    client.post("/v1/events", json=f.paid(), headers=admin)
    for statement in (
        update(LedgerEntry).values(points=LedgerEntry.points + 1),
        delete(LedgerEntry),
    ):
        with pytest.raises(DatabaseError, match="ledger entries"), session.begin_nested():
            session.execute(statement)


def test_api_keys_create_prints_the_key_alone_on_the_last_line(runner, client):
    result = runner.invoke(args=["api-keys", "create", "--name", "ops", "--scope", "reports"])
    assert result.exit_code == 0
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("lk_") and " " not in key
    assert client.get("/v1/program", headers={"Authorization": f"Bearer {key}"}).status_code == 403


def test_seed_demo_runs_once(runner, client, admin):
    assert "Seeded" in run(runner, "seed-demo")
    assert "already" in run(runner, "seed-demo")
    program = client.get("/v1/program", headers=admin).get_json()
    assert program["expiry_inactive_days"] == 548
    assert client.get("/v1/members/demo-shopper", headers=admin).status_code == 200


def test_a_jobs_own_batch_size_still_matures_every_member(app, client, runner, storefront,
                                                           monkeypatch):  # fmt: skip
    from loyalty import jobs

    paid_at = datetime(2026, 1, 10, tzinfo=UTC)
    for n in range(7):
        client.post(
            "/v1/events",
            json=f.paid(f"c_{n}", occurred_at=paid_at, lines=[f.line(unit_price=1000 * (n + 1))]),
            headers=storefront,
        )
    sizes = []
    ranges = jobs.member_ranges

    def recorded(session, size):
        sizes.append(size)
        return ranges(session, size)

    monkeypatch.setattr(jobs, "member_ranges", recorded)
    app.config["JOB_BATCH_SIZES"] = {"mature-points": 2}
    output = run(runner, "jobs", "mature-points", "--now", "2026-03-01T00:00:00Z")
    assert "mature-points: 7 changed" in output
    assert set(sizes) == {2}  # four ranges of at most two members
    for n in range(7):
        balance = (n + 1) * 10
        assert points(client, storefront, f"c_{n}") == {
            "available": balance, "pending": 0, "lifetime_earned": balance
        }  # fmt: skip
    sizes.clear()
    run(runner, "jobs", "expire-points", "--now", "2026-03-01T00:00:00Z")
    assert set(sizes) <= {app.config["JOB_BATCH_SIZE"]}  # the others keep JOB_BATCH_SIZE
    run(runner, "verify-ledger")


def test_job_batch_sizes_are_name_equals_size_of_known_jobs(app, tmp_path):
    import pytest

    from loyalty import create_app, jobs
    from loyalty.config import ConfigError, job_batch_sizes

    assert job_batch_sizes("mature-points=500, close-period=2000") == {
        "mature-points": 500, "close-period": 2000,
    }  # fmt: skip
    for bad in ("mature-points", "mature-points=0", "mature-points=x", "=5", "a=5=6"):
        with pytest.raises(ConfigError, match="JOB_BATCH_SIZES"):
            job_batch_sizes(bad)
    with app.app_context():  # mature-points: at most 1,000 unless named
        for general, own, expected in ((5000, {}, 1000), (300, {}, 300),
                                       (5000, {"mature-points": 5000}, 5000)):  # fmt: skip
            app.config.update(JOB_BATCH_SIZE=general, JOB_BATCH_SIZES=own)
            assert jobs.batch_size("mature-points") == expected
            assert jobs.batch_size("expire-points") == general
    with pytest.raises(ConfigError, match="names no job mature-pionts"):
        create_app(
            {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}",
             "JOB_BATCH_SIZES": {"mature-pionts": 100}}
        )  # fmt: skip
