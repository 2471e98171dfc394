"""The ledger's monthly rollup (loyalty/reports/ledger_months.py): cells + deltas always equal a
recomputation from the entries, whatever was inserted, folded, or inserted while folding; and
the overview reads the same figures from it as from a scan of the ledger."""

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from loyalty import ledger
from loyalty.extensions import db
from loyalty.ledger import KINDS, LedgerEntry, find_drift
from loyalty.members.models import Member
from loyalty.reports import ledger_months, overview
from loyalty.reports.ledger_months import (
    LedgerMonth,
    LedgerMonthDelta,
    compact_ledger_months,
    verify_ledger_months,
)

BASE = datetime(2025, 1, 1, tzinfo=UTC)
LATER = datetime(2100, 1, 1, tzinfo=UTC)  # after every entry: a compaction folds them all
CREDITS = ("earn", "bonus", "referral", "adjust", "redeem_cancel")


def _members(session, count: int) -> list[int]:
    members = [Member(customer_id=f"lm{i}", email=f"lm{i}@example.com") for i in range(count)]
    session.add_all(members)
    session.flush()
    return [m.id for m in members]


def _random_entries(session, rng: random.Random, member_ids: list[int], count: int) -> None:
    """Credits and debits of every kind, dated over two years, month edges included."""
    for i in range(count):
        member_id = rng.choice(member_ids)
        when = BASE + timedelta(days=rng.randrange(730), seconds=rng.choice((0, 1, 86399)))
        if rng.random() < 0.1:  # the very first and last instant of a month
            when = datetime(when.year, when.month, 1, tzinfo=UTC) - timedelta(
                microseconds=rng.choice((0, 1))
            )
        if rng.random() < 0.6:  # credits, some pending (they count when posted)
            kind, points = rng.choice(CREDITS), rng.randrange(1, 500)
            state = rng.choice((ledger.AVAILABLE, ledger.PENDING))
        else:  # debits of every kind (a clawback may take `available` below zero)
            kind, points, state = rng.choice(KINDS), -rng.randrange(1, 50), ledger.AVAILABLE
        ledger.post_entry(
            session, member_id, kind, points, source_type="test", source_id=f"e{i}",
            occurred_at=when, state=state, matures_at=when + timedelta(days=30),
        )  # fmt: skip


def _bulk_entries(session, member_ids: list[int], when: datetime) -> None:
    """One INSERT of many entries (what the jobs do): +p and −p each, balances unchanged."""
    rows = [
        {
            "member_id": member_id, "kind": "adjust", "points": sign * (k + 1),
            "state": "available", "source_type": "test", "source_id": f"bulk{k}",
            "detail": {}, "occurred_at": when + timedelta(days=k), "created_at": when,
        }
        for k, member_id in enumerate(member_ids)
        for sign in (1, -1)
    ]  # fmt: skip
    session.execute(insert(LedgerEntry), rows)


def _scan(session, now: datetime) -> list[dict]:
    """The overview's months as the scan of the ledger gives them."""
    start = overview.window_start(now)
    first = start.year * 12 + start.month - 1
    months = {overview._month_label(first + k): overview._empty_month() for k in range(12)}
    overview._points_by_month(session, start, now, months)
    return [{"month": k, **v} for k, v in months.items()]


def _rollup(session, now: datetime) -> list[dict]:
    start = overview.window_start(now)
    first = start.year * 12 + start.month - 1
    months = {overview._month_label(first + k): overview._empty_month() for k in range(12)}
    overview._points_by_month_rollup(session, start, now, months)
    return [{"month": k, **v} for k, v in months.items()]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollup_equals_a_recomputation_from_the_entries(session, seed):
    rng = random.Random(seed)
    member_ids = _members(session, 5)
    for round_ in range(3):
        _random_entries(session, rng, member_ids, 40)
        if round_ == 1:
            _bulk_entries(session, member_ids, BASE + timedelta(days=100))
        session.commit()
        assert verify_ledger_months(session) == []
        for now in (
            datetime(2026, 12, 1, tzinfo=UTC),  # the first instant of a month
            BASE + timedelta(days=rng.randrange(730), seconds=rng.randrange(86400)),  # mid-month
            datetime(2027, 3, 10, tzinfo=UTC),  # after every entry
        ):
            assert _rollup(session, now) == _scan(session, now)
        if rng.random() < 0.7:
            compact_ledger_months(session, LATER, rng.choice((1, 7, 5000)))
            assert session.scalar(select(func.count()).select_from(LedgerMonthDelta)) == 0
            assert verify_ledger_months(session) == []
    assert find_drift(session) == []  # the entries posted kept every balance right


