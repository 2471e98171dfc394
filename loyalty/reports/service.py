"""Retention reports over the paid orders the service has seen, answered from the aggregates
(`loyalty.reports.models`, kept by `loyalty.reports.aggregates`).

The figures are exactly those `loyalty.reports.reference` computes from `orders` (it defines
them; `loyalty verify-reports` and the tests compare the two). What each costs:

- retention over [from, to): one pass over the period's paid orders (`report_orders` by
  `occurred_at`) and a count of the customers whose first order is before `from` (an index);
- cohorts by first order month: the rollups, a few rows per month of history; by a domain's
  label: the labelled customers and their orders, the rest ("none") by difference;
- segments: one row per live member (`report_members`); as of a time before the latest paid
  order, from `report_orders` (the members' orders before it).

Every answer carries `data_as_of`: every event committed before it is counted. On the primary,
a report first refreshes the aggregates when few customers wait (REPORTS_REFRESH_ON_READ_MAX).
"""

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import and_, case, func, literal, or_, select, text, union
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select

from loyalty.paging import Page
from loyalty.program.service import get_program
from loyalty.reports import reference
from loyalty.reports.aggregates import data_as_of, refresh_for_read
from loyalty.reports.models import ReportCohort, ReportCohortCell, ReportCustomer
from loyalty.reports.models import ReportMember as RM
from loyalty.reports.models import ReportOrder as RO
from loyalty.reports.reference import (  # noqa: F401 (the reports' vocabulary, re-exported)
    CSV_COLUMNS,
    CUSTOMER,
    DEFAULT_HIGH_VALUE_TOP,
    FORMULA_STARTS,
    NO_COHORT,
    ORDER_VALUE,
    PAID,
    SEGMENTS,
    SegmentMember,
    _decimal,
    _epoch,
    _month_index,
    _month_label,
    _whole,
    csv_cell,
    segments_csv,
)


def tune(session: Session) -> None:
    """On PostgreSQL, this transaction's planner settings for reports: REPORTS_WORK_MEM for
    each sort and hash (a segment's sort of every member spills to disk at the default 4 MB)
    and no JIT compilation unless REPORTS_JIT (compiling a pass's twenty-odd aggregates took
    longer than running them)."""
    if session.get_bind().dialect.name != "postgresql" or not has_app_context():
        return
    config = current_app.config
    work_mem = str(config.get("REPORTS_WORK_MEM") or "").strip()
    if work_mem:
        session.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": work_mem})
    if not config.get("REPORTS_JIT", False):
        session.execute(text("SELECT set_config('jit', 'off', true)"))


# --- Retention ---------------------------------------------------------------------------------


def retention(session: Session, start: datetime, end: datetime) -> dict:
    """Retention figures for orders in [start, end), overall, for members and for non-members
    (`reference.retention`'s, from the per-order facts)."""
    refresh_for_read(session)
    tune(session)
    blocks = _retention_blocks(session, start, end)
    return {
        "from": start,
        "to": end,
        "currency": get_program(session).currency,
        "data_as_of": data_as_of(session),
        **blocks["all"],
        "members": blocks["members"],
        "non_members": blocks["non_members"],
    }


