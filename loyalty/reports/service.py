"""Retention reports over the paid orders the service has seen, answered from the aggregates
(`loyalty.reports.models`, kept by `loyalty.reports.aggregates`).

The figures are exactly those `loyalty.reports.reference` computes from `orders` (it defines
them; `loyalty verify-reports` and the tests compare the two). What each costs:

- retention over [from, to): one pass over the period's paid orders (`report_orders` by
  `occurred_at`) and a count of the customers whose first order is before `from` (an index);
- cohorts by first order month: the rollups, a few rows per month of history; by a domain's
  label: the labelled customers and their orders, the rest ("none") by difference;
- segments: the live buyers' rows of `report_members` (which carry the member's customer id,
  erasure and enrolment: `members` is not joined), the members without a paid order by
  difference from an index-only count of the live members; as of a time before the latest
  paid order, from `report_orders` (the members' orders before it).

Every answer carries `data_as_of`: every event committed before it is counted. On the primary,
a report first refreshes the aggregates when few customers wait (REPORTS_REFRESH_ON_READ_MAX).
"""

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import String, and_, case, func, literal, or_, select, text, union
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select, Subquery

from loyalty.members.models import Member
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


RETENTION_SUMS = ("active", "new", "repeaters", "orders", "revenue", "lifetime_value",
                  "gap_seconds", "gaps")  # fmt: skip
RETENTION_BLOCKS = ("all", "members", "non_members")


def _retention_blocks(session: Session, start: datetime, end: datetime) -> dict[str, dict]:
    """The retention blocks (`_figures`) of [start, end): `_retention_sums` and the customers
    at the start."""
    sums = _retention_sums(session, start, end, RETENTION_BLOCKS, RETENTION_SUMS)
    member = RO.member_id.is_not(None)
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
    return {
        name: _figures(sums[name], at_start)
        for name, at_start in zip(RETENTION_BLOCKS, firsts, strict=True)
    }


def _retention_sums(
    session: Session,
    start: datetime,
    end: datetime,
    names: tuple[str, ...],
    wanted: tuple[str, ...],
) -> dict[str, dict]:
    """The `wanted` sums (of RETENTION_SUMS) of the blocks `names` in one pass over the
    period's orders. Per block, with each order's previous, second previous and next order of
    its customer (within the block's orders): a customer is active on their first order in the
    period (previous one before it), new when that is their first ever, a repeater on their
    second in the period; their lifetime value is the running total at their last order
    before `end`; the gaps between consecutive orders in the period add up to last − first."""
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
    for name in names:
        scope, prev, prev2, nxt, cum = blocks[name]

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
        figures = {  # built for every sum, selected only when wanted
            "active": count_if(or_(prev.is_(None), prev < start)),
            "new": count_if(prev.is_(None)),
            "repeaters": count_if(and_(again, or_(prev2.is_(None), prev2 < start))),
            "orders": count_if(None),
            "revenue": sum_if(None, RO.value),
            "lifetime_value": sum_if(or_(nxt.is_(None), nxt >= end), cum),
            "gap_seconds": sum_if(again, epoch - _epoch(session, prev)),
            "gaps": count_if(again),
        }
        columns += [figures[key].label(f"{name}_{key}") for key in wanted]
    # One pass over the period's rows of the covering index `ix_report_orders_occurred_at`.
    row = session.execute(
        select(*columns).where(RO.occurred_at >= start, RO.occurred_at < end)
    ).one()
    found = row._mapping
    return {name: {key: found[f"{name}_{key}"] for key in wanted} for name in names}


