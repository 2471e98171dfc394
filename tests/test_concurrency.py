"""Exactly-once under real concurrency: many connections committing at once on PostgreSQL."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from loyalty.extensions import db
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.members.models import Member
from tests import factories as f

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]


def in_parallel(count: int, call):
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda i: call(i), range(count)))


def test_same_event_sent_32_times_concurrently_awards_points_once(pg_app, pg_keys):
    event = f.paid("c_conc", lines=[f.line(unit_price=12345)])

    def send(_):
        response = pg_app.test_client().post(
            "/v1/events", json=event, headers=pg_keys["storefront"]
        )
        return response.status_code, response.get_json()

    results = in_parallel(32, send)
    assert {status for status, _ in results} == {200}
    bodies = [body for _, body in results]
    assert sum(1 for body in bodies if body["duplicate"] is False) == 1
    first = next(body for body in bodies if body["duplicate"] is False)
    for body in bodies:
        assert {**body, "duplicate": False} == first
    with pg_app.app_context():
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_conc")).one()
        assert (member.points_pending, member.points_lifetime) == (123, 123)
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 1
        assert find_drift(db.session) == []


def test_20_concurrent_debits_of_100_from_1000_exactly_10_succeed(pg_app, pg_keys):
    admin = pg_keys["admin"]
    client = pg_app.test_client()
    client.post("/v1/members", json={"id": "c_spend", "email": "s@example.com"}, headers=admin)
    credit = {"points": 1000, "reason": "opening balance"}
    assert (
        client.post("/v1/members/c_spend/adjustments", json=credit, headers=admin).status_code
        == 201
    )

    def debit(_):
        response = pg_app.test_client().post(
            "/v1/members/c_spend/adjustments",
            json={"points": -100, "reason": "concurrent spend"},
            headers=admin,
        )
        return response.status_code, response.get_json()[
            "type"
        ] if response.status_code != 201 else None

    results = in_parallel(20, debit)
    assert sorted(results, key=str).count((201, None)) == 10
    assert [r for r in results if r[0] != 201] == [(422, "insufficient-points")] * 10
    with pg_app.app_context():
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_spend")).one()
        assert member.points_available == 0
        assert find_drift(db.session) == []
    result = pg_app.test_cli_runner().invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output


def test_concurrent_idempotency_key_runs_the_request_once(pg_app, pg_keys):
    admin = pg_keys["admin"]
    client = pg_app.test_client()
    client.post("/v1/members", json={"id": "c_idem", "email": "i@example.com"}, headers=admin)
    headers = {**admin, "Idempotency-Key": "adjust-once"}

    def adjust(_):
        response = pg_app.test_client().post(
            "/v1/members/c_idem/adjustments", json={"points": 7, "reason": "once"}, headers=headers
        )
        return response.status_code, response.get_json()

    results = in_parallel(16, adjust)
    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1
    with pg_app.app_context():
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_idem")).one()
        assert member.points_available == 7


def test_concurrent_events_for_one_new_customer_enroll_once(pg_app, pg_keys):
    events = [f.paid("c_new", lines=[f.line(unit_price=1000)]) for _ in range(12)]

    def send(i):
        return (
            pg_app.test_client()
            .post("/v1/events", json=events[i], headers=pg_keys["storefront"])
            .status_code
        )

    assert in_parallel(12, send) == [200] * 12
    with pg_app.app_context():
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_new")).one()
        assert member.points_pending == 120
        assert find_drift(db.session) == []


def test_one_order_paid_by_16_different_events_at_once_is_recorded_once(pg_app, pg_keys):
    """Distinct event ids, same order id, all at once: one 200, the rest 409, one award."""
    lines = [f.line(unit_price=5000)]

    def send(i):
        event = f.paid("c_race", order_id="ord_race", lines=lines, event_id=f"evt_race_{i}")
        response = pg_app.test_client().post(
            "/v1/events", json=event, headers=pg_keys["storefront"]
        )
        return response.status_code, response.get_json()

    results = in_parallel(16, send)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 15, results
    # Most lose the race on the order's unique id itself (they looked before it was committed).
    raced = [body for status, body in results if "recorded by another event" in str(body)]
    assert raced, results
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 1
        member = db.session.scalars(select(Member).where(Member.customer_id == "c_race")).one()
        assert (member.points_pending, member.points_lifetime) == (50, 50)
        assert find_drift(db.session) == []


def test_overlapping_batches_from_4_clients_apply_each_event_exactly_once(pg_app, pg_keys):
    """Four clients send the same 60 events in batches of 20, each in its own order: every
    event is applied once (one answer not a duplicate), the rest are replays; a batch chosen
    as a deadlock's victim is refused whole (503) and sent again, as a client does."""
    import random

    events = [f.paid(f"c_ov{n % 30}", lines=[f.line(unit_price=1000 + n * 100)])
              for n in range(60)]  # fmt: skip

    def send(number):
        mine = random.Random(number).sample(events, len(events))
        results = []
        client = pg_app.test_client()
        for start in range(0, len(mine), 20):
            for _attempt in range(10):
                response = client.post(
                    "/v1/events/batch",
                    json={"events": mine[start : start + 20]},
                    headers=pg_keys["storefront"],
                )
                if response.status_code != 503:
                    break
            assert response.status_code == 200, response.get_json()
            results.extend(response.get_json()["results"])
        return results

    answers = [result for results in in_parallel(4, send) for result in results]
    assert {result["status"] for result in answers} == {200}
    firsts = [r["id"] for r in answers if r["body"]["duplicate"] is False]
    assert sorted(firsts) == sorted(event["id"] for event in events)
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 60
        total = db.session.scalar(select(func.sum(Member.points_pending)))
        assert total == sum(10 + n for n in range(60))
        assert find_drift(db.session) == []
    result = pg_app.test_cli_runner().invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output


def test_mature_points_in_small_batches_beside_order_events_for_the_same_members(pg_app, pg_keys):
    """The job locks a few members at a time while events for those members commit in other
    connections: every event counts once, every due entry matures once, nothing drifts."""
    from datetime import UTC, datetime, timedelta

    from loyalty.jobs import mature_points
    from loyalty.ledger import AVAILABLE, PENDING

    storefront = pg_keys["storefront"]
    client = pg_app.test_client()
    old = datetime.now(UTC) - timedelta(days=60)  # pending 30 days: due now
    for n in range(12):
        response = client.post(
            "/v1/events",
            json=f.paid(f"c_mix_{n}", f"o_old_{n}", [f.line(unit_price=1000)], occurred_at=old),
            headers=storefront,
        )
        assert response.status_code == 200

    def work(i):
        if i == 0:
            with pg_app.app_context():
                changed = mature_points(db.session, datetime.now(UTC), batch_size=2)
                db.session.commit()
                return changed
        n = (i - 1) % 12
        response = pg_app.test_client().post(
            "/v1/events",
            json=f.paid(f"c_mix_{n}", f"o_new_{i}", [f.line(unit_price=2000)]),
            headers=storefront,
        )
        return response.status_code

    results = in_parallel(25, work)
    assert results[0] == 12  # the twelve old entries, once each
    assert set(results[1:]) == {200}
    with pg_app.app_context():
        states = dict(
            db.session.execute(
                select(LedgerEntry.state, func.count()).group_by(LedgerEntry.state)
            ).all()
        )
        assert states == {AVAILABLE: 12, PENDING: 24}  # the new ones are not due
        totals = db.session.execute(
            select(func.sum(Member.points_available), func.sum(Member.points_pending))
        ).one()
        assert tuple(totals) == (12 * 10, 24 * 20)
        assert find_drift(db.session) == []