def test_entries_dated_after_now_are_left_out_without_a_scan(session, monkeypatch):
    """Orders a store's clock dated a little ahead: the deltas after `now` are left out, those
    before counted, the ledger not scanned; a compaction at `now` leaves the later ones."""
    (member_id,) = _members(session, 1)
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    for k, when in enumerate((now - timedelta(days=3), now - timedelta(seconds=1), now,
                              now + timedelta(minutes=2), now + timedelta(days=1))):  # fmt: skip
        ledger.post_entry(
            session, member_id, "earn", 10 * (k + 1), source_type="test", source_id=f"f{k}",
            occurred_at=when,
        )  # fmt: skip
    expected = _scan(session, now)
    assert expected[-1] == {"month": "2026-06", "points_earned": 30, "points_redeemed": 0,
                            "points_expired": 0, "referral_conversions": 0}  # fmt: skip

    def no_scan(*_args):
        raise AssertionError("the ledger was scanned")

    monkeypatch.setattr(overview, "_points_by_month", no_scan)
    assert _rollup(session, now) == expected
    compact_ledger_months(session, now, 100)
    assert session.scalar(select(func.count()).select_from(LedgerMonthDelta)) == 3
    assert _rollup(session, now) == expected
    # A cell that holds entries on both sides of `now` is counted from the ledger instead.
    compact_ledger_months(session, LATER, 100)
    monkeypatch.undo()
    assert _rollup(session, now) == expected
    assert verify_ledger_months(session) == []


def test_a_drifted_cell_is_reported(session):
    member_ids = _members(session, 1)
    ledger.post_entry(
        session, member_ids[0], "bonus", 100, source_type="test", source_id="x",
        occurred_at=datetime(2026, 2, 3, tzinfo=UTC),
    )  # fmt: skip
    compact_ledger_months(session, LATER, 100)
    cell = session.get(LedgerMonth, (2026 * 12 + 1, "bonus"))
    assert cell.points == 100
    cell.points = 90
    session.flush()
    assert verify_ledger_months(session) == ["ledger month 2026-02 bonus: rollup 90 != entries 100"]


def test_verify_ledger_reports_a_drifted_month(runner, session):
    member_ids = _members(session, 1)
    ledger.post_entry(
        session, member_ids[0], "earn", 40, source_type="test", source_id="y",
        occurred_at=datetime(2026, 3, 3, tzinfo=UTC),
    )  # fmt: skip
    session.commit()
    assert runner.invoke(args=["loyalty", "verify-ledger"]).exit_code == 0
    session.execute(LedgerMonthDelta.__table__.delete())
    session.commit()
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 1
    assert "ledger month 2026-03 earn: rollup 0 != entries 40" in result.output


def test_the_overview_is_the_same_with_the_rollup_off(app, session):
    member_ids = _members(session, 3)
    _random_entries(session, random.Random(7), member_ids, 60)
    session.commit()
    now = datetime(2026, 6, 15, tzinfo=UTC)
    with_rollup = overview.overview(session, now)
    app.config["LEDGER_MONTHS_ROLLUP"] = False
    try:
        assert overview.overview(session, now) == with_rollup
    finally:
        app.config["LEDGER_MONTHS_ROLLUP"] = True


def test_compact_is_a_scheduled_job(runner):
    result = runner.invoke(args=["loyalty", "jobs", "compact-ledger-months"])
    assert result.exit_code == 0, result.output
    assert "compact-ledger-months: 0 changed" in result.output


@pytest.mark.postgres
def test_concurrent_inserts_while_compacting_on_postgresql(pg_app):
    """Writers on their own connections commit entries while two compactions run over and over;
    at the end every entry is counted exactly once."""
    with pg_app.app_context():
        member_ids = _members(db.session, 8)
        db.session.commit()
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        rng = random.Random(worker)
        own = member_ids[2 * worker : 2 * worker + 2]  # no two writers wait on one member
        try:
            with pg_app.app_context():
                for _ in range(15):
                    _random_entries(db.session, rng, own, 5)
                    if rng.random() < 0.3:
                        _bulk_entries(db.session, own, BASE + timedelta(days=200))
                    db.session.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def compact() -> None:
        try:
            with pg_app.app_context():
                while not stop.is_set():
                    compact_ledger_months(db.session, LATER, 3)
        except BaseException as exc:
            errors.append(exc)

    compactors = [threading.Thread(target=compact) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in compactors + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in compactors:
        thread.join()
    assert errors == []
    with pg_app.app_context():
        assert verify_ledger_months(db.session) == []
        compact_ledger_months(db.session, LATER, 1000)
        assert db.session.scalar(select(func.count()).select_from(LedgerMonthDelta)) == 0
        assert verify_ledger_months(db.session) == []
        total = db.session.scalar(select(func.sum(LedgerMonth.points)))
        assert total == db.session.scalar(select(func.sum(LedgerEntry.points)))
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) > 4 * 15 * 5
        assert find_drift(db.session) == []
        assert db.session.scalar(select(func.count()).select_from(Member)) == 8
    assert ledger_months.month_of(datetime(2026, 1, 31, tzinfo=UTC)) == 2026 * 12
