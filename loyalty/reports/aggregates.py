"""Keeping the reports' aggregates (`loyalty.reports.models`) equal to `orders`, set-based.

A trigger on `orders` marks, in the order's own transaction, the customer and the member whose
paid orders changed (no extra statement on the order's path). `refresh` takes the marks in
chunks and recomputes exactly those customers' per-order facts and statistics and those
members' RFM figures from `orders` with window functions (a DELETE and an INSERT ... SELECT per
table, never a statement per customer), and moves the cohort rollups by the difference: the
marked customers' old contribution out, their new one in. One transaction per chunk.

Concurrent refreshers are safe: on PostgreSQL each chunk holds a transaction-level advisory lock
(refreshers take turns; a reader's refresh gives up instead of waiting) and claims marks with
SKIP LOCKED, so a mark an order's transaction still holds (the trigger upserts it, locking it)
waits for the next chunk, when that order is visible.

Freshness: `report_state.data_as_of` — every event committed before it is in the aggregates.
A refresh that took every mark it could sets it to its own start, or to the oldest mark left
behind (marks carry the time of the transaction that made them), whichever is earlier.
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app, has_app_context
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from loyalty.types import utcnow

log = logging.getLogger(__name__)

LOCK_KEY = 0x7265706F7274  # the reports' advisory lock on PostgreSQL ("report")
# The reports' customer of an order: the store's customer id; once erased, "erased:<member
# id>"; an erased order without a member (a guest's), "erased:" — all such orders one customer
# with no id, as `reference.CUSTOMER` (NULL there) counts them.
CUSTOMER_SQL = "coalesce({r}customer_id, 'erased:' || {r}member_id, 'erased:')"
ANONYMOUS = "erased:"
PAID_ORDER = (
    f"SELECT o.id, {CUSTOMER_SQL.format(r='o.')} AS customer, o.member_id, "
    "o.occurred_at, o.eligible_amount - o.refunded_amount AS value FROM orders o"
)


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def month_sql(sqlite: bool, column: str) -> str:
    """year × 12 + month − 1 of a UTC datetime column (as `reference._month_index`)."""
    if sqlite:
        return (
            f"(CAST(strftime('%Y', {column}) AS INTEGER) * 12 "
            f"+ CAST(strftime('%m', {column}) AS INTEGER) - 1)"
        )
    utc = f"timezone('UTC', {column})"
    return (
        f"(CAST(extract(year FROM {utc}) AS INTEGER) * 12 "
        f"+ CAST(extract(month FROM {utc}) AS INTEGER) - 1)"
    )


FACT_COLUMNS = (
    "id, customer, member_id, occurred_at, value, month, months_since, prev_at, prev2_at, "
    "next_at, cum_value, side_prev_at, side_prev2_at, side_next_at, side_cum_value"
)


def facts_sql(sqlite: bool, source: str) -> str:
    """A SELECT of report_orders rows (FACT_COLUMNS) for the paid orders `source` gives (id,
    customer, member_id, occurred_at, value); complete only for customers it gives all of."""
    return f"""
        SELECT id, customer, member_id, occurred_at, value, month,
          CASE WHEN row_number() OVER (PARTITION BY customer, month ORDER BY occurred_at, id) = 1
               THEN month - min(month) OVER (PARTITION BY customer) END AS months_since,
          lag(occurred_at) OVER w AS prev_at, lag(occurred_at, 2) OVER w AS prev2_at,
          lead(occurred_at) OVER w AS next_at, sum(value) OVER w AS cum_value,
          lag(occurred_at) OVER s AS side_prev_at, lag(occurred_at, 2) OVER s AS side_prev2_at,
          lead(occurred_at) OVER s AS side_next_at, sum(value) OVER s AS side_cum_value
        FROM (SELECT p.*, {month_sql(sqlite, "p.occurred_at")} AS month FROM ({source}) p) f
        WINDOW w AS (PARTITION BY customer ORDER BY occurred_at, id),
               s AS (PARTITION BY customer, member_id IS NULL ORDER BY occurred_at, id)
    """


def all_facts_sql(sqlite: bool) -> str:
    return facts_sql(
        sqlite,
        f"{PAID_ORDER} WHERE o.status = 'paid'",
    )


CUSTOMERS_FROM_FACTS = (
    "SELECT customer, min(occurred_at) AS first_at, min(month) AS first_month, "
    "count(*) AS orders, sum(value) AS revenue FROM {facts} f "
    "{where} GROUP BY customer"
)
MEMBER_COLUMNS = "member_id, last_at, frequency, monetary, aov, customer_id, erased, enrolled_at"
# A member's figures over their paid orders (and their average order value in whole minor
# units, truncated), and what the reports read of the member.
MEMBERS_FROM_ORDERS = (
    "SELECT o.member_id, o.last_at, o.frequency, o.monetary, "
    "CAST(o.monetary AS BIGINT) / o.frequency, "
    "m.customer_id, "
    "m.erased_at IS NOT NULL, m.enrolled_at FROM (SELECT member_id, max(occurred_at) AS last_at, "
    "count(*) AS frequency, sum(eligible_amount - refunded_amount) AS monetary "
    "FROM orders WHERE status = 'paid' AND member_id IS NOT NULL {where} GROUP BY member_id) o "
    "JOIN members m ON m.id = o.member_id"
)
COHORTS_FROM_CUSTOMERS = (
    "SELECT first_month, {sign}count(*), {sign}sum(orders), {sign}sum(revenue), "
    "{sign}sum(CASE WHEN orders >= 2 THEN 1 ELSE 0 END) FROM {customers} {where} "
    "GROUP BY first_month"
)
CELLS_FROM_FACTS = (
    "SELECT month - months_since, months_since, {sign}count(*) FROM {facts} f "
    "WHERE months_since IS NOT NULL {where} GROUP BY month - months_since, months_since"
)


# --- Refresh -----------------------------------------------------------------------------------


def pending(session: Session, cap: int | None = None) -> int:
    """Marked customers and members waiting for a refresh (counted up to `cap` + 1 each)."""
    limit = "" if cap is None else f" LIMIT {int(cap) + 1}"
    return int(
        session.execute(
            text(
                f"SELECT (SELECT count(*) FROM (SELECT 1 FROM report_dirty_customers{limit}) c)"
                f" + (SELECT count(*) FROM (SELECT 1 FROM report_dirty_members{limit}) m)"
            )
        ).scalar_one()
    )


def refresh(
    session: Session,
    batch_size: int = 5000,
    *,
    wait: bool = True,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Recompute every marked customer and member, `batch_size` per transaction; the number
    recomputed. With `wait=False` (a reader's refresh), gives up when another refresher holds
    the lock. Commits."""
    sqlite = _sqlite(session)
    started = _db_now(session)
    session.commit()
    done = 0
    complete = True
    for step in (_refresh_customers, _refresh_members):
        while True:
            if not _lock(session, wait):
                session.rollback()
                complete = False
                break
            count = step(session, sqlite, batch_size)
            session.commit()
            done += count
            if progress is not None and count:
                progress(count)
            if count < batch_size:
                break
        if not complete:
            break
    if complete:
        _lock(session, True)
        oldest = session.execute(
            text(
                "SELECT min(m) FROM (SELECT min(marked_at) AS m FROM report_dirty_customers "
                "UNION ALL SELECT min(marked_at) FROM report_dirty_members) x"
            )
        ).scalar()
        as_of = started if oldest is None else min(started, _aware(oldest))
        session.execute(
            text("UPDATE report_state SET data_as_of = :as_of, refreshed_at = :now WHERE id = 1"),
            {"as_of": _bind(sqlite, as_of), "now": _bind(sqlite, _db_now(session))},
        )
        session.commit()
    return done


