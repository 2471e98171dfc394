"""The program at a glance: the console's dashboard and `GET /v1/reports/overview`, one
computation for both. Set-based SQL only (a few aggregate queries, none per member or entry).

The flows (points per month, conversions, repeat purchase rate and CLV) cover the window of
the last 12 calendar months in UTC: from the first day of the month eleven months before
`now`'s up to `now` (this month so far and the eleven before). The stocks (members, points
outstanding) are as they stand now.
"""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import Row, and_, case, func, select
from sqlalchemy.orm import Session

from loyalty.hooks import PointValue, ReportConversions, ReportPointValue
from loyalty.ledger import EARNING_KINDS, LedgerEntry
from loyalty.members.models import Member
from loyalty.orders.models import Order
from loyalty.program.service import get_program
from loyalty.reports import ledger_months
from loyalty.reports.aggregates import data_as_of, refresh_for_read
from loyalty.reports.models import ReportMember
from loyalty.reports.service import (
    PAID,
    _decimal,
    _is_current,
    _month_index,
    _month_label,
    retention_groups,
    tune,
)

MONTHS = 12  # months shown, this one included
ACTIVE_DAYS = 90  # a member is active with a paid order this recent
REDEEMING_KINDS = ("redeem", "redeem_cancel")  # spent on rewards, and given back on a cancel
EXPIRING_KINDS = ("expire",)
MONTH_FIGURES = ("points_earned", "points_redeemed", "points_expired", "referral_conversions")
_PER_POINT = Decimal("0.0001")