def _retention_blocks(session: Session, start: datetime, end: datetime) -> dict[str, dict]:
    """One pass over the period's orders. Per block, with each order's previous, second
    previous and next order of its customer (within the block's orders): a customer is active
    on their first order in the period (previous one before it), new when that is their first
    ever, a repeater on their second in the period; their lifetime value is the running total
    at their last order before `end`; the gaps between consecutive orders in the period add up
    to last − first."""
    member = RO.member_id.is_not(None)
    blocks: dict[str, tuple] = {
        "all": (None, RO.prev_at, RO.prev2_at, RO.next_at, RO.cum_value),
        "members": (member, RO.side_prev_at, RO.side_prev2_at, RO.side_next_at, RO.side_cum_value),
        "non_members": (
            ~member,
            RO.side_prev_at,
            RO.side_prev2_at,
            RO.side_next_at,
            RO.side_cum_value,
        ),
    }
    epoch = _epoch(session, RO.occurred_at)
    columns = []
    for name, (scope, prev, prev2, nxt, cum) in blocks.items():

        def where(condition: ColumnElement[bool] | None, scope: Any = scope) -> Any:
            parts = [c for c in (scope, condition) if c is not None]
            return and_(*parts) if len(parts) > 1 else parts[0] if parts else None

        def count_if(condition: ColumnElement[bool] | None) -> ColumnElement[Any]:
            test = where(condition)
            return func.count() if test is None else func.count().filter(test)

        def sum_if(condition: ColumnElement[bool] | None, value: Any) -> ColumnElement[Any]:
            test = where(condition)
            total = func.sum(value) if test is None else func.sum(value).filter(test)
            return func.coalesce(total, 0)

        again = prev >= start  # the previous order is in the period too
        columns += [
            count_if(or_(prev.is_(None), prev < start)).label(f"{name}_active"),
            count_if(prev.is_(None)).label(f"{name}_new"),
            count_if(and_(again, or_(prev2.is_(None), prev2 < start))).label(f"{name}_repeaters"),
            count_if(None).label(f"{name}_orders"),
            sum_if(None, RO.value).label(f"{name}_revenue"),
            sum_if(or_(nxt.is_(None), nxt >= end), cum).label(f"{name}_lifetime_value"),
            sum_if(again, epoch - _epoch(session, prev)).label(f"{name}_gap_seconds"),
            count_if(again).label(f"{name}_gaps"),
        ]
    # One pass over the period's rows of the covering index `ix_report_orders_occurred_at`.
    row = session.execute(
        select(*columns).where(RO.occurred_at >= start, RO.occurred_at < end)
    ).one()
    # Customers whose first order (up to `end`) is before `start`: counts over the partial
    # indexes of first orders (overall, and on each side).
    before = min(start, end)
    overall = session.execute(
        select(func.count()).where(RO.prev_at.is_(None), RO.occurred_at < before)
    ).scalar_one()
    sides = session.execute(
        select(
            func.count().filter(member),
            func.count().filter(~member),
        ).where(RO.side_prev_at.is_(None), RO.occurred_at < before)
    ).one()
    firsts = (overall, sides[0], sides[1])
    figures = row._mapping
    return {
        name: _figures(
            {k[len(name) + 1 :]: v for k, v in figures.items() if k.startswith(name + "_")},
            at_start,
        )
        for name, at_start in zip(blocks, firsts, strict=True)
    }


def _figures(row: dict, at_start: int) -> dict:
    """The retention block of `reference._retention_block` from its sums."""
    active_customers, new = int(row["active"]), int(row["new"])
    gap_days = Decimal(str(row["gap_seconds"])) / reference._SECONDS_PER_DAY
    return {
        "customers": active_customers,
        "new_customers": new,
        "returning_customers": active_customers - new,
        "customers_at_start": int(at_start),
        "orders": int(row["orders"]),
        "revenue": int(row["revenue"]),
        "average_order_value": _whole(row["revenue"], row["orders"]),
        "repeat_purchase_rate": _decimal(row["repeaters"], active_customers, 100),
        "orders_per_customer": _decimal(row["orders"], active_customers),
        "avg_days_between_orders": _decimal(gap_days, row["gaps"]),
        "clv": _whole(row["lifetime_value"], active_customers),
        "retention_rate": _decimal(active_customers - new, at_start, 100),
    }


# --- Cohorts -----------------------------------------------------------------------------------