def rebuild(session: Session, batch_size: int = 5000, progress=None) -> int:
    """Mark every customer and member with a paid order, then refresh them all: the tables
    rebuilt from `orders` (set-based; chunked like `refresh`)."""
    sqlite = _sqlite(session)
    _lock(session, True)
    stamp = _bind(sqlite, _db_now(session))
    customer = CUSTOMER_SQL.format(r="")
    conflict = "OR IGNORE" if sqlite else ""
    tail = "" if sqlite else " ON CONFLICT DO NOTHING"
    session.execute(
        text(
            f"INSERT {conflict} INTO report_dirty_customers (customer, erased_member_id, "
            f"marked_at) SELECT DISTINCT {customer}, CASE WHEN customer_id IS NULL THEN "
            f"member_id END, :at FROM orders WHERE status = 'paid' AND {customer} IS NOT NULL"
            f"{tail}"
        ),
        {"at": stamp},
    )
    session.execute(
        text(
            f"INSERT {conflict} INTO report_dirty_members (member_id, marked_at) "
            f"SELECT DISTINCT member_id, :at FROM orders WHERE status = 'paid' "
            f"AND member_id IS NOT NULL{tail}"
        ),
        {"at": stamp},
    )
    # Rows of customers with no paid order left are not marked by the above: drop them all.
    for table in ("report_orders", "report_customers", "report_members", "report_cohorts",
                  "report_cohort_cells"):  # fmt: skip
        session.execute(text(f"DELETE FROM {table}"))
    session.commit()
    done = refresh(session, batch_size, progress=progress)
    vacuum(session)
    return done


