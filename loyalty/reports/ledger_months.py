"""Points per month and kind, kept as the ledger grows: what the overview's points earned,
redeemed and expired read instead of scanning every entry.

Ledger entries are immutable (kind, points and `occurred_at` never change; see the first
migration), so a month's points only ever grow by new entries. A trigger on `ledger_entries`
(migration 0029) appends, for each INSERT statement, one row per (month, kind) it wrote to
`ledger_month_deltas` — an insert only, inside the entry's own transaction: no round trip, and
no row that every event updates. The `compact-ledger-months` job folds those deltas into
`ledger_months`, one cell per (month, kind). A reader adds cells and the deltas not folded yet
in one statement (one snapshot), so the answer is always exact, however long ago the job ran;
the job only keeps the deltas few.

A month is the UTC calendar month of the entry's `occurred_at` (`year × 12 + month − 1`), as
`reports.service._month_index` gives it. Each cell also keeps the latest `occurred_at` it holds,
so a reader asking "up to `now`" knows whether `now`'s month has entries after `now` (entries
dated in the future, or a report for a past moment) and then counts that month from the
ledger itself.

`LEDGER_MONTHS_ROLLUP = False` (config) makes the overview scan the ledger as before; the
trigger keeps the cells either way.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    and_,
    bindparam,
    case,
    func,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from loyalty.extensions import Base
from loyalty.ledger import LedgerEntry
from loyalty.types import BigId, UTCDateTime


class LedgerMonth(Base):
    """The points of one kind of entry dated in one month (folded deltas)."""

    __tablename__ = "ledger_months"

    month: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)  # latest occurred_at counted


class LedgerMonthDelta(Base):
    """Points of one kind in one month written by one INSERT into the ledger, not folded yet."""

    __tablename__ = "ledger_month_deltas"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    month: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))
    points: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)  # earliest occurred_at counted
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)


def month_of(when: datetime) -> int:
    return when.year * 12 + when.month - 1


def cells(session: Session, first: int, last: int) -> dict[tuple[int, str], tuple[int, Any]]:
    """(month, kind) -> (points, latest occurred_at) for months first..last: the folded cells
    plus the deltas not folded yet, read in one statement (one snapshot: a compaction that
    commits meanwhile is seen whole or not at all)."""
    parts = _parts(first, last)
    rows = session.execute(
        select(
            parts.c.month, parts.c.kind, func.sum(parts.c.points), func.max(parts.c.last_at)
        ).group_by(parts.c.month, parts.c.kind)
    )
    return {
        (int(month), kind): (int(points), _as_datetime(last_at))
        for month, kind, points, last_at in rows
    }


def cells_before(
    session: Session, first: int, last: int, now: datetime
) -> tuple[dict[tuple[int, str], int], bool]:
    """(month, kind) -> points of the entries dated before `now`, for months first..last; and
    whether that is exact: False when a cell or delta holds entries on both sides of `now`
    (the caller then counts that month from the ledger). A delta dated wholly at or after
    `now` (an order a store's clock dated a minute ahead) is left out; one wholly before is
    counted. One statement, as `cells`."""
    parts = _parts(first, last)
    before = parts.c.last_at < now
    straddles = and_(
        parts.c.last_at >= now, or_(parts.c.first_at.is_(None), parts.c.first_at < now)
    )
    rows = session.execute(
        select(
            parts.c.month,
            parts.c.kind,
            func.coalesce(func.sum(case((before, parts.c.points), else_=0)), 0),
            func.max(case((straddles, 1), else_=0)),
        ).group_by(parts.c.month, parts.c.kind)
    ).all()
    return (
        {(int(month), kind): int(points) for month, kind, points, _split in rows},
        not any(split for *_rest, split in rows),
    )


def _parts(first: int, last: int) -> Any:
    """Cells and deltas of months first..last as (month, kind, points, first_at, last_at);
    a cell's `first_at` is NULL (its entries are somewhere at or before `last_at`)."""
    return union_all(
        select(
            LedgerMonth.month,
            LedgerMonth.kind,
            LedgerMonth.points,
            null().label("first_at"),
            LedgerMonth.last_at,
        ).where(LedgerMonth.month.between(first, last)),
        select(
            LedgerMonthDelta.month,
            LedgerMonthDelta.kind,
            LedgerMonthDelta.points,
            LedgerMonthDelta.first_at,
            LedgerMonthDelta.last_at,
        ).where(LedgerMonthDelta.month.between(first, last)),
    ).subquery()


def _as_datetime(value: Any) -> Any:
    """max() over a UNION loses the column type on SQLite: a string there."""
    if isinstance(value, str):
        return UTCDateTime().process_result_value(datetime.fromisoformat(value), None)
    return UTCDateTime().process_result_value(value, None)


def recomputed(session: Session) -> dict[tuple[int, str], int]:
    """(month, kind) -> points straight from every ledger entry (a full scan: for checks)."""
    from loyalty.reports.service import _month_index  # the reports' own month

    month = _month_index(session, LedgerEntry.occurred_at)
    rows = session.execute(
        select(month, LedgerEntry.kind, func.sum(LedgerEntry.points)).group_by(
            month, LedgerEntry.kind
        )
    )
    return {(int(m), kind): int(points) for m, kind, points in rows}


def verify_ledger_months(session: Session) -> list[str]:
    """Differences between the rollup (cells + deltas) and a recomputation from the ledger;
    empty when they agree."""
    kept = {key: points for key, (points, _last) in cells(session, 0, 10**7).items()}
    actual = recomputed(session)
    return [
        f"ledger month {_label(month)} {kind}: rollup {kept.get((month, kind), 0)} "
        f"!= entries {actual.get((month, kind), 0)}"
        for month, kind in sorted(set(kept) | set(actual))
        if kept.get((month, kind), 0) != actual.get((month, kind), 0)
    ]


def _label(month: int) -> str:
    year, index = divmod(month, 12)
    return f"{year:04d}-{index + 1:02d}"


_COMPACT_POSTGRES = text("""
    WITH moved AS (
      DELETE FROM ledger_month_deltas
      WHERE id IN (SELECT id FROM ledger_month_deltas WHERE last_at < :now
                   ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)
      RETURNING month, kind, points, last_at
    ), folded AS (
      INSERT INTO ledger_months (month, kind, points, last_at)
      SELECT month, kind, sum(points), max(last_at) FROM moved
      GROUP BY month, kind ORDER BY month, kind
      ON CONFLICT (month, kind) DO UPDATE
        SET points = ledger_months.points + excluded.points,
            last_at = greatest(ledger_months.last_at, excluded.last_at)
      RETURNING 1
    )
    SELECT count(*) FROM moved
""").bindparams(bindparam("now", type_=UTCDateTime()))

_COMPACT_SQLITE = (
    text("""
        INSERT INTO ledger_months (month, kind, points, last_at)
        SELECT month, kind, sum(points), max(last_at) FROM ledger_month_deltas
        WHERE id <= :upto AND last_at < :now GROUP BY month, kind
        ON CONFLICT (month, kind) DO UPDATE
          SET points = ledger_months.points + excluded.points,
              last_at = max(ledger_months.last_at, excluded.last_at)
    """).bindparams(bindparam("now", type_=UTCDateTime())),
    text("DELETE FROM ledger_month_deltas WHERE id <= :upto AND last_at < :now").bindparams(
        bindparam("now", type_=UTCDateTime())
    ),
)


def compact_ledger_months(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """Fold the deltas dated before `now` into the cells, `batch_size` deltas per
    transaction; the deltas removed. (A delta dated at or after `now` waits for a later run,
    so a reader can still leave it out.) Safe beside inserts into the ledger and beside
    another run of itself: each run deletes the deltas it folds (PostgreSQL: DELETE ...
    RETURNING of the rows it locked, rows another run holds skipped), so a delta is counted
    in a cell exactly once."""
    folded = 0
    if session.get_bind().dialect.name == "postgresql":
        while True:
            moved = session.execute(
                _COMPACT_POSTGRES, {"batch": batch_size, "now": now}
            ).scalar_one()
            session.commit()
            folded += moved
            if moved < batch_size:
                return folded
    # SQLite has one writer at a time: the upsert takes the write lock, so no delta can be
    # inserted between it and the delete.
    upto = session.scalar(select(func.max(LedgerMonthDelta.id)))
    if upto is not None:
        bounds = {"upto": upto, "now": now}
        session.execute(_COMPACT_SQLITE[0], bounds)
        folded = session.execute(_COMPACT_SQLITE[1], bounds).rowcount  # type: ignore[attr-defined]
        session.commit()
    return folded