def window_start(now: datetime) -> datetime:
    """Midnight UTC on the first day of the month `MONTHS - 1` months before `now`'s."""
    now = now.astimezone(UTC)
    index = now.year * 12 + now.month - 1 - (MONTHS - 1)
    year, month = divmod(index, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


def overview(
    session: Session,
    now: datetime,
    *,
    conversions: ReportConversions | None = None,
    point_value: ReportPointValue | None = None,
) -> dict[str, Any]:
    """The overview's figures at `now` (see docs/console.md, "Dashboard", for each), with
    the aggregates' `data_as_of` (the retention figures and the active members are read
    from them)."""
    refresh_for_read(session)
    tune(session)
    start = window_start(now)
    first = start.year * 12 + start.month - 1
    months = {_month_label(first + k): _empty_month() for k in range(MONTHS)}
    if _rollup_enabled():
        _points_by_month_rollup(session, start, now, months)
    else:
        _points_by_month(session, start, now, months)
    if conversions is not None:
        _conversions_by_month(session, conversions, start, now, months)
    earned = sum(m["points_earned"] for m in months.values())
    redeemed = sum(m["points_redeemed"] for m in months.values())
    expired = sum(m["points_expired"] for m in months.values())
    retained = retention_groups(session, start, now)
    stocks = _stocks(session)
    return {
        "as_of": now,
        "data_as_of": data_as_of(session),
        "from": start,
        "to": now,
        "currency": get_program(session).currency,
        "members": stocks.members,
        "active_members": _active_members(session, now),
        "active_days": ACTIVE_DAYS,
        "points": _points(stocks, point_value(session, now) if point_value else None),
        "points_earned": earned,
        "points_redeemed": redeemed,
        "points_expired": expired,
        "redemption_rate": _decimal(redeemed, earned, 100) if earned > 0 else None,
        "retention": retained,
        "referral_conversions": sum(m["referral_conversions"] for m in months.values()),
        "months": [{"month": label, **figures} for label, figures in months.items()],
    }


def _empty_month() -> dict[str, int]:
    return dict.fromkeys(MONTH_FIGURES, 0)


_LIVE = Member.erased_at.is_(None)  # an erased member is no one to count or to owe


def _stocks(session: Session) -> Row:
    """Live members, and the points they hold — `available` (a negative balance owes nothing
    and takes nothing off another member's) and `pending` — in one pass over `members`."""
    return session.execute(
        select(
            func.count().label("members"),
            func.coalesce(
                func.sum(case((Member.points_available > 0, Member.points_available), else_=0)),
                0,
            ).label("available"),
            func.coalesce(func.sum(Member.points_pending), 0).label("pending"),
        ).where(_LIVE)
    ).one()


def _active_members(session: Session, now: datetime) -> int:
    """Live members with a paid order in [now − ACTIVE_DAYS, now). When every paid order is
    before `now` (the usual case), that is a member not erased whose last paid order
    (`report_members`, which carries whether its member is erased) is in the range: a range of
    the partial index `ix_report_members_last_at`, index-only. Else (orders dated after
    `now`), a range of the index of members' paid orders by time
    (`ix_orders_paid_member_occurred_at`), its predicate spelled out so the database may use
    it."""
    since = now - timedelta(days=ACTIVE_DAYS)
    if _is_current(session, now):
        return (
            session.scalar(
                select(func.count())
                .select_from(ReportMember)
                .where(~ReportMember.erased)
                .where(ReportMember.last_at >= since, ReportMember.last_at < now)
            )
            or 0
        )
    buyers = (
        select(Order.member_id)
        .join(Member, Member.id == Order.member_id)
        .where(
            PAID,
            Order.member_id.is_not(None),
            _LIVE,
            Order.occurred_at >= since,
            Order.occurred_at < now,
        )
        .group_by(Order.member_id)
        .subquery()
    )
    return session.scalar(select(func.count()).select_from(buyers)) or 0


def _points(stocks: Row, value: PointValue | None) -> dict[str, Any]:
    """Points the program owes live members: available plus pending; their money value at
    `value`."""
    available, pending = int(stocks.available), int(stocks.pending)
    outstanding = available + pending
    liability = None
    if value is not None:  # exact, then rounded half up to a whole minor unit
        liability = _round_half_up(Fraction(outstanding * value.money, value.points))
    return {
        "available": available,
        "pending": pending,
        "outstanding": outstanding,
        "value": None
        if value is None
        else {
            "money": value.money,
            "points": value.points,
            "per_point": str(
                (Decimal(value.money) / Decimal(value.points)).quantize(
                    _PER_POINT, rounding=ROUND_HALF_UP
                )
            ),
            "reward_id": value.reward_id,
            "reward_name": value.reward_name,
        },
        "liability": liability,
    }


def _round_half_up(value: Fraction) -> int:
    whole, rest = divmod(value.numerator, value.denominator)
    return whole + (1 if 2 * rest >= value.denominator else 0)


def _points_by_month(
    session: Session, start: datetime, now: datetime, months: dict[str, dict[str, int]]
) -> None:
    """Per month of the entries' `occurred_at`: earned = the earning kinds' points (what
    lifetime points count: earned, net of reversals and clawbacks, adjustments included),
    redeemed = points spent on rewards less those returned by canceled redemptions,
    expired = points expired; pending points count when posted."""
    month = _month_index(session, LedgerEntry.occurred_at)

    def points_of(kinds: tuple[str, ...], sign: int) -> Any:
        return func.coalesce(
            func.sum(case((LedgerEntry.kind.in_(kinds), sign * LedgerEntry.points), else_=0)), 0
        )

    rows = session.execute(
        select(
            month.label("month"),
            points_of(EARNING_KINDS, 1).label("earned"),
            points_of(REDEEMING_KINDS, -1).label("redeemed"),
            points_of(EXPIRING_KINDS, -1).label("expired"),
        )
        .where(and_(LedgerEntry.occurred_at >= start, LedgerEntry.occurred_at < now))
        .group_by(month)
    )
    for row in rows:  # one row per month
        figures = months.get(_month_label(row.month))
        if figures is not None:
            figures["points_earned"] = int(row.earned)
            figures["points_redeemed"] = int(row.redeemed)
            figures["points_expired"] = int(row.expired)


def _rollup_enabled() -> bool:
    return not has_app_context() or current_app.config.get("LEDGER_MONTHS_ROLLUP", True)


def _points_by_month_rollup(
    session: Session, start: datetime, now: datetime, months: dict[str, dict[str, int]]
) -> None:
    """What `_points_by_month` gives, from the ledger's monthly rollup (see
    `loyalty.reports.ledger_months`): a read of at most 12 months × kinds cells and the deltas
    not folded yet, less the deltas dated after `now` (an order a store's clock dated a minute
    ahead). Only when a cell or delta of `now`'s month holds entries on both sides of `now` (a
    report of a past moment, or a bulk insert dated across it) is that one month counted from
    the ledger."""
    utc_now = now.astimezone(UTC)
    first, last = ledger_months.month_of(start), ledger_months.month_of(utc_now)
    figures_of = (
        ("points_earned", EARNING_KINDS, 1),
        ("points_redeemed", REDEEMING_KINDS, -1),
        ("points_expired", EXPIRING_KINDS, -1),
    )
    cells, exact = ledger_months.cells_before(session, first, last, now)
    for (month, kind), points in cells.items():
        figures = months.get(_month_label(month))
        if figures is None:
            continue
        for name, kinds, sign in figures_of:
            if kind in kinds:
                figures[name] += sign * points
    if not exact:
        this_month = _month_label(last)
        months[this_month].update(dict.fromkeys(MONTH_FIGURES[:3], 0))
        month_start = datetime(utc_now.year, utc_now.month, 1, tzinfo=UTC)
        _points_by_month(session, max(start, month_start), now, months)


def _conversions_by_month(
    session: Session,
    conversions: ReportConversions,
    start: datetime,
    now: datetime,
    months: dict[str, dict[str, int]],
) -> None:
    converted = conversions().subquery()
    month = _month_index(session, converted.c.at)
    rows = session.execute(
        select(month.label("month"), func.count().label("conversions"))
        .where(converted.c.at >= start, converted.c.at < now)
        .group_by(month)
    )
    for row in rows:
        figures = months.get(_month_label(row.month))
        if figures is not None:
            figures["referral_conversions"] = int(row.conversions)