REPORT_TABLES = ("report_orders", "report_customers", "report_members", "report_cohorts",
                 "report_cohort_cells", "report_dirty_customers",
                 "report_dirty_members")  # fmt: skip


def vacuum(session: Session) -> None:
    """On PostgreSQL, VACUUM (ANALYZE) the aggregates' tables: fresh statistics for the
    planner, and a current visibility map, without which retention's index-only scan reads
    the table's pages too; and the mark queues, emptied of a whole table's marks (every report
    looks whether marks wait). Autovacuum does this in time after a refresh; after a rebuild (a
    whole table rewritten) it is done at once, and where autovacuum is off, it is needed."""
    if _sqlite(session):
        return
    session.commit()
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # VACUUM runs outside any transaction (its own connection); it waits for no one long.
        conn.exec_driver_sql("SET lock_timeout = '5s'")
        try:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {', '.join(REPORT_TABLES)}")
        except DBAPIError as exc:
            log.warning("Reports' tables not vacuumed: %s", exc.orig)


def refresh_for_read(session: Session) -> None:
    """Before a report on the primary: refresh when at most REPORTS_REFRESH_ON_READ_MAX
    customers and members are marked (0: never; a session marked read-only: never)."""
    if not has_app_context() or session.info.get("read_only"):
        return
    cap = int(current_app.config.get("REPORTS_REFRESH_ON_READ_MAX", 0))
    if cap <= 0:
        return
    waiting = pending(session, cap)
    if 0 < waiting <= cap:
        refresh(session, max(cap, 1), wait=False)


def data_as_of(session: Session) -> datetime | None:
    value = session.execute(text("SELECT data_as_of FROM report_state WHERE id = 1")).scalar()
    return None if value is None else _aware(value)


def _lock(session: Session, wait: bool) -> bool:
    if _sqlite(session):
        return True
    if wait:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        return True
    return bool(
        session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}).scalar()
    )


def _claim_table(session: Session, sqlite: bool, name: str, columns: str) -> None:
    """A temporary table of this connection for one chunk's claimed marks, emptied (also when
    the chunk runs in a savepoint, whose release does not empty an ON COMMIT table)."""
    on_commit = "" if sqlite else " ON COMMIT DELETE ROWS"
    session.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns}){on_commit}"))
    session.execute(text(f"DELETE FROM {name}"))


def forget_customer(session: Session, customer_id: str) -> None:
    """Recompute one customer now, in the caller's transaction (no commit): an erasure calls
    it once the orders lost the customer id, so no copy of the id stays in the aggregates
    (their history goes on under "erased:<member id>", marked for the next refresh)."""
    sqlite = _sqlite(session)
    _lock(session, True)
    _refresh_customers(session, sqlite, 1, only=customer_id)


def _refresh_customers(
    session: Session, sqlite: bool, batch_size: int, only: str | None = None
) -> int:
    _claim_table(
        session,
        sqlite,
        "report_claimed",
        "customer VARCHAR(160) PRIMARY KEY, erased_member_id BIGINT",
    )
    limit = {"n": batch_size}
    if only is not None:
        session.execute(text("INSERT INTO report_claimed (customer) VALUES (:key)"), {"key": only})
        session.execute(
            text("DELETE FROM report_dirty_customers WHERE customer = :key"), {"key": only}
        )
    elif sqlite:
        session.execute(
            text(
                "INSERT INTO report_claimed SELECT customer, erased_member_id "
                "FROM report_dirty_customers LIMIT :n"
            ),
            limit,
        )
        session.execute(
            text(
                "DELETE FROM report_dirty_customers "
                "WHERE customer IN (SELECT customer FROM report_claimed)"
            )
        )
    else:
        session.execute(
            text(
                "WITH claimed AS (DELETE FROM report_dirty_customers WHERE customer IN ("
                "SELECT customer FROM report_dirty_customers LIMIT :n FOR UPDATE SKIP LOCKED) "
                "RETURNING customer, erased_member_id) "
                "INSERT INTO report_claimed SELECT customer, erased_member_id FROM claimed"
            ),
            limit,
        )
    claimed = int(session.execute(text("SELECT count(*) FROM report_claimed")).scalar_one())
    if not claimed:
        return 0
    mine = "customer IN (SELECT customer FROM report_claimed)"
    _cohort_deltas(session, "-", f"AND {mine}")  # their old contribution out
    session.execute(text(f"DELETE FROM report_orders WHERE {mine}"))
    session.execute(text(f"DELETE FROM report_customers WHERE {mine}"))
    source = (
        f"{PAID_ORDER} JOIN report_claimed c ON o.customer_id = c.customer "
        f"WHERE o.status = 'paid' UNION ALL "
        f"{PAID_ORDER} JOIN report_claimed c ON o.customer_id IS NULL "
        f"AND o.member_id = c.erased_member_id WHERE o.status = 'paid'"
    )
    anonymous = session.execute(
        text("SELECT 1 FROM report_claimed WHERE customer = :key"), {"key": ANONYMOUS}
    ).first()
    if anonymous:  # the erased guest orders (no customer, no member): read only when marked
        source += (
            f" UNION ALL {PAID_ORDER} WHERE o.customer_id IS NULL AND o.member_id IS NULL "
            f"AND o.status = 'paid'"
        )
    session.execute(text(f"INSERT INTO report_orders ({FACT_COLUMNS}) {facts_sql(sqlite, source)}"))
    session.execute(
        text(
            "INSERT INTO report_customers (customer, first_at, first_month, orders, revenue) "
            + CUSTOMERS_FROM_FACTS.format(facts="report_orders", where=f"WHERE {mine}")
        )
    )
    _cohort_deltas(session, "", f"AND {mine}")  # and their new one in
    session.execute(text("DELETE FROM report_cohorts WHERE customers = 0"))
    session.execute(text("DELETE FROM report_cohort_cells WHERE customers = 0"))
    return claimed


