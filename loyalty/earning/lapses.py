"""Lapsed members: the `member.lapsing` event and win-back rules, in one job.

A member *lapses* when `days` pass without a paid order: counted from their last paid order,
or from their enrolment if they joined after it (a member whose only orders predate joining,
an import, say, is not lapsed the day they join). Members who never paid for an order and
erased members never lapse. A lapse is named by the time of that last paid order: a new paid
order, then `days` more without one, is a new lapse. `lapses` below is the one place that
decides who lapsed; a crossing is seen within `LAPSE_WINDOW_DAYS` of it (a job that missed a
few days catches up; a rule created today does not reach back to lapses long past).

The thresholds: `MEMBER_LAPSE_DAYS` (the event alone; 0: none) and the `conditions.days` of
each live lapse rule (trigger `lapse`: fixed points, optionally for some tiers only). The job
`lapsing-members`, per range of members and threshold, set-based like the other jobs:

1. lock the range's members who crossed the threshold;
2. for each live lapse rule of that threshold: one INSERT ... SELECT of their ledger entries
   (kind "bonus", source ("lapse", last paid order's time), the rule's id), ON CONFLICT DO
   NOTHING against the unique index `uq_ledger_entries_lapse` (one entry per member, rule and
   lapse: two machines running the job at once award once), RETURNING the members it inserted
   for; then one UPDATE of exactly those members' balances;
3. one `member.lapsing` per member and crossing (its dedupe key names the lapse and the
   threshold), sent whether or not a rule awarded points: `points_awarded` says how many.
"""

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Integer, String, cast, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from loyalty import ledger, webhooks
from loyalty.earning.models import LAPSE_SOURCE
from loyalty.earning.rules import LAPSE_TRIGGER, Rule, cached_rules
from loyalty.jobs import Progress, in_ranges, lock_members
from loyalty.ledger import AVAILABLE, LedgerEntry
from loyalty.members.models import Member
from loyalty.orders.models import Order
from loyalty.types import UTCDateTime, utcnow

# How far back a crossing is still acted on (a job that was down catches up this far).
LAPSE_WINDOW_DAYS = 7
DAY_SECONDS = 86_400


def thresholds(days: int, rules: list[Rule]) -> dict[int, list[Rule]]:
    """Each threshold (days without a paid order) and the live lapse rules awarding at it."""
    found: dict[int, list[Rule]] = {days: []} if days > 0 else {}
    for rule in rules:
        found.setdefault(rule.conditions["days"], []).append(rule)
    return dict(sorted(found.items()))


def lapsing_members(
    session: Session, now: datetime, batch_size: int, progress: Progress | None = None
) -> int:
    """The `lapsing-members` job: awards of live lapse rules and `member.lapsing` events, for
    every member who crossed a threshold within `LAPSE_WINDOW_DAYS`. Returns awards made plus
    events written. Does nothing while `MEMBER_LAPSE_DAYS` is 0 and no lapse rule is live."""
    # As plain values (they outlive the commit after each range), live at `now`.
    rules = cached_rules(session, (LAPSE_TRIGGER,), now)
    days = current_app.config["MEMBER_LAPSE_DAYS"]
    report = bool(webhooks.subscribed(session, "member.lapsing"))
    crossings = thresholds(days, rules) if report else thresholds(0, rules)
    if not crossings:
        return 0
    changed = 0
    for low, high in in_ranges(session, batch_size, progress):
        for threshold, awarding in crossings.items():
            changed += win_back(session, now, threshold, awarding, low, high)
    return changed


def lapses(session: Session, now: datetime, days: int, low: int, high: int) -> Subquery:
    """Members `low`..`high` who crossed `days` without a paid order within the last
    `LAPSE_WINDOW_DAYS`: `member_id`, `tier_id`, `customer_id`, `points_available`,
    `last_paid_at` (the lapse's name)."""
    last_paid = (
        select(Order.member_id, func.max(Order.occurred_at).label("last_paid_at"))
        .where(Order.member_id.between(low, high), Order.status == "paid")
        .group_by(Order.member_id)
        .subquery()
    )
    quiet_since = _later(session, last_paid.c.last_paid_at, Member.enrolled_at)
    threshold = now - timedelta(days=days)
    return (
        select(
            Member.id.label("member_id"),
            Member.tier_id,
            Member.customer_id,
            Member.points_available,
            last_paid.c.last_paid_at,
        )
        .join(last_paid, last_paid.c.member_id == Member.id)
        .where(
            Member.id.between(low, high),
            Member.erased_at.is_(None),
            Member.customer_id.is_not(None),
            quiet_since <= threshold,
            quiet_since > threshold - timedelta(days=LAPSE_WINDOW_DAYS),
        )
        .subquery("lapses")
    )