def cohorts(session: Session, by: str, sources: dict[str, Callable]) -> dict:
    """`reference.cohorts` from the rollups: by first order month, the cohort rows as kept; by
    a domain's label, the labelled customers' rows, and "none" as the totals less theirs."""
    refresh_for_read(session)
    tune(session)
    cohort_rows = {
        row.first_month: row
        for row in session.execute(
            select(ReportCohort)
            .where(ReportCohort.customers > 0)
            .order_by(ReportCohort.first_month)
        ).scalars()
    }
    cells: dict[int, dict[int, int]] = {}
    for cell in session.execute(
        select(ReportCohortCell).where(ReportCohortCell.customers > 0)
    ).scalars():
        cells.setdefault(cell.first_month, {})[cell.months_since] = cell.customers
    last_month = session.scalar(select(RO.month).order_by(RO.occurred_at.desc()).limit(1))
    groups: list[tuple[Any, dict]] = []
    if by == "first_order_month":
        for month, row in cohort_rows.items():
            groups.append((month, _group(row.customers, row.orders, row.revenue,
                                         row.repeaters, month, cells.get(month, {}))))  # fmt: skip
    else:
        groups = _labelled_groups(session, sources[by], cohort_rows, cells)
    items = []
    for cohort, group in groups:
        span = int(last_month or 0) - int(group["first_month"]) + 1
        by_month = group["retention"]
        items.append(
            {
                "cohort": _month_label(cohort) if by == "first_order_month" else cohort,
                "customers": group["customers"],
                "orders": group["orders"],
                "revenue": group["revenue"],
                "repeat_purchase_rate": _decimal(group["repeaters"], group["customers"], 100),
                "orders_per_customer": _decimal(group["orders"], group["customers"]),
                "clv": _whole(group["revenue"], group["customers"]),
                "retention": [by_month.get(k, 0) for k in range(span)],
            }
        )
    return {
        "by": by,
        "currency": get_program(session).currency,
        "data_as_of": data_as_of(session),
        "items": items,
    }


def _group(
    customers: Any, orders: Any, revenue: Any, repeaters: Any, first_month: Any, retention: dict
) -> dict:
    return {
        "customers": int(customers),
        "orders": int(orders),
        "revenue": int(revenue),
        "repeaters": int(repeaters),
        "first_month": int(first_month),
        "retention": retention,
    }


def _labelled_groups(
    session: Session, source: Callable, cohort_rows: dict, cells: dict
) -> list[tuple[Any, dict]]:
    """The cohorts of a domain's labels (the labelled customers' rows) and "none" (everyone
    else: the totals less the labelled), in the database's order of the labels."""
    labels = source().subquery()
    named = and_(labels.c.cohort.is_not(None), labels.c.cohort != NO_COHORT)
    customers = (
        select(
            labels.c.cohort,
            ReportCustomer.first_month,
            ReportCustomer.orders,
            ReportCustomer.revenue,
        )
        .join(labels, labels.c.customer_id == ReportCustomer.customer)
        .where(named)
        .subquery()
    )
    sums = {
        row.cohort: row
        for row in session.execute(
            select(
                customers.c.cohort,
                func.count().label("customers"),
                func.sum(customers.c.orders).label("orders"),
                func.sum(customers.c.revenue).label("revenue"),
                func.sum(case((customers.c.orders >= 2, 1), else_=0)).label("repeaters"),
                func.min(customers.c.first_month).label("first_month"),
            ).group_by(customers.c.cohort)
        )
    }
    labelled_cells: dict[Any, dict[int, int]] = {}
    for cohort, k, count in session.execute(
        select(labels.c.cohort, RO.months_since, func.count())
        .join(labels, labels.c.customer_id == RO.customer)
        .where(named, RO.months_since.is_not(None))
        .group_by(labels.c.cohort, RO.months_since)
    ):
        labelled_cells.setdefault(cohort, {})[int(k)] = int(count)
    labelled_by_month: dict[int, int] = dict(
        session.execute(
            select(customers.c.first_month, func.count()).group_by(customers.c.first_month)
        ).all()
    )
    # "none": the totals less the labelled customers.
    none = _group(
        sum(r.customers for r in cohort_rows.values()) - sum(r.customers for r in sums.values()),
        sum(r.orders for r in cohort_rows.values()) - sum(r.orders for r in sums.values()),
        sum(r.revenue for r in cohort_rows.values()) - sum(r.revenue for r in sums.values()),
        sum(r.repeaters for r in cohort_rows.values()) - sum(r.repeaters for r in sums.values()),
        next((m for m, r in cohort_rows.items() if r.customers > labelled_by_month.get(m, 0)), 0),
        {},
    )
    totals: dict[int, int] = {}
    for by_k in cells.values():
        for k, count in by_k.items():
            totals[k] = totals.get(k, 0) + count
    for by_k in labelled_cells.values():
        for k, count in by_k.items():
            totals[k] -= count
    none["retention"] = totals
    # The labels in the database's own order (its collation), "none" among them.
    order = session.execute(
        union(
            select(customers.c.cohort.label("cohort")), select(literal(NO_COHORT).label("cohort"))
        ).order_by("cohort")
    ).scalars()
    groups = []
    for cohort in order:
        if cohort == NO_COHORT:
            if none["customers"] > 0:
                groups.append((NO_COHORT, none))
            continue
        row = sums[cohort]
        groups.append(
            (
                cohort,
                _group(
                    row.customers,
                    row.orders,
                    row.revenue,
                    row.repeaters,
                    row.first_month,
                    labelled_cells.get(cohort, {}),
                ),  # fmt: skip
            )
        )
    return groups


