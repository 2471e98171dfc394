"""Retention reports over the paid orders the service has seen, computed from `orders` itself:
the definition of every figure, and the recomputation `loyalty verify-reports` and the tests
compare the aggregates with (`loyalty.reports.service` answers from the aggregates).

Every number comes from a few aggregate queries (no Python loop per member or order). An
order's value is its net eligible spend: `eligible_amount − refunded_amount` (goods after
discounts; tax, shipping and gift card purchases excluded; refunds subtracted) — the same money
that counts toward tiers. A customer is a store customer id (an erased member stays one
anonymous customer); "members" are the orders whose `member_id` is set, "non-members" those
without. Times are UTC.
"""

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnExpressionArgument,
    Integer,
    String,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select, Subquery

from loyalty.members.models import Member
from loyalty.orders.models import Order
from loyalty.paging import Page, page_by_id
from loyalty.program.service import get_program

NO_COHORT = "none"
DEFAULT_HIGH_VALUE_TOP = Decimal("0.2")
SEGMENTS = (
    "new_subscribers",  # members without a paid order
    "loyal_high_value",  # high value, active
    "at_risk_high_value",  # high value, inactive
    "low_value_inactive",  # not high value, inactive
    "frequent_low_aov",  # not high value, active, frequent, low average order value
    "other_active",  # the rest: active, not high value, not frequent-and-low-AOV
)
CSV_COLUMNS = ("segment", "customer_id", "recency_days", "frequency", "monetary")
_CENT = Decimal("0.01")
_SECONDS_PER_DAY = Decimal(86400)

ORDER_VALUE = Order.eligible_amount - Order.refunded_amount
PAID = Order.status == "paid"
# Who bought: the store's customer id; an erased member's orders lose it but keep the member,
# so their history still counts, as one anonymous customer ("erased:<member id>"). Erased
# orders without a member (a guest's, or a guest order of an erased member) are together one
# customer with no id, "erased:" (counted in every figure, the cohorts' months included).
CUSTOMER = func.coalesce(
    Order.customer_id, literal("erased:") + cast(Order.member_id, String), literal("erased:")
)


# Live members' RFM figures at an as-of time (`_member_stats`, or the aggregates' own).
MemberStats = Callable[[datetime], Select]

# A count or sum as the database returns it: an int, or a Decimal (PostgreSQL's numeric sums).
Number = int | Decimal