def retention_groups(session: Session, start: datetime, end: datetime) -> dict[str, dict]:
    """The members' and non-members' `customers`, `repeat_purchase_rate` and `clv` over
    [start, end), as `retention` gives them, from a pass that sums only what they need
    (the overview's)."""
    names = ("members", "non_members")
    sums = _retention_sums(session, start, end, names, ("active", "repeaters", "lifetime_value"))
    return {
        name: {
            "customers": int(sums[name]["active"]),
            "repeat_purchase_rate": _decimal(sums[name]["repeaters"], sums[name]["active"], 100),
            "clv": _whole(sums[name]["lifetime_value"], sums[name]["active"]),
        }
        for name in names
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


def live_buyers(as_of: datetime) -> Select:
    """The live buyers enrolled by `as_of` with their figures: the rows of `report_members`
    whose member is live (not erased, with a customer id) — `report_members` carries what the
    segments read of the member, so `members` is not read. Their figures are those at `as_of`
    when every paid order is before it (`_is_current`)."""
    return select(
        RM.member_id.label("member_id"),
        RM.customer_id.label("customer_id"),
        RM.last_at.label("last_at"),
        RM.frequency.label("frequency"),
        RM.monetary.label("monetary"),
        RM.aov.label("aov"),
    ).where(~RM.erased, RM.customer_id.is_not(None), RM.enrolled_at <= as_of)


def segment_thresholds(session: Session, *, as_of: datetime, **given: Any) -> dict:
    """`reference.segment_thresholds` from the aggregates. When every paid order is before
    `as_of`, over the live buyers of `report_members` alone (`live_buyers`): counted, and each
    threshold the value at its rank read from an index (`ix_report_members_live_monetary`,
    `ix_report_members_live_aov`) — no sort, no join."""
    refresh_for_read(session)
    tune(session)
    if _is_current(session, as_of):
        return _current_thresholds(session, as_of=as_of, **given)
    return reference.segment_thresholds(
        session, as_of=as_of, stats=member_stats(session, as_of), **given
    )


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
    """`reference.segment_thresholds` over `live_buyers`: the buyers counted, and each
    threshold the value at its rank in an index of the live buyers — the net spend ranked
    ⌊top × buyers⌋ from the top, and the lower median of the average order values kept in
    whole minor units (`aov`, monetary / frequency truncated: truncating keeps the order, so
    the median of the truncated values is the truncated median `reference` takes)."""
    buyers = live_buyers(as_of).subquery()
    count = int(session.scalar(select(func.count()).select_from(buyers)) or 0)
    top = None
    if high_value_min is None:
        top = high_value_top if high_value_top is not None else DEFAULT_HIGH_VALUE_TOP
        if count:
            rank = max(1, int(top * count))
            high_value_min = session.scalar(
                select(buyers.c.monetary)
                .order_by(buyers.c.monetary.desc())
                .offset(rank - 1)
                .limit(1)
            )
    if low_aov_max is None and count:
        aov = buyers.c.aov  # monetary / frequency in integers: `ix_report_members_live_aov`
        low_aov_max = session.scalar(select(aov).order_by(aov).offset((count - 1) // 2).limit(1))
    return {
        "active_days": active_days,
        "frequent_orders": frequent_orders,
        "high_value_top": format(top.normalize(), "f") if top is not None else None,
        "high_value_min": None if high_value_min is None else int(high_value_min),
        "low_aov_max": None if low_aov_max is None else int(low_aov_max),
        "buyers": count,
    }


def _is_current(session: Session, as_of: datetime) -> bool:
    """Whether every paid order is before `as_of`: `report_members` then holds the figures."""
    latest = session.scalar(select(RO.occurred_at).order_by(RO.occurred_at.desc()).limit(1))
    return latest is None or latest < as_of


def segments(
    session: Session,
    *,
    as_of: datetime,
    thresholds: dict,
    member_ids_limit: int = 1000,
    segment: str | None = None,
) -> dict:
    """`reference.segments` from the aggregates, with `data_as_of`. When every paid order is
    before `as_of`: the buyers' counts in one pass over `live_buyers`, the new subscribers
    (live members without a paid order) by difference from the live members enrolled by
    `as_of` (an index-only count); else the counts of `reference.segments` over the members'
    figures at `as_of`. Then the ids listed per segment, read in customer id order
    (`_listed_ids`), not sorted."""
    refresh_for_read(session)
    tune(session)
    if _is_current(session, as_of):
        counts = _current_counts(session, as_of, thresholds)
        answer = {
            "as_of": as_of,
            "currency": get_program(session).currency,
            "buyers": thresholds["buyers"],
            "thresholds": {k: v for k, v in thresholds.items() if k != "buyers"},
            "items": [
                {"segment": name, "count": counts.get(name, 0), "member_ids": [],
                 "member_ids_truncated": counts.get(name, 0) > 0}
                for name in SEGMENTS
                if segment is None or name == segment
            ],
        }  # fmt: skip
        labelled = _current_labelled(as_of, thresholds)
    else:
        stats = member_stats(session, as_of)
        answer = reference.segments(
            session,
            as_of=as_of,
            thresholds=thresholds,
            stats=stats,
            segment=segment,
            member_ids_limit=0,
        )
        everyone = reference._segmented(stats(as_of).subquery(), thresholds, as_of).subquery()
        labelled = {name: everyone for name in SEGMENTS}
    if member_ids_limit:
        wanted = {item["segment"]: min(member_ids_limit, item["count"]) for item in answer["items"]}
        listed = _listed_ids(session, labelled, wanted)
        for item in answer["items"]:
            item["member_ids"] = listed.get(item["segment"], [])
            item["member_ids_truncated"] = item["count"] > len(item["member_ids"])
    answer["data_as_of"] = data_as_of(session)
    return answer


def _current_counts(session: Session, as_of: datetime, thresholds: dict) -> dict[str, int]:
    """Members per segment when `report_members` holds the figures at `as_of`."""
    buyers = reference._segmented(live_buyers(as_of).subquery(), thresholds, as_of).subquery()
    counts = {
        name: int(count)
        for name, count in session.execute(
            select(buyers.c.segment, func.count()).group_by(buyers.c.segment)
        )
    }
    members = session.scalar(
        select(func.count())
        .select_from(Member)
        .where(Member.erased_at.is_(None), Member.customer_id.is_not(None))
        .where(Member.enrolled_at <= as_of)
    )
    counts["new_subscribers"] = int(members or 0) - sum(counts.values())
    return counts


def _current_labelled(as_of: datetime, thresholds: dict) -> dict[str, Subquery]:
    """Per segment, a query of (segment, customer_id) holding its members, when
    `report_members` holds the figures at `as_of`: the buyers' segments over `live_buyers`
    (in customer id order on `ix_report_members_live_customer`, index-only), the new
    subscribers the live members enrolled by `as_of` without a row there."""
    buyers = reference._segmented(live_buyers(as_of).subquery(), thresholds, as_of).subquery()
    new = (
        select(literal("new_subscribers").label("segment"), Member.customer_id)
        .where(Member.erased_at.is_(None), Member.customer_id.is_not(None))
        .where(Member.enrolled_at <= as_of)
        .where(~select(RM.member_id).where(RM.member_id == Member.id).exists())
        .subquery()
    )
    return {name: new if name == "new_subscribers" else buyers for name in SEGMENTS}


IDS_CHUNK = 20_000  # members read per statement while listing ids (doubling)


def _listed_ids(
    session: Session, labelled: dict[str, Subquery], wanted: dict[str, int]
) -> dict[str, list]:
    """The first `wanted[segment]` customer ids of each segment by customer id (the ids
    `reference.segments` lists), from `labelled[segment]` (a query of (segment, customer_id)
    holding at least that segment's members): the members read in customer id order (an
    index), a chunk at a time from where the last stopped, only the segments still short of
    their count returned, until each has its ids. Reads as far as the rarest segment's last
    listed member: no sort of every member. Segments sharing a query are read together."""
    listed: dict[str, list] = {name: [] for name, n in wanted.items() if n}
    queries: dict[int, tuple[Subquery, list[str]]] = {}
    for name in listed:
        query = labelled[name]
        queries.setdefault(id(query), (query, []))[1].append(name)
    for query, names in queries.values():
        after: str | None = None
        chunk = IDS_CHUNK
        while any(len(listed[name]) < wanted[name] for name in names):
            short = [name for name in names if len(listed[name]) < wanted[name]]
            rows, after, walked = _walk(session, query, short, after, chunk)
            for name, customer_id in rows:
                if len(listed[name]) < wanted[name]:
                    listed[name].append(customer_id)
            if walked < chunk:
                break
            chunk *= 2
    return listed


def _walk(
    session: Session, query: Subquery, short: list[str], after: str | None, chunk: int
) -> tuple[list, str | None, int]:
    """The next `chunk` members of `query` after customer id `after`, in customer id order
    (a LIMIT over the index order, whatever the segments' share: the database reads just
    those): the (segment, customer_id) rows among them of the segments `short`, in that
    order, where the chunk ended, and how many it held."""
    step = select(query.c.segment, query.c.customer_id)
    if after is not None:
        step = step.where(query.c.customer_id > after)
    walked = step.order_by(query.c.customer_id).limit(chunk).cte("walked")
    found = select(
        walked.c.segment.label("segment"),
        walked.c.customer_id.label("customer_id"),
        literal(0).label("part"),
    ).where(walked.c.segment.in_(short))
    end = select(
        literal(None, String).label("segment"),
        func.max(walked.c.customer_id).label("customer_id"),
        func.count().label("part"),
    )
    rows = session.execute(found.union_all(end).order_by("part", "customer_id")).all()
    *matched, (_, last, count) = sorted(rows, key=lambda row: row.segment is None)
    return [(row.segment, row.customer_id) for row in matched], last, int(count)


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
