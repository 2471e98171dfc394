"""`loyalty verify-reports`: the aggregates and the reports they answer, compared with a
recomputation from `orders` (`loyalty.reports.reference`). Reads only: refreshes nothing.

Row checks are set-based (EXCEPT both ways) over customers and members not waiting for a
refresh; the report figures are compared only when none waits (otherwise they may differ by
design: the answer's `data_as_of` says so).
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from loyalty.orders.models import Order
from loyalty.reports import aggregates, overview, reference, service
from loyalty.reports.aggregates import (
    CELLS_FROM_FACTS,
    COHORTS_FROM_CUSTOMERS,
    CUSTOMERS_FROM_FACTS,
    FACT_COLUMNS,
    MEMBER_COLUMNS,
    MEMBERS_FROM_ORDERS,
    all_facts_sql,
)
from loyalty.types import utcnow

SAMPLE = 5  # differing rows shown per table

CUSTOMERS_CLEAN = "customer NOT IN (SELECT customer FROM report_dirty_customers)"
MEMBERS_CLEAN = "member_id NOT IN (SELECT member_id FROM report_dirty_members)"


def find_report_drift(
    session: Session,
    sources: dict[str, Callable],
    periods: list[tuple[datetime, datetime]] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Every difference found, one line each (empty: the aggregates are right)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    facts = f"({all_facts_sql(sqlite)})"
    recomputed_facts = facts
    customers = "(" + CUSTOMERS_FROM_FACTS.format(facts=recomputed_facts, where="") + ") y"
    problems: list[str] = []
    problems += _differ(
        session,
        "report_orders",
        f"SELECT {FACT_COLUMNS} FROM report_orders WHERE {CUSTOMERS_CLEAN}",
        f"SELECT {FACT_COLUMNS} FROM {recomputed_facts} r WHERE {CUSTOMERS_CLEAN}",
    )
    problems += _differ(
        session,
        "report_customers",
        "SELECT customer, first_at, first_month, orders, revenue FROM report_customers "
        f"WHERE {CUSTOMERS_CLEAN}",
        f"SELECT customer, first_at, first_month, orders, revenue FROM {customers} "
        f"WHERE {CUSTOMERS_CLEAN}",
    )
    problems += _differ(
        session,
        "report_members",
        f"SELECT {MEMBER_COLUMNS} FROM report_members WHERE {MEMBERS_CLEAN}",
        MEMBERS_FROM_ORDERS.format(where=f"AND {MEMBERS_CLEAN}"),
    )
    waiting = aggregates.pending(session)
    if waiting:
        problems_note = (
            f"note: {waiting} customers/members wait for a refresh; cohort rollups and report "
            "figures not compared (run `flask loyalty reports-refresh` first)"
        )
        return problems + [problems_note] if problems else [problems_note]
    problems += _differ(
        session,
        "report_cohorts",
        "SELECT first_month, customers, orders, revenue, repeaters FROM report_cohorts "
        "WHERE customers <> 0 OR orders <> 0 OR revenue <> 0 OR repeaters <> 0",
        COHORTS_FROM_CUSTOMERS.format(sign="", customers=customers, where=""),
    )
    problems += _differ(
        session,
        "report_cohort_cells",
        "SELECT first_month, months_since, customers FROM report_cohort_cells WHERE customers <> 0",
        CELLS_FROM_FACTS.format(sign="", facts=recomputed_facts, where=""),
    )
    problems += _compare_reports(session, sources, periods, now or utcnow())
    return problems


def _differ(session: Session, table: str, stored: str, recomputed: str) -> list[str]:
    lines = []
    for label, first, second in (
        ("stored, not recomputed", stored, recomputed),
        ("recomputed, not stored", recomputed, stored),
    ):
        query = f"SELECT * FROM ({first} EXCEPT {second}) d"
        count = session.execute(text(f"SELECT count(*) FROM ({query}) c")).scalar_one()
        if count:
            lines.append(f"{table}: {count} row(s) {label}")
            for row in session.execute(text(f"{query} LIMIT {SAMPLE}")):
                lines.append(f"  {tuple(row)}")
    return lines


def default_periods(session: Session, now: datetime) -> list[tuple[datetime, datetime]]:
    """The last 365 and 30 days, and all of history (first to last paid order)."""
    periods = [(now - timedelta(days=365), now), (now - timedelta(days=30), now)]
    first, last = session.execute(
        select(func.min(Order.occurred_at), func.max(Order.occurred_at)).where(reference.PAID)
    ).one()
    if first is not None:
        periods.append((first, last + timedelta(seconds=1)))
    return periods


def _compare_reports(session, sources, periods, now) -> list[str]:
    lines = []
    read_only = session.info.get("read_only")
    session.info["read_only"] = True  # the service must not refresh what is checked
    try:
        for start, end in periods or default_periods(session, now):
            lines += _same(
                f"retention {start.isoformat()}..{end.isoformat()}",
                service.retention(session, start, end),
                reference.retention(session, start, end),
            )
        for by in ["first_order_month", *sorted(sources)]:
            lines += _same(
                f"cohorts by {by}",
                service.cohorts(session, by, sources),
                reference.cohorts(session, by, sources),
            )
        settings: dict[str, Any] = {"active_days": 90, "frequent_orders": 3}
        for as_of in (now, now - timedelta(days=365)):
            mine = service.segment_thresholds(session, as_of=as_of, **settings)
            theirs = reference.segment_thresholds(session, as_of=as_of, **settings)
            lines += _same(f"segment thresholds at {as_of.isoformat()}", mine, theirs)
            lines += _same(
                f"segments at {as_of.isoformat()}",
                service.segments(session, as_of=as_of, thresholds=theirs, member_ids_limit=20),
                reference.segments(session, as_of=as_of, thresholds=theirs, member_ids_limit=20),
            )
        # The overview's figures read from the aggregates (active members, retention).
        figures = overview.overview(session, now)
        lines += _same(
            "overview",
            {"active_members": figures["active_members"], "retention": figures["retention"]},
            {
                "active_members": reference.active_members(session, now, overview.ACTIVE_DAYS),
                "retention": reference.retention_groups(session, overview.window_start(now), now),
            },
        )
    finally:
        session.info["read_only"] = read_only
    return lines


def _same(what: str, mine: dict, theirs: dict) -> list[str]:
    mine = {k: v for k, v in mine.items() if k != "data_as_of"}
    if mine == theirs:
        return []
    keys = sorted(set(mine) | set(theirs))
    differing = [k for k in keys if mine.get(k) != theirs.get(k)]
    return [
        f"{what}: {key}: aggregates {mine.get(key)!r} != recomputed {theirs.get(key)!r}"
        for key in differing
    ]