def _decimal(numerator: Number, denominator: Number | None, scale: int = 1) -> str | None:
    """`numerator / denominator × scale` as a decimal string with two places; None for 0/0."""
    if not denominator:
        return None
    value = Decimal(numerator) * scale / Decimal(denominator)
    return str(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _whole(numerator: Number, denominator: Number | None) -> int | None:
    if not denominator:
        return None
    return int((Decimal(numerator) / Decimal(denominator)).quantize(0, rounding=ROUND_HALF_UP))


def _epoch(session: Session, column: ColumnExpressionArgument[datetime]) -> ColumnElement[Any]:
    """Seconds since 1970 of a UTC datetime column, in SQL, on either database."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return extract("epoch", column)


def _month_index(
    session: Session, column: ColumnExpressionArgument[datetime]
) -> ColumnElement[int]:
    """year × 12 + month − 1 of a UTC datetime column (consecutive months differ by one)."""
    if session.get_bind().dialect.name == "postgresql":
        column = func.timezone("UTC", column)  # extract() reads timestamptz in the session zone
    return cast(extract("year", column), Integer) * 12 + cast(extract("month", column), Integer) - 1


# --- Retention ---------------------------------------------------------------------------------


def retention(session: Session, start: datetime, end: datetime) -> dict:
    """Retention figures for orders in [start, end), overall, for members and for non-members."""
    report = _retention_block(session, start, end, None)
    return {
        "from": start,
        "to": end,
        "currency": get_program(session).currency,
        **report,
        "members": _retention_block(session, start, end, Order.member_id.is_not(None)),
        "non_members": _retention_block(session, start, end, Order.member_id.is_(None)),
    }


def _retention_block(
    session: Session, start: datetime, end: datetime, scope: ColumnElement[bool] | None
) -> dict:
    in_period = Order.occurred_at >= start
    epoch = _epoch(session, Order.occurred_at)
    # One row per customer: their orders up to `end` (first ever, in the period, lifetime value).
    customers = (
        select(
            func.min(Order.occurred_at).label("first_at"),
            func.count(case((in_period, 1))).label("orders"),
            func.coalesce(func.sum(case((in_period, ORDER_VALUE), else_=0)), 0).label("revenue"),
            func.sum(ORDER_VALUE).label("lifetime_value"),
            func.min(case((in_period, epoch))).label("first_epoch"),
            func.max(case((in_period, epoch))).label("last_epoch"),
        )
        .where(PAID, Order.occurred_at < end)
        .group_by(CUSTOMER)
    )
    if scope is not None:
        customers = customers.where(scope)
    c = customers.subquery()
    active = c.c.orders > 0
    repeat = c.c.orders >= 2

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    def sum_if(condition: ColumnElement[bool], value: ColumnElement[int]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, value), else_=0)), 0)

    row = session.execute(
        select(
            count_if(active).label("active"),
            count_if(and_(active, c.c.first_at >= start)).label("new"),
            count_if(c.c.first_at < start).label("at_start"),
            count_if(repeat).label("repeaters"),
            sum_if(active, c.c.orders).label("orders"),
            sum_if(active, c.c.revenue).label("revenue"),
            sum_if(active, c.c.lifetime_value).label("lifetime_value"),
            sum_if(repeat, c.c.last_epoch - c.c.first_epoch).label("gap_seconds"),
            sum_if(repeat, c.c.orders - 1).label("gaps"),
        )
    ).one()
    active_customers, new = int(row.active), int(row.new)
    gap_days = Decimal(str(row.gap_seconds)) / _SECONDS_PER_DAY
    return {
        "customers": active_customers,
        "new_customers": new,
        "returning_customers": active_customers - new,
        "customers_at_start": int(row.at_start),
        "orders": int(row.orders),
        "revenue": int(row.revenue),
        "average_order_value": _whole(row.revenue, row.orders),
        "repeat_purchase_rate": _decimal(row.repeaters, active_customers, 100),
        "orders_per_customer": _decimal(row.orders, active_customers),
        "avg_days_between_orders": _decimal(gap_days, row.gaps),
        "clv": _whole(row.lifetime_value, active_customers),
        "retention_rate": _decimal(active_customers - new, row.at_start, 100),
    }


# --- Cohorts -----------------------------------------------------------------------------------


def cohorts(session: Session, by: str, sources: dict[str, Callable]) -> dict:
    """Customers grouped by the month of their first paid order, or by a domain's label.

    `sources[by]()` is a selectable of (`customer_id`, `cohort`), at most one row per customer;
    customers it does not name are in the cohort "none".
    """
    first_month = _month_index(session, func.min(Order.occurred_at))
    per_customer = (
        select(
            CUSTOMER.label("customer_id"),
            first_month.label("first_month"),
            func.count().label("orders"),
            func.sum(ORDER_VALUE).label("revenue"),
        )
        .where(PAID)
        .group_by(CUSTOMER)
        .subquery()
    )
    if by == "first_order_month":
        cohort: ColumnElement[Any] = per_customer.c.first_month
        customers = select(per_customer, cohort.label("cohort")).subquery()
    else:
        labels = sources[by]().subquery()
        cohort = func.coalesce(labels.c.cohort, NO_COHORT)
        customers = (
            select(per_customer, cohort.label("cohort"))
            .outerjoin(labels, labels.c.customer_id == per_customer.c.customer_id)
            .subquery()
        )
    rows = session.execute(
        select(
            customers.c.cohort,
            func.count().label("customers"),
            func.sum(customers.c.orders).label("orders"),
            func.sum(customers.c.revenue).label("revenue"),
            func.sum(case((customers.c.orders >= 2, 1), else_=0)).label("repeaters"),
            func.min(customers.c.first_month).label("first_month"),
        )
        .group_by(customers.c.cohort)
        .order_by(customers.c.cohort)
    ).all()
    # Customers of each cohort with a paid order k months after their own first one: first the
    # distinct (customer, month) pairs, so the count needs no DISTINCT (hash aggregates only).
    month = _month_index(session, Order.occurred_at)
    active_months = (
        select(CUSTOMER.label("customer_id"), month.label("month"))
        .where(PAID)
        .group_by(CUSTOMER, month)
        .subquery()
    )
    months_since = active_months.c.month - customers.c.first_month
    counts = session.execute(
        select(customers.c.cohort, months_since.label("k"), func.count().label("customers"))
        .join(customers, customers.c.customer_id == active_months.c.customer_id)
        .group_by(customers.c.cohort, months_since)
    ).all()
    last_month = session.scalar(
        select(_month_index(session, func.max(Order.occurred_at))).where(PAID)
    )
    retention: dict = {}
    for count in counts:  # one row per (cohort, month), not per customer or order
        retention.setdefault(count.cohort, {})[int(count.k)] = int(count.customers)
    items = []
    for row in rows:
        span = int(last_month or 0) - int(row.first_month) + 1  # orders: a last month
        by_month = retention.get(row.cohort, {})
        items.append(
            {
                "cohort": _month_label(row.cohort) if by == "first_order_month" else row.cohort,
                "customers": int(row.customers),
                "orders": int(row.orders),
                "revenue": int(row.revenue),
                "repeat_purchase_rate": _decimal(row.repeaters, row.customers, 100),
                "orders_per_customer": _decimal(row.orders, row.customers),
                "clv": _whole(row.revenue, row.customers),
                "retention": [by_month.get(k, 0) for k in range(span)],
            }
        )
    return {"by": by, "currency": get_program(session).currency, "items": items}


def _month_label(index: Number) -> str:
    year, month = divmod(int(index), 12)
    return f"{year:04d}-{month + 1:02d}"


# --- The overview's figures from orders -------------------------------------------------------


def active_members(session: Session, now: datetime, days: int) -> int:
    """Members not erased with a paid order in [now − days, now) (the overview's)."""
    buyers = (
        select(Order.member_id)
        .join(Member, Member.id == Order.member_id)
        .where(PAID, Member.erased_at.is_(None))
        .where(Order.occurred_at >= now - timedelta(days=days), Order.occurred_at < now)
        .distinct()
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(buyers)) or 0)


def retention_groups(session: Session, start: datetime, end: datetime) -> dict[str, dict]:
    """The members' and non-members' customers, repeat purchase rate and CLV of `retention`
    over [start, end) (the overview's)."""
    report = retention(session, start, end)
    return {
        group: {key: report[group][key] for key in ("customers", "repeat_purchase_rate", "clv")}
        for group in ("members", "non_members")
    }


# --- RFM segments ------------------------------------------------------------------------------


def segment_thresholds(
    session: Session,
    *,
    as_of: datetime,
    active_days: int,
    frequent_orders: int,
    high_value_top: Decimal | None = None,
    high_value_min: int | None = None,
    low_aov_max: int | None = None,
    stats: MemberStats | None = None,
) -> dict:
    """The thresholds as given, with the high-value and low-AOV ones computed when not."""
    buyers = _buyers(as_of, stats or _member_stats)
    buyer_count = session.scalar(select(func.count()).select_from(buyers)) or 0
    top = None
    if high_value_min is None:
        top = high_value_top if high_value_top is not None else DEFAULT_HIGH_VALUE_TOP
        high_value_min = _high_value_threshold(session, buyers, buyer_count, top)
    if low_aov_max is None:
        low_aov_max = _median_aov(session, buyers, buyer_count)
    return {
        "active_days": active_days,
        "frequent_orders": frequent_orders,
        "high_value_top": format(top.normalize(), "f") if top is not None else None,
        "high_value_min": high_value_min,
        "low_aov_max": low_aov_max,
        "buyers": buyer_count,
    }


def segments(
    session: Session,
    *,
    as_of: datetime,
    thresholds: dict,
    member_ids_limit: int = 1000,
    segment: str | None = None,
    stats: MemberStats | None = None,
) -> dict:
    """Every live member in exactly one RFM segment (see SEGMENTS), with counts and ids; with
    `segment`, that segment's item only."""
    rfm = (stats or _member_stats)(as_of).subquery()
    labelled = _in_segment(_segmented(rfm, thresholds, as_of), segment).subquery()
    counted = session.execute(select(labelled.c.segment, func.count()).group_by(labelled.c.segment))
    counts: dict[str, int] = {name: count for name, count in counted}
    rank = func.row_number().over(partition_by=labelled.c.segment, order_by=labelled.c.customer_id)
    ranked = select(labelled.c.segment, labelled.c.customer_id, rank.label("rank")).subquery()
    listed: dict = {}
    if member_ids_limit:
        for name, customer_id in session.execute(
            select(ranked.c.segment, ranked.c.customer_id)
            .where(ranked.c.rank <= member_ids_limit)
            .order_by(ranked.c.segment, ranked.c.rank)
        ):  # at most member_ids_limit rows per segment: listing ids, not counting
            listed.setdefault(name, []).append(customer_id)
    return {
        "as_of": as_of,
        "currency": get_program(session).currency,
        "buyers": thresholds["buyers"],
        "thresholds": {k: v for k, v in thresholds.items() if k != "buyers"},
        "items": [
            {
                "segment": name,
                "count": counts.get(name, 0),
                "member_ids": listed.get(name, []),
                "member_ids_truncated": counts.get(name, 0) > len(listed.get(name, [])),
            }
            for name in SEGMENTS
            if segment is None or name == segment
        ],
    }


def segment_rows(
    session: Session,
    *,
    as_of: datetime,
    thresholds: dict,
    segment: str | None = None,
    stats: MemberStats | None = None,
) -> Iterator[tuple]:
    """One (segment, customer id, recency days, frequency, monetary) row per member (of
    `segment` only, when given), streamed."""
    rfm = (stats or _member_stats)(as_of).subquery()
    labelled = _in_segment(_segmented(rfm, thresholds, as_of), segment).subquery()
    result = session.execute(
        select(
            labelled.c.segment,
            labelled.c.customer_id,
            labelled.c.last_at,
            labelled.c.frequency,
            labelled.c.monetary,
        )
        .order_by(labelled.c.customer_id)
        .execution_options(yield_per=1000)
    )
    for row in result:
        recency = (as_of - row.last_at).days if row.last_at is not None else None
        yield row.segment, row.customer_id, recency, row.frequency, row.monetary


@dataclass(frozen=True)
class SegmentMember:
    member_id: int
    customer_id: str
    last_at: datetime | None
    recency_days: int | None  # whole days since the last paid order; None without one
    frequency: int  # paid orders
    monetary: int  # net spend, minor units


def segment_members(
    session: Session,
    *,
    as_of: datetime,
    thresholds: dict,
    segment: str,
    limit: int,
    cursor: str | None = None,
    stats: MemberStats | None = None,
) -> Page:
    """A page of `SegmentMember`s of `segment`, newest member first. A cursor this list never
    made is refused (`ValidationFailed`)."""
    rfm = (stats or _member_stats)(as_of).subquery()
    labelled = _in_segment(_segmented(rfm, thresholds, as_of), segment).subquery()
    query = select(
        labelled.c.member_id,
        labelled.c.customer_id,
        labelled.c.last_at,
        labelled.c.frequency,
        labelled.c.monetary,
    )
    page = page_by_id(
        session, query, labelled.c.member_id, limit, cursor, row_id=lambda row: row.member_id
    )
    return page.map(
        lambda row: SegmentMember(
            member_id=row.member_id,
            customer_id=row.customer_id,
            last_at=row.last_at,
            recency_days=(as_of - row.last_at).days if row.last_at is not None else None,
            frequency=int(row.frequency),
            monetary=int(row.monetary),
        )
    )


def segment_member_ids(
    segment: str, *, as_of: datetime, thresholds: dict, stats: MemberStats | None = None
) -> Select:
    """The ids of the members of one segment (those `segments` counts in it), as a query."""
    labelled = _segmented((stats or _member_stats)(as_of).subquery(), thresholds, as_of).subquery()
    return (
        select(Member.id)
        .join(labelled, labelled.c.customer_id == Member.customer_id)
        .where(labelled.c.segment == segment)
    )


# A spreadsheet opening the file runs a cell that starts with one of these as a formula
# (`=HYPERLINK(...)`, `@SUM(...)`, `+cmd|...`): OWASP's "CSV injection". Customer ids are the
# store's text, so such a cell gets a leading single quote and reads as text. Numbers are ours.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A value as a CSV cell no spreadsheet takes for a formula (None: empty)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def segments_csv(rows: Iterator[tuple]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(rows, 1):
        writer.writerow([csv_cell(value) for value in row])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _member_stats(as_of: datetime) -> Select:
    """Live members enrolled by `as_of`: last paid order, paid orders, net spend (0 without)."""
    orders = (
        select(
            Order.member_id.label("member_id"),
            func.max(Order.occurred_at).label("last_at"),
            func.count().label("frequency"),
            func.sum(ORDER_VALUE).label("monetary"),
        )
        .where(PAID, Order.member_id.is_not(None), Order.occurred_at < as_of)
        .group_by(Order.member_id)
        .subquery()
    )
    return with_member_orders(orders, as_of)


def with_member_orders(orders: Subquery, as_of: datetime) -> Select:
    """Live members enrolled by `as_of` with their `orders` row (member_id, last_at,
    frequency, monetary), 0 orders without one."""
    return (
        select(
            Member.id.label("member_id"),
            Member.customer_id.label("customer_id"),
            orders.c.last_at,
            func.coalesce(orders.c.frequency, 0).label("frequency"),
            func.coalesce(orders.c.monetary, 0).label("monetary"),
        )
        .outerjoin(orders, orders.c.member_id == Member.id)
        .where(
            Member.erased_at.is_(None),
            Member.customer_id.is_not(None),
            Member.enrolled_at <= as_of,
        )
    )


def _buyers(as_of: datetime, member_stats: MemberStats) -> Subquery:
    stats = member_stats(as_of).subquery()
    return select(stats).where(stats.c.frequency > 0).subquery()


def _high_value_threshold(
    session: Session, buyers: Subquery, buyer_count: int, top: Decimal
) -> int | None:
    """The net spend of the buyer ranked ⌊top × buyers⌋ (at least 1st) from the top: buyers at
    or above it are high value, ties included."""
    if not buyer_count:
        return None
    rank = max(1, int(top * buyer_count))
    return session.scalar(
        select(buyers.c.monetary).order_by(buyers.c.monetary.desc()).offset(rank - 1).limit(1)
    )


def _median_aov(session: Session, buyers: Subquery, buyer_count: int) -> int | None:
    """The lower median of buyers' average order values, in whole minor units (floored)."""
    if not buyer_count:
        return None
    aov = buyers.c.monetary / buyers.c.frequency  # a decimal on PostgreSQL (sum is NUMERIC)
    median = session.scalar(select(aov).order_by(aov).offset((buyer_count - 1) // 2).limit(1))
    # Floored here, so both databases compare with (and the answer shows) the same integer.
    return None if median is None else int(median)


def _in_segment(labelled: Select, segment: str | None) -> Select:
    """`labelled` (a `_segmented` query) kept to one segment, or all of them for None."""
    if segment is None:
        return labelled
    inner = labelled.subquery()
    return select(inner).where(inner.c.segment == segment)


def _segmented(stats: Subquery, thresholds: dict, as_of: datetime) -> Select:
    active = stats.c.last_at > as_of - timedelta(days=thresholds["active_days"])
    high_value: ColumnElement[bool]
    low_aov: ColumnElement[bool]
    if thresholds["high_value_min"] is None:
        high_value = literal(False)
    else:
        # Net spend of 0 (every order refunded) is never high value, whatever the threshold.
        high_value = and_(stats.c.monetary >= thresholds["high_value_min"], stats.c.monetary > 0)
    if thresholds["low_aov_max"] is None:
        low_aov = literal(False)
    else:  # monetary / frequency < low_aov_max, in integers
        # As BIGINT: the threshold goes up to MAX_MONEY, past what an INTEGER parameter holds.
        low_aov = stats.c.monetary < stats.c.frequency * literal(
            thresholds["low_aov_max"], BigInteger
        )
    segment = case(
        (stats.c.frequency == 0, "new_subscribers"),
        (and_(high_value, active), "loyal_high_value"),
        (high_value, "at_risk_high_value"),
        (or_(stats.c.last_at.is_(None), ~active), "low_value_inactive"),
        (and_(stats.c.frequency >= thresholds["frequent_orders"], low_aov), "frequent_low_aov"),
        else_="other_active",
    )
    return select(stats, segment.label("segment"))