def _cohort_deltas(session: Session, sign: str, where: str) -> None:
    """Add (sign "") or subtract (sign "-") the cohort contributions of the customers `where`
    selects, as their rows stand."""
    session.execute(
        text(
            "INSERT INTO report_cohorts (first_month, customers, orders, revenue, repeaters) "
            + COHORTS_FROM_CUSTOMERS.format(
                sign=sign, customers="report_customers", where="WHERE true " + where
            )
            + " ON CONFLICT (first_month) DO UPDATE SET "
            "customers = report_cohorts.customers + excluded.customers, "
            "orders = report_cohorts.orders + excluded.orders, "
            "revenue = report_cohorts.revenue + excluded.revenue, "
            "repeaters = report_cohorts.repeaters + excluded.repeaters"
        )
    )
    session.execute(
        text(
            "INSERT INTO report_cohort_cells (first_month, months_since, customers) "
            + CELLS_FROM_FACTS.format(sign=sign, facts="report_orders", where=where)
            + " ON CONFLICT (first_month, months_since) DO UPDATE SET "
            "customers = report_cohort_cells.customers + excluded.customers"
        )
    )


def _refresh_members(session: Session, sqlite: bool, batch_size: int) -> int:
    _claim_table(session, sqlite, "report_claimed_members", "member_id BIGINT PRIMARY KEY")
    limit = {"n": batch_size}
    if sqlite:
        session.execute(
            text(
                "INSERT INTO report_claimed_members SELECT member_id FROM report_dirty_members "
                "LIMIT :n"
            ),
            limit,
        )
        session.execute(
            text(
                "DELETE FROM report_dirty_members "
                "WHERE member_id IN (SELECT member_id FROM report_claimed_members)"
            )
        )
    else:
        session.execute(
            text(
                "WITH claimed AS (DELETE FROM report_dirty_members WHERE member_id IN ("
                "SELECT member_id FROM report_dirty_members LIMIT :n FOR UPDATE SKIP LOCKED) "
                "RETURNING member_id) "
                "INSERT INTO report_claimed_members SELECT member_id FROM claimed"
            ),
            limit,
        )
    claimed = int(session.execute(text("SELECT count(*) FROM report_claimed_members")).scalar_one())
    if not claimed:
        return 0
    mine = "member_id IN (SELECT member_id FROM report_claimed_members)"
    session.execute(text(f"DELETE FROM report_members WHERE {mine}"))
    session.execute(
        text(
            f"INSERT INTO report_members ({MEMBER_COLUMNS}) "
            + MEMBERS_FROM_ORDERS.format(where=f"AND {mine}")
        )
    )
    return claimed


def _db_now(session: Session) -> datetime:
    if _sqlite(session):
        return utcnow()
    return _aware(session.execute(text("SELECT clock_timestamp()")).scalar_one())


def _aware(value) -> datetime:
    if isinstance(value, str):  # SQLite text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _bind(sqlite: bool, value: datetime):
    """A datetime as a raw parameter, stored as the UTC type stores it."""
    if sqlite:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