# --- RFM segments ------------------------------------------------------------------------------


def member_stats(session: Session, as_of: datetime) -> reference.MemberStats:
    """Live members' RFM figures at `as_of` from the aggregates: `report_members` when every
    paid order is before `as_of` (the usual "now"), else the members' orders before `as_of`
    from `report_orders`."""
    latest = session.scalar(select(RO.occurred_at).order_by(RO.occurred_at.desc()).limit(1))
    if latest is None or latest < as_of:
        current = select(
            RM.member_id.label("member_id"),
            RM.last_at.label("last_at"),
            RM.frequency.label("frequency"),
            RM.monetary.label("monetary"),
        ).subquery()
        return lambda at: reference.with_member_orders(current, at)

    def past(at: datetime) -> Select:
        orders = (
            select(
                RO.member_id.label("member_id"),
                func.max(RO.occurred_at).label("last_at"),
                func.count().label("frequency"),
                func.sum(RO.value).label("monetary"),
            )
            .where(RO.member_id.is_not(None), RO.occurred_at < at)
            .group_by(RO.member_id)
            .subquery()
        )
        return reference.with_member_orders(orders, at)

    return past


def segment_thresholds(session: Session, *, as_of: datetime, **given: Any) -> dict:
    """`reference.segment_thresholds` from the aggregates; on PostgreSQL, when every paid
    order is before `as_of`, in one pass over the live buyers (`_current_thresholds`)."""
    refresh_for_read(session)
    tune(session)
    if session.get_bind().dialect.name == "postgresql" and _is_current(session, as_of):
        return _current_thresholds(session, as_of=as_of, **given)
    return reference.segment_thresholds(
        session, as_of=as_of, stats=member_stats(session, as_of), **given
    )


def _is_current(session: Session, as_of: datetime) -> bool:
    """Whether every paid order is before `as_of`: `report_members` then holds the figures."""
    latest = session.scalar(select(RO.occurred_at).order_by(RO.occurred_at.desc()).limit(1))
    return latest is None or latest < as_of


def _current_thresholds(
    session: Session,
    *,
    as_of: datetime,
    active_days: int,
    frequent_orders: int,
    high_value_top: Decimal | None = None,
    high_value_min: int | None = None,
    low_aov_max: int | None = None,
) -> dict:
    """`reference.segment_thresholds` over `report_members` in one statement: the live buyers
    read once, counted, and each threshold taken at its rank by `percentile_disc` (the value
    at position ⌈f × n⌉; f = (rank − ½) / n names exactly the rank `reference` offsets to)."""
    top = None
    if high_value_min is None:
        top = high_value_top if high_value_top is not None else DEFAULT_HIGH_VALUE_TOP
    high_sql = (
        "(SELECT percentile_disc((greatest(1, floor(CAST(:top AS numeric) * n)) - 0.5)"
        " / nullif(n, 0)) WITHIN GROUP (ORDER BY monetary DESC) FROM b)"
        if top is not None
        else "NULL"
    )
    median_sql = (
        "(SELECT percentile_disc(((n - 1) / 2 + 0.5) / nullif(n, 0))"
        " WITHIN GROUP (ORDER BY monetary / frequency) FROM b)"
        if low_aov_max is None
        else "NULL"
    )
    row = session.execute(
        text(
            "WITH b AS MATERIALIZED (SELECT r.monetary, r.frequency FROM report_members r"  # noqa: S608
            " JOIN members m ON m.id = r.member_id WHERE m.erased_at IS NULL"
            " AND m.customer_id IS NOT NULL AND m.enrolled_at <= :as_of)"
            f" SELECT n, {high_sql}, {median_sql} FROM (SELECT count(*) AS n FROM b) c"
        ),
        {"as_of": as_of, "top": top},
    ).one()
    buyers = int(row[0])
    if top is not None:
        high_value_min = None if not buyers else row[1]
    if low_aov_max is None and buyers:
        low_aov_max = int(row[2])
    return {
        "active_days": active_days,
        "frequent_orders": frequent_orders,
        "high_value_top": format(top.normalize(), "f") if top is not None else None,
        "high_value_min": None if high_value_min is None else int(high_value_min),
        "low_aov_max": low_aov_max,
        "buyers": buyers,
    }