def win_back(
    session: Session,
    now: datetime,
    days: int,
    rules: list[Rule],
    low: int,
    high: int,
) -> int:
    """One threshold for members `low`..`high`: lock the lapsed, award `rules`, report."""
    lapsed = lapses(session, now, days, low, high)
    lock_members(session, Member.id.in_(select(lapsed.c.member_id)))
    changed = sum(_award(session, now, days, rule, low, high) for rule in rules)
    return changed + _report(session, now, days, rules, low, high)


def _lapse_name(session: Session, lapsed: Subquery) -> ColumnElement[str]:
    """The lapse as text (the ledger's source id): its last paid order's time, ISO 8601."""
    return webhooks.iso_sql(session.get_bind().dialect.name, lapsed.c.last_paid_at)


def _award(session: Session, now: datetime, days: int, rule: Rule, low: int, high: int) -> int:
    dialect = session.get_bind().dialect.name
    lapsed = lapses(session, now, days, low, high)
    name = _lapse_name(session, lapsed)
    detail = webhooks.json_object(
        dialect,
        rule=literal(rule.name),
        trigger=literal(LAPSE_TRIGGER),
        days=literal(days),
        days_without_order=_whole_days(dialect, lapsed.c.last_paid_at, now),
        last_paid_order_at=name,
    )
    given = exists().where(
        LedgerEntry.member_id == lapsed.c.member_id,
        LedgerEntry.source_type == LAPSE_SOURCE,
        LedgerEntry.rule_id == rule.id,
        LedgerEntry.source_id == name,
    )
    who = [~given]
    if rule.tier_ids:
        who.append(lapsed.c.tier_id.in_(sorted(rule.tier_ids)))
    entries = select(
        lapsed.c.member_id,
        literal("bonus"),
        literal(rule.points),
        literal(AVAILABLE),
        literal(LAPSE_SOURCE),
        name,
        literal(rule.id),
        detail,
        literal(now, UTCDateTime()),
        literal(utcnow(), UTCDateTime()),
    ).where(*who)
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    awarded = session.scalars(
        insert_(LedgerEntry)
        .from_select(ledger.entry_columns(rule=True), entries)
        .on_conflict_do_nothing()
        .returning(LedgerEntry.member_id)
    ).all()
    if awarded:  # exactly the members whose entry went in
        session.execute(
            update(Member)
            .where(Member.id.in_(awarded))
            .values(
                points_available=Member.points_available + rule.points,
                points_lifetime=Member.points_lifetime + rule.points,
            ),
            execution_options={"synchronize_session": False},
        )
    return len(awarded)


def _report(
    session: Session, now: datetime, days: int, rules: list[Rule], low: int, high: int
) -> int:
    """`member.lapsing` for this threshold's crossings, with the points its rules awarded
    for the lapse (in this run or an earlier one)."""
    if not webhooks.subscribed(session, "member.lapsing"):
        return 0
    dialect = session.get_bind().dialect.name
    lapsed = lapses(session, now, days, low, high)
    name = _lapse_name(session, lapsed)
    awarded: ColumnElement[int] = literal(0)
    if rules:
        awarded = (
            select(func.coalesce(func.sum(LedgerEntry.points), 0))
            .where(
                LedgerEntry.member_id == lapsed.c.member_id,
                LedgerEntry.source_type == LAPSE_SOURCE,
                LedgerEntry.source_id == name,
                LedgerEntry.rule_id.in_([rule.id for rule in rules]),
            )
            .scalar_subquery()
        )
    key = (
        literal("member.lapsing:") + cast(lapsed.c.member_id, String) + literal(":")
        + webhooks.epoch_sql(dialect, lapsed.c.last_paid_at) + literal(f":{days}")
    )  # fmt: skip
    rows = select(
        webhooks.json_object(
            dialect,
            customer_id=lapsed.c.customer_id,
            last_paid_order_at=name,
            days_without_order=literal(days),
            points_available=lapsed.c.points_available,
            tier_id=lapsed.c.tier_id,
            points_awarded=awarded,
        ).label("data"),
        key.label("dedupe_key"),
    )
    return webhooks.emit_selected(session, "member.lapsing", rows, at=now)


def _later(
    session: Session,
    a: ColumnElement[datetime],
    b: ColumnElement[datetime] | InstrumentedAttribute[datetime],
):
    """The later of two moments (SQLite's two-argument `max` is scalar)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.greatest(a, b, type_=UTCDateTime())
    return func.max(a, b, type_=UTCDateTime())


def _whole_days(dialect: str, since: ColumnElement[datetime], now: datetime):
    """Whole days from `since` to `now`."""
    at = literal(now, UTCDateTime())
    if dialect == "postgresql":
        seconds = func.extract("epoch", at - since)
        return cast(func.floor(seconds / DAY_SECONDS), Integer)
    return cast(func.julianday(at) - func.julianday(since), Integer)