def segments(session: Session, *, as_of: datetime, thresholds: dict, **options: Any) -> dict:
    """`reference.segments` from the aggregates, with `data_as_of`: the counts in one pass,
    then the ids listed per segment read in customer id order (`_listed_ids`), not sorted."""
    refresh_for_read(session)
    tune(session)
    stats = member_stats(session, as_of)
    limit = options.get("member_ids_limit", 1000)
    answer = reference.segments(
        session,
        as_of=as_of,
        thresholds=thresholds,
        stats=stats,
        **{**options, "member_ids_limit": 0},
    )
    if limit:
        wanted = {item["segment"]: min(limit, item["count"]) for item in answer["items"]}
        listed = _listed_ids(session, as_of, thresholds, stats, wanted)
        for item in answer["items"]:
            item["member_ids"] = listed.get(item["segment"], [])
            item["member_ids_truncated"] = item["count"] > len(item["member_ids"])
    answer["data_as_of"] = data_as_of(session)
    return answer


IDS_CHUNK = 20_000  # members read per statement while listing ids (doubling)


def _listed_ids(
    session: Session,
    as_of: datetime,
    thresholds: dict,
    stats: reference.MemberStats,
    wanted: dict[str, int],
) -> dict[str, list]:
    """The first `wanted[segment]` customer ids of each segment by customer id (the ids
    `reference.segments` lists): the members read in customer id order (the unique index of
    `members`), a chunk at a time from where the last stopped, only the segments still short
    of their count returned, until each has its ids. Reads as far as the rarest segment's last
    listed member: no sort of every member."""
    labelled = reference._segmented(stats(as_of).subquery(), thresholds, as_of).subquery()
    listed: dict[str, list] = {name: [] for name, n in wanted.items() if n}
    after: str | None = None
    chunk = IDS_CHUNK
    while any(len(listed[name]) < wanted[name] for name in listed):
        short = [name for name in listed if len(listed[name]) < wanted[name]]
        query = select(labelled.c.segment, labelled.c.customer_id).where(
            labelled.c.segment.in_(short)
        )
        if after is not None:
            query = query.where(labelled.c.customer_id > after)
        rows = session.execute(query.order_by(labelled.c.customer_id).limit(chunk)).all()
        if not rows:
            break
        for name, customer_id in rows:
            if name in short and len(listed[name]) < wanted[name]:
                listed[name].append(customer_id)
        after = rows[-1][1]
        if len(rows) < chunk:
            break
        chunk *= 2
    return listed


def segment_rows(
    session: Session, *, as_of: datetime, thresholds: dict, segment: str | None = None
) -> Iterator[tuple]:
    """`reference.segment_rows` from the aggregates, streamed (read as the rows are)."""
    tune(session)
    yield from reference.segment_rows(
        session,
        as_of=as_of,
        thresholds=thresholds,
        segment=segment,
        stats=member_stats(session, as_of),
    )


def segment_members(
    session: Session,
    *,
    as_of: datetime,
    thresholds: dict,
    segment: str,
    limit: int,
    cursor: str | None = None,
) -> Page:
    """`reference.segment_members` from the aggregates."""
    refresh_for_read(session)
    tune(session)
    return reference.segment_members(
        session,
        as_of=as_of,
        thresholds=thresholds,
        segment=segment,
        limit=limit,
        cursor=cursor,
        stats=member_stats(session, as_of),
    )


def segment_member_ids(
    segment: str, *, as_of: datetime, thresholds: dict, session: Session | None = None
) -> Select:
    """The ids of the members of one segment (those `segments` counts in it), as a query:
    from the aggregates with `session` (as they stand: `segment_thresholds` refreshed them),
    else from `orders` (`reference`)."""
    stats = None if session is None else member_stats(session, as_of)
    return reference.segment_member_ids(segment, as_of=as_of, thresholds=thresholds, stats=stats)
