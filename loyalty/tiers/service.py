"""Tiers: qualifying spend per period, the tier it earns, and how long that status lasts.

The model in one sentence: every qualifying period of a member is a `TierSpend` row that
counts toward the tier from its start until the end of the *next* period (`keeps_until`), so
a member's tier at any moment is the tier of the largest value among their live rows:

    tier(member, now) = tier_for(max(value) over rows with starts_at <= now < keeps_until)

where the value is the row's spend, points or orders, as the program's `tier_basis` says
(read by the same statement, so a change of basis is in force for the next event; "spend"
below stands for whichever it is).

That single formula gives "the higher of the tier reached this period and the tier retained
from the previous one", lets refunds lower this period's tier but never below the retained
one, and is what the order events, the period close and the preview all evaluate — per member
(events) or set-based over ranges of members (jobs, tier configuration changes). The result
is materialized on `members.tier_id`, so reading a member's tier is one primary-key lookup.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate
from sqlalchemy.sql.elements import BindParameter, ColumnClause, ColumnElement
from sqlalchemy.sql.selectable import Subquery

from loyalty import email, webhooks
from loyalty.audit import record_change
from loyalty.dates import iso
from loyalty.earning.models import EarningRuleTier
from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.fastsql import fast, json_rows
from loyalty.hooks import hooks
from loyalty.jobs import Progress, in_ranges, lock_members
from loyalty.members.models import Member
from loyalty.paging import Page, page_by_id
from loyalty.program.models import PROGRAM_ID, Program
from loyalty.program.service import ProgramSettings, program_settings
from loyalty.tiers.models import Tier, TierChange, TierEntry, TierSpend
from loyalty.types import MAX_RUNNING_TOTAL, UTCDateTime, utcnow

if TYPE_CHECKING:  # the order flow imports this module (members enrol at the base tier)
    from loyalty.orders.service import OrderEventContext

ROLLING_DAYS = 365
# What tier thresholds count (`program.tier_basis`), and the column of `TierSpend` of each.
BASES = ("spend", "points", "orders")
_BASIS_COLUMNS = {"spend": "spend", "points": "points", "orders": "paid_orders"}


@dataclass(frozen=True)
class Period:
    starts_at: datetime
    ends_at: datetime
    keeps_until: datetime  # the end of the following period: how long a status reached lasts


def basis_value(columns: Any, basis: str | None = None) -> ColumnElement[Any]:
    """The value the tier formula counts, from `columns` (anything with `spend`, `points` and
    `paid_orders`): the column of `basis`, or (None) of the program's `tier_basis`,
    read by the statement itself."""
    if basis is not None:
        value: ColumnElement[Any] = getattr(columns, _BASIS_COLUMNS[basis])
        return value
    program_basis = select(Program.tier_basis).where(Program.id == PROGRAM_ID).scalar_subquery()
    return case(
        (program_basis == "points", columns.points),
        (program_basis == "orders", columns.paid_orders),
        else_=columns.spend,
    )


# --- reading tiers --------------------------------------------------------------------------


def all_tiers(session: Session) -> list[Tier]:
    return list(session.scalars(select(Tier).order_by(Tier.threshold)))


def base_tier(session: Session) -> Tier:
    return session.scalars(select(Tier).where(Tier.threshold == 0)).one()


def get_tier(session: Session, tier_id: int, *, lock: bool = False) -> Tier:
    tier = session.get(Tier, tier_id, with_for_update=lock or None)
    if tier is None:
        raise NotFound(f"No tier {tier_id}.")
    return tier


def current_tier(session: Session, member: Member) -> Tier:
    """The member's materialized tier (the tier before whatever event is being applied)."""
    if member.tier_id is not None:
        tier = session.get(Tier, member.tier_id)
        if tier is not None:
            return tier
    return base_tier(session)


# --- qualifying periods ---------------------------------------------------------------------


def period_for(program: Program | ProgramSettings, member: Member, at: datetime) -> Period:
    """The qualifying period containing `at`: a calendar year in the program's timezone, or
    (rolling_365) the member's 365-day membership year counted from their enrolment."""
    if program.qualifying_period == "rolling_365":
        length = timedelta(days=ROLLING_DAYS)
        starts = member.enrolled_at + ((at - member.enrolled_at) // length) * length
        return Period(starts, starts + length, starts + 2 * length)
    zone = ZoneInfo(program.timezone)
    year = at.astimezone(zone).year

    def new_year(y: int) -> datetime:
        return datetime(y, 1, 1, tzinfo=zone)

    return Period(new_year(year), new_year(year + 1), new_year(year + 2))


@dataclass(frozen=True)
class Counted:
    """What one order event moves in its period: eligible spend (minor units), points earned
    net of reversals, and paid orders — all rises (a paid order) or all falls (a refund)."""

    spend: int
    points: int = 0
    orders: int = 0


def add_spend(
    session: Session, member_id: int, period: Period, delta: Counted, now: datetime
) -> tuple[int, int] | None:
    """Move a period's spend, points and orders by `delta` and evaluate the tier formula at
    `now`: one statement.

    A rise is an upsert (INSERT ... ON CONFLICT DO UPDATE; the primary key is the member and the
    period's start), a fall a relative UPDATE; both RETURN, after the change, the member's
    largest live value (in the program's basis) and the id of the tier it earns — the formula
    of the module docstring, read against the tiers and the basis as committed (the caller
    holds the member's row lock, which tier configuration changes take too). None when there
    is no such period to lower. A rise that would take the period's spend past
    `MAX_RUNNING_TOTAL` changes nothing: a 422.
    """
    statement, params = _spend_params(session, member_id, period, delta, now)
    # On the connection: nothing the ORM holds pending bears on these rows, and leaving it
    # pending lets the event's last flush write each row once.
    return _spent(fast(statement).first(session.connection(), params), delta)


def add_spends(
    session: Session, moves: list[tuple[int, Period, Counted]], now: datetime
) -> list[tuple[int, int] | None]:
    """`add_spend` for many (member id, period, delta) of distinct members, all rises: the
    statements sent together (one pipeline on PostgreSQL). What each returns, in order."""
    if not moves:
        return []
    if (
        session.get_bind().dialect.name == "postgresql"
        and len({member_id for member_id, _period, _delta in moves}) == len(moves)
        and all(delta.spend > 0 or delta.points > 0 or delta.orders > 0 for *_, delta in moves)
    ):
        return _add_spends_at_once(session, moves, now)
    planned = [_spend_params(session, member_id, period, delta, now)
               for member_id, period, delta in moves]  # fmt: skip
    statement = planned[0][0]
    if any(other is not statement for other, _params in planned):
        raise ValueError("add_spends: rises only")
    rows = fast(statement).many(session.connection(), [params for _s, params in planned])
    return [_spent(row, delta) for row, (_m, _p, delta) in zip(rows, moves, strict=True)]


def _add_spends_at_once(
    session: Session, moves: list[tuple[int, Period, Counted]], now: datetime
) -> list[tuple[int, int] | None]:
    """PostgreSQL, rises of distinct members: `add_spend`'s upsert for all of them in one
    statement (`_spend_statement(many=True)`), the rows as one JSON parameter."""
    statement = _SPEND_STATEMENTS.get(("postgresql", "many"))
    if statement is None:
        statement = _SPEND_STATEMENTS["postgresql", "many"] = _spend_statement(
            "postgresql", True, many=True
        )
    rows = [
        {"member_id": member_id, "starts_at": period.starts_at,
         "ends_at": period.ends_at, "keeps_until": period.keeps_until,
         "spend": delta.spend, "points": delta.points, "paid_orders": delta.orders}
        for member_id, period, delta in moves
    ]  # fmt: skip
    found = {
        row.member_id: row
        for row in session.connection().execute(statement, {"rows": json_rows(rows), "now": now})
    }
    return [_spent(found.get(member_id), delta) for member_id, _period, delta in moves]


def _spend_params(
    session: Session, member_id: int, period: Period, delta: Counted, now: datetime
) -> tuple[Any, dict]:
    rise = delta.spend > 0 or delta.points > 0 or delta.orders > 0
    dialect = session.get_bind().dialect.name
    statement = _SPEND_STATEMENTS.get((dialect, rise))
    if statement is None:
        statement = _SPEND_STATEMENTS[dialect, rise] = _spend_statement(dialect, rise)
    params = {
        "spender_id": member_id,
        "period_starts_at": period.starts_at,
        "period_ends_at": period.ends_at,
        "period_keeps_until": period.keeps_until,
        "delta": delta.spend,
        "points_delta": delta.points,
        "orders_delta": delta.orders,
        "now": now,
        **({"headroom": MAX_RUNNING_TOTAL - delta.spend} if rise else {}),
    }
    return statement, params


def _spent(row: Any, delta: Counted) -> tuple[int, int] | None:
    rise = delta.spend > 0 or delta.points > 0 or delta.orders > 0
    if row is None and rise:
        raise ValidationFailed(
            f"{delta.spend} more would take this member's qualifying spend for the period past"
            f" {MAX_RUNNING_TOTAL}.",
            errors={"order": [f"Qualifying spend stays at or below {MAX_RUNNING_TOTAL}."]},
        )
    return None if row is None else (int(row.spend), row.tier_id)


_SPEND_STATEMENTS: dict = {}  # (dialect, rise) -> the statement, built once with parameters


@dataclass(frozen=True)
class _Columns:
    """A row's three values by name, for `basis_value`."""

    spend: ColumnElement[Any]
    points: ColumnElement[Any]
    paid_orders: ColumnElement[Any]


def _spend_statement(
    dialect: str, rise: bool, many: bool = False
) -> ReturningUpdate | ReturningInsert:
    """The statement of `add_spend` (bind parameters); `many` (PostgreSQL, a rise): of
    `add_spends`, its rows the JSON parameter `rows`, each row's member and period its own
    (and the member's id returned too)."""
    table = TierSpend.__table__
    member_id: ColumnElement[Any] = bindparam("spender_id", type_=BigInteger())
    starts: ColumnElement[Any] = bindparam("period_starts_at", type_=UTCDateTime())
    if many:
        member_id, starts = (
            literal_column(f"{table.name}.{name}") for name in ("member_id", "starts_at")
        )
    delta = bindparam("delta", type_=BigInteger())
    points_delta = bindparam("points_delta", type_=BigInteger())
    orders_delta = bindparam("orders_delta", type_=BigInteger())
    at = bindparam("now", type_=UTCDateTime())
    # This row after the change, if it is live at `now` (named by hand: SQLAlchemy does not
    # correlate a RETURNING clause's subqueries with the statement's table) ...
    starts_at: ColumnClause[Any]
    keeps_until: ColumnClause[Any]
    starts_at, keeps_until = (
        literal_column(f"{table.name}.{name}") for name in ("starts_at", "keeps_until")
    )
    row = _Columns(*(literal_column(f"{table.name}.{name}") for name in _BASIS_COLUMNS.values()))
    this_row = case((and_(starts_at <= at, keeps_until > at), basis_value(row)), else_=0)
    # ... and the member's other live rows, which the statement does not touch.
    other = table.alias("other")
    others = (
        select(func.max(basis_value(other.c)))
        .where(
            other.c.member_id == member_id,
            other.c.starts_at != starts,
            other.c.starts_at <= at,
            other.c.keeps_until > at,
        )
        .scalar_subquery()
    )
    greatest = func.greatest if dialect == "postgresql" else func.max  # SQLite: scalar max()
    live = greatest(this_row, func.coalesce(others, 0))
    tier_id = (
        select(Tier.id)
        .where(Tier.threshold <= live)
        .order_by(Tier.threshold.desc())
        .limit(1)
        .scalar_subquery()
    )
    returning: tuple[Any, ...] = (live.label("spend"), tier_id.label("tier_id"))
    if not rise:
        return (
            update(table)
            .where(table.c.member_id == member_id, table.c.starts_at == starts)
            .values(
                spend=table.c.spend + delta,
                points=table.c.points + points_delta,
                paid_orders=table.c.paid_orders + orders_delta,
            )
            .returning(*returning)
        )
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    # Compared with the limit less the rise, so that the test itself cannot overflow.
    headroom: ColumnElement[Any] = bindparam("headroom", type_=BigInteger())
    if many:
        names = ("member_id", "starts_at", "ends_at", "keeps_until", "spend", "points",
                 "paid_orders")  # fmt: skip
        source = (
            func.jsonb_to_recordset(cast(bindparam("rows", type_=String()), JSONB))
            .table_valued(*(column(name, table.c[name].type) for name in names))
            .render_derived(name="r", with_types=True)
        )
        statement = insert_(table).from_select(list(names), select(source))
        headroom = literal(MAX_RUNNING_TOTAL, BigInteger()) - statement.excluded.spend
        returning = (table.c.member_id, *returning)
    else:
        statement = insert_(table).values(
            member_id=member_id,
            starts_at=starts,
            ends_at=bindparam("period_ends_at", type_=UTCDateTime()),
            keeps_until=bindparam("period_keeps_until", type_=UTCDateTime()),
            spend=delta,
            points=points_delta,
            paid_orders=orders_delta,
        )
    return statement.on_conflict_do_update(
        index_elements=[table.c.member_id, table.c.starts_at],
        set_={
            "spend": table.c.spend + statement.excluded.spend,
            "points": table.c.points + statement.excluded.points,
            "paid_orders": table.c.paid_orders + statement.excluded.paid_orders,
        },
        where=table.c.spend <= headroom,
    ).returning(*returning)


# --- the formula, as SQL --------------------------------------------------------------------


def tier_bands(exclude_tier_id: int | None = None) -> Subquery:
    """Tiers as spend bands [low, high): the tier for a spend is the band containing it."""
    where = [Tier.id != exclude_tier_id] if exclude_tier_id is not None else []
    return (
        select(
            Tier.id.label("id"),
            Tier.name.label("name"),
            Tier.threshold.label("low"),
            func.lead(Tier.threshold).over(order_by=Tier.threshold).label("high"),
        )
        .where(*where)
        .subquery("bands")
    )


def proposed_bands(proposed: list[dict]) -> Subquery:
    """The same bands for a proposed tier list (the preview), as literal rows."""
    ordered = sorted(proposed, key=lambda t: t["threshold"])
    rows = []
    for i, tier in enumerate(ordered):
        high = ordered[i + 1]["threshold"] if i + 1 < len(ordered) else None
        rows.append(
            select(
                literal(tier["name"], String()).label("name"),
                literal(tier["threshold"], BigInteger()).label("low"),
                cast(literal(high) if high is not None else null(), BigInteger()).label("high"),
            )
        )
    return union_all(*rows).subquery("bands")


def live_spend(
    now: datetime, *conditions: ColumnElement[bool], basis: str | None = None
) -> Subquery:
    """Per member, the largest value (in `basis`, by default the program's) among rows still
    counting toward the tier at `now`."""
    at = literal(now, UTCDateTime())
    value = basis_value(TierSpend, basis)
    return (
        select(TierSpend.member_id.label("member_id"), func.max(value).label("spend"))
        .where(TierSpend.starts_at <= at, TierSpend.keeps_until > at, *conditions)
        .group_by(TierSpend.member_id)
        .subquery("live")
    )


def _member_filters(
    low: int | None = None, high: int | None = None, member_id: int | None = None
) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """(conditions on members, the same on tier_spend) for one member or an id range."""
    if member_id is not None:
        return [Member.id == member_id], [TierSpend.member_id == member_id]
    if low is not None:
        return [Member.id.between(low, high)], [TierSpend.member_id.between(low, high)]
    return [], []


def tier_targets(
    now: datetime,
    bands: Subquery,
    member_conditions: list[ColumnElement[bool]],
    spend_conditions: list[ColumnElement[bool]],
    basis: str | None = None,
) -> Subquery:
    """Per member: the materialized tier and the tier the formula gives at `now`."""
    live = live_spend(now, *spend_conditions, basis=basis)
    spend = func.coalesce(live.c.spend, 0)
    return (
        select(
            Member.id.label("member_id"),
            Member.tier_id.label("from_id"),
            bands.c.id.label("to_id"),
            bands.c.name.label("to_name"),
            bands.c.low.label("to_threshold"),
            spend.label("spend"),
        )
        .select_from(Member)
        .outerjoin(live, live.c.member_id == Member.id)
        .join(bands, and_(spend >= bands.c.low, or_(bands.c.high.is_(None), spend < bands.c.high)))
        .where(*member_conditions)
        .subquery("targets")
    )


def apply_tiers(
    session: Session,
    now: datetime,
    reason: str,
    *,
    low: int | None = None,
    high: int | None = None,
    source_id: str | None = None,
    exclude_tier_id: int | None = None,
) -> int:
    """Set-based: record a tier change for every member whose tier differs from the formula
    at `now`, then move them. Two statements whatever the number of members; the caller locks
    the members first (the jobs) or holds the tier configuration lock (admin changes)."""
    session.flush()  # the statements below run on the connection, past the ORM's autoflush
    member_conditions, spend_conditions = _member_filters(low, high)
    targets = tier_targets(now, tier_bands(exclude_tier_id), member_conditions, spend_conditions)
    old = aliased(Tier)
    differs = targets.c.from_id.is_distinct_from(targets.c.to_id)
    changes = (
        select(
            targets.c.member_id,
            targets.c.from_id,
            old.name,
            targets.c.to_id,
            targets.c.to_name,
            case(
                (targets.c.to_threshold > func.coalesce(old.threshold, -1), "upgrade"),
                else_="downgrade",
            ),
            literal(reason),
            literal(source_id),
            targets.c.spend,
            literal(now, UTCDateTime()),
            literal(utcnow(), UTCDateTime()),
        )
        .select_from(targets)
        .outerjoin(old, old.id == targets.c.from_id)
        .where(differs)
    )
    record = insert(TierChange.__table__).from_select(
        [
            "member_id",
            "from_tier_id",
            "from_tier",
            "to_tier_id",
            "to_tier",
            "direction",
            "reason",
            "source_id",
            "qualifying_spend",
            "occurred_at",
            "created_at",
        ],
        changes,
    )
    # Core execution (not the ORM's bulk path) so the INSERT reports how many it recorded.
    connection = session.connection().execution_options(preserve_rowcount=True)
    change_ids: Sequence[int] = ()
    entry_rewards = _entry_rewards_offered(session)
    if webhooks.subscribed(session, "tier.changed") or email.enabled() or entry_rewards:
        change_ids = connection.execute(record.returning(TierChange.id)).scalars().all()
        _emit_tier_changes(session, change_ids, now)
        recorded = len(change_ids)
    else:
        recorded = connection.execute(record).rowcount
    if recorded == 0:
        return 0
    session.execute(
        update(Member)
        .where(Member.id == targets.c.member_id, differs)
        .values(tier_id=targets.c.to_id),
        execution_options={"synchronize_session": False},
    )
    # Loaded members must re-read the tier the statement gave them.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Member):
            session.expire(obj, ["tier_id"])
    if entry_rewards:
        _give_entry_rewards_for(session, change_ids, now)
    return recorded


def refresh_member_tier(
    session: Session, member: Member, now: datetime, reason: str, source_id: str | None
) -> TierChange | None:
    """Re-evaluate one member (whose row lock the caller holds); record and apply a change."""
    member_conditions, spend_conditions = _member_filters(member_id=member.id)
    targets = tier_targets(now, tier_bands(), member_conditions, spend_conditions)
    row = session.execute(select(targets)).one()
    if row.from_id == row.to_id:
        return None
    return _change_tier(session, member, row.to_id, int(row.spend), now, reason, source_id)


def _change_tier(
    session: Session,
    member: Member,
    to_id: int,
    spend: int,
    now: datetime,
    reason: str,
    source_id: str | None,
    period: Period | None = None,
) -> TierChange:
    """Record and apply one member's move to tier `to_id` (the caller holds the row lock);
    `period`: the qualifying period whose value moved them (default: the one of `now`)."""
    old = session.get(Tier, member.tier_id) if member.tier_id is not None else None
    new = session.get_one(Tier, to_id)
    change = TierChange(
        member_id=member.id,
        from_tier_id=member.tier_id,
        from_tier=old.name if old else None,
        to_tier_id=to_id,
        to_tier=new.name,
        direction="upgrade" if old is None or new.threshold > old.threshold else "downgrade",
        reason=reason,
        source_id=source_id,
        qualifying_spend=spend,
        occurred_at=now,
    )
    session.add(change)
    member.tier_id = to_id
    session.flush()
    webhooks.emit(session, "tier.changed", tier_change_event(change, member.customer_id))
    if change.direction == "upgrade" and new.entry_reward_id is not None:
        give_entry_reward(session, member, new, period or _period_now(session, member, now),
                          change.id)  # fmt: skip
    if change.direction == "upgrade" and email.enabled():
        session.refresh(member, ["points_available"])
        data = {
            "tier": change.to_tier,
            "previous": change.from_tier,
            "tier_change_id": change.id,
            "points_available": member.points_available,
        }
        email.queue(session, member, "tier_reached", data, dedupe_key=f"tier_reached:{change.id}")
    return change


# --- entry rewards --------------------------------------------------------------------------


def _entry_rewards_offered(session: Session) -> bool:
    offered = select(Tier.id).where(Tier.entry_reward_id.is_not(None)).limit(1)
    return session.scalar(offered) is not None


def _period_now(session: Session, member: Member, now: datetime) -> Period:
    return period_for(program_settings(session), member, now)


def give_entry_reward(
    session: Session, member: Member, tier: Tier, period: Period, change_id: int | None = None
) -> TierEntry | None:
    """The tier's entry reward for a member who has just reached it: a reward code, issued by
    the catalog (`hooks.tier_reached`), at most once per member, tier and qualifying period
    — the period whose activity got them there: an order's own period (a late event for last
    year counts there, as its spend does), or the current one for moves made by a change of
    tiers or basis.

    The (member, tier, period) row is inserted first with ON CONFLICT DO NOTHING: whoever
    inserts it issues the code; anyone else — a drop and a new upgrade in the same period, or
    a concurrent transaction that reached the tier too (it waits for the first to commit) —
    finds it and issues nothing. None when nothing was issued."""
    issue = hooks().tier_reached
    if tier.entry_reward_id is None or issue is None:
        return None
    dialect = session.get_bind().dialect.name
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert_(TierEntry)
        .values(
            member_id=member.id,
            tier_id=tier.id,
            tier_name=tier.name,
            period_starts_at=period.starts_at,
            reward_id=tier.entry_reward_id,
            tier_change_id=change_id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(
            index_elements=[TierEntry.member_id, TierEntry.tier_id, TierEntry.period_starts_at]
        )
        .returning(TierEntry.id)
    )
    entry_id = session.execute(statement).scalar()
    if entry_id is None:
        return None
    entry = session.get_one(TierEntry, entry_id)
    entry.reward_code_id = issue(session, member, tier.entry_reward_id, entry.id)
    session.flush()
    return entry


def _give_entry_rewards_for(session: Session, change_ids: Sequence[int], now: datetime) -> None:
    """Entry rewards for the upgrades among changes recorded set-based (a tier added or moved,
    the basis changed): member by member, each code being a row of its own."""
    if not change_ids:
        return
    rows = session.execute(
        select(Member, Tier, TierChange.id)
        .join(TierChange, TierChange.member_id == Member.id)
        .join(Tier, Tier.id == TierChange.to_tier_id)
        .where(
            TierChange.id.in_(change_ids),
            TierChange.direction == "upgrade",
            Tier.entry_reward_id.is_not(None),
            Member.erased_at.is_(None),
        )
        .order_by(TierChange.id)
    ).all()
    for member, tier, change_id in rows:
        give_entry_reward(session, member, tier, _period_now(session, member, now), change_id)


def tier_change_event(change: TierChange, customer_id: str | None) -> dict:
    """The `tier.changed` webhook's data."""
    return {
        "customer_id": customer_id,
        "tier_change_id": change.id,
        "from": change.from_tier,
        "to": change.to_tier,
        "direction": change.direction,
        "reason": change.reason,
        "qualifying_spend": change.qualifying_spend,
        "occurred_at": webhooks.iso(change.occurred_at),
    }


def _emit_tier_changes(session: Session, change_ids: Sequence[int], now: datetime) -> None:
    """`tier.changed` for changes recorded set-based: one read, one batch of messages; and
    the "tier reached" email of each upgrade, in one INSERT ... SELECT."""
    if not change_ids:
        return
    if email.enabled():
        dialect = session.get_bind().dialect.name
        upgrades = (
            select(
                TierChange.member_id.label("member_id"),
                webhooks.json_object(
                    dialect,
                    tier=TierChange.to_tier,
                    previous=TierChange.from_tier,
                    tier_change_id=TierChange.id,
                    points_available=Member.points_available,
                ).label("data"),
                (literal("tier_reached:") + cast(TierChange.id, String)).label("dedupe_key"),
            )
            .join(Member, Member.id == TierChange.member_id)
            .where(TierChange.id.in_(change_ids), TierChange.direction == "upgrade")
        )
        email.queue_selected(session, "tier_reached", upgrades, at=now)
    if not webhooks.subscribed(session, "tier.changed"):
        return
    rows = session.execute(
        select(TierChange, Member.customer_id)
        .join(Member, Member.id == TierChange.member_id)
        .where(TierChange.id.in_(change_ids))
        .order_by(TierChange.id)
    ).all()
    webhooks.emit_many(
        session, "tier.changed", [tier_change_event(change, cid) for change, cid in rows]
    )


def tier_changes(session: Session, member: Member, limit: int, cursor: str | None) -> Page:
    """A page of the member's tier changes, newest first (`TierChangePageSchema`)."""
    query = select(TierChange).where(TierChange.member_id == member.id)
    return page_by_id(session, query, TierChange.id, limit, cursor)


# --- order events ---------------------------------------------------------------------------


class TierQualification:
    """Order handler, after earning: count the order in its period (eligible spend, the points
    it earned, one paid order), re-evaluate the tier (so an upgrade applies from the next
    event on), and undo them on refunds: the refunded spend, the points the refund reversed,
    and the order itself once it is refunded in full.

    One statement per event when the tier stays (the spend change, which also evaluates the
    formula); a change of tier adds its record. The order's `detail` is left to the event's
    final flush, so it joins whatever else the event writes to the order row."""

    def paid(self, ctx: "OrderEventContext") -> None:
        counted = self._counted(ctx)
        if counted is not None:
            member, period, delta = counted
            self._apply(ctx, member, period, delta, "order", ctx.order.order_id)

    def paid_many(self, ctxs: "list[OrderEventContext]") -> None:
        """`paid` for the events of a group (`Hooks.dispatch_many`: distinct members): their
        spend rises sent together (`add_spends`), then each as `paid` goes on."""
        counted = [(ctx, found) for ctx in ctxs if (found := self._counted(ctx)) is not None]
        if not counted:
            return
        now = utcnow()
        moves = [(member.id, period, delta) for _ctx, (member, period, delta) in counted]
        results = add_spends(counted[0][0].session, moves, now)
        for (ctx, (member, period, _delta)), result in zip(counted, results, strict=True):
            self._changed(ctx, member, period, result, now, "order", ctx.order.order_id)

    @staticmethod
    def _counted(ctx: "OrderEventContext") -> tuple[Member, Period, Counted] | None:
        """What a paid order counts in its period (recorded on the order, so its refunds
        reduce the same period whatever changes later); None without member or spend."""
        member, order = ctx.member, ctx.order
        if member is None or order.eligible_amount == 0:
            return None
        period = period_for(ctx.program, member, ctx.occurred_at)
        order.detail = {
            **(order.detail or {}),
            "qualifying": {
                "period_starts_at": period.starts_at.isoformat(),
                "period_ends_at": period.ends_at.isoformat(),
                "keeps_until": period.keeps_until.isoformat(),
                "amount": order.eligible_amount,
            },
        }
        return member, period, Counted(order.eligible_amount, order.points_awarded, 1)

    def refunded(self, ctx: "OrderEventContext") -> None:
        member, order = ctx.member, ctx.order
        counted = (order.detail or {}).get("qualifying")
        if member is None or not counted or ctx.refund is None or ctx.refund_amount == 0:
            return
        period = Period(
            datetime.fromisoformat(counted["period_starts_at"]),
            datetime.fromisoformat(counted["period_ends_at"]),
            datetime.fromisoformat(counted["keeps_until"]),
        )
        source_id = f"{order.order_id}/{ctx.refund.refund_id}"
        # `refunded_amount` includes this refund: the order stops counting as it reaches the
        # whole eligible amount, which happens on exactly one refund.
        in_full = order.refunded_amount >= order.eligible_amount
        reversed_points = ctx.refund.points_reversed or 0
        delta = Counted(-ctx.refund_amount, -reversed_points, -1 if in_full else 0)
        self._apply(ctx, member, period, delta, "refund", source_id)

    @staticmethod
    def _apply(
        ctx: "OrderEventContext",
        member: Member,
        period: Period,
        delta: Counted,
        reason: str,
        source_id: str,
    ) -> None:
        # The tier is the member's tier *now* (the same clock as the period close): a
        # back-filled event lands in its own period's spend, which counts if still live.
        now = utcnow()
        result = add_spend(ctx.session, member.id, period, delta, now)
        TierQualification._changed(ctx, member, period, result, now, reason, source_id)

    @staticmethod
    def _changed(
        ctx: "OrderEventContext",
        member: Member,
        period: Period,
        result: tuple[int, int] | None,
        now: datetime,
        reason: str,
        source_id: str,
    ) -> None:
        """After the spend moved (`result`: what `add_spend` returned): the tier changed if
        the formula gives another, with its effect."""
        if result is None:  # no spend row to lower: re-evaluate the member on its own
            change = refresh_member_tier(ctx.session, member, now, reason, source_id)
        elif result[1] == member.tier_id:
            return  # the formula gives the tier the member holds: nothing to record
        else:
            change = _change_tier(ctx.session, member, result[1], result[0], now, reason,
                                  source_id, period)  # fmt: skip
        if change is not None:
            ctx.effects.append(
                {
                    "kind": "tier_changed",
                    "from": change.from_tier,
                    "to": change.to_tier,
                    "direction": change.direction,
                    "qualifying_spend": change.qualifying_spend,
                    "tier_change_id": change.id,
                }
            )


# --- the member view ------------------------------------------------------------------------


def with_standing(query: Select, now: datetime | BindParameter[datetime]) -> Select:
    """`query` (a select from members) plus the member's standing at `now`, as columns named
    `standing_*` (read them with `standing_view`): no extra round trip.

    - the tier: the materialized `members.tier_id`, or the base tier (threshold 0) without one;
    - the next tier up: the lowest threshold above the tier's;
    - this period's qualifying spend: the largest spend among rows whose own period contains
      `now` (0 without one), and the same for the value in the program's basis (its spend,
      points or orders), with the basis;
    - how long the status lasts: the latest `keeps_until` among periods (started by `now`)
      whose value reaches the tier — none for the base tier. If the period close has not run
      yet, that date may already be past: it says so truthfully.

    `now` is a datetime or a bind parameter (typed `UTCDateTime`).
    """
    if isinstance(now, datetime):
        now = literal(now, UTCDateTime())
    tier, higher = aliased(Tier, name="standing_tier"), aliased(Tier, name="standing_next")
    base_id = select(Tier.id).where(Tier.threshold == 0).scalar_subquery()
    next_threshold = (
        select(func.min(Tier.threshold)).where(Tier.threshold > tier.threshold).scalar_subquery()
    )
    started = [TierSpend.member_id == Member.id, TierSpend.starts_at <= now]
    value = basis_value(TierSpend)
    this_period = (
        select(func.max(TierSpend.spend)).where(*started, TierSpend.ends_at > now).scalar_subquery()
    )
    this_period_value = (
        select(func.max(value)).where(*started, TierSpend.ends_at > now).scalar_subquery()
    )
    kept_until = (
        select(func.max(TierSpend.keeps_until))
        .where(*started, value >= tier.threshold)
        .scalar_subquery()
    )
    program_basis = select(Program.tier_basis).where(Program.id == PROGRAM_ID).scalar_subquery()
    return (
        query.join_from(Member, tier, tier.id == func.coalesce(Member.tier_id, base_id))
        .outerjoin_from(tier, higher, higher.threshold == next_threshold)
        .add_columns(
            tier.id.label("standing_tier_id"),
            tier.name.label("standing_tier_name"),
            tier.multiplier.label("standing_tier_multiplier"),
            tier.perks.label("standing_tier_perks"),
            case((tier.threshold > 0, kept_until), else_=null()).label("standing_ends_at"),
            func.coalesce(this_period, 0).label("standing_spend"),
            program_basis.label("standing_basis"),
            func.coalesce(this_period_value, 0).label("standing_value"),
            higher.name.label("standing_next_name"),
            higher.threshold.label("standing_next_threshold"),
        )
    )


@dataclass(frozen=True)
class TierStanding:
    """The member view's `tier` (`TierViewSchema`)."""

    id: int
    name: str
    multiplier: Decimal
    perks: list[str]
    ends_at: datetime | None  # how long the status lasts; None for the base tier


@dataclass(frozen=True)
class NextTier:
    """The member view's `next_tier` (`NextTierSchema`)."""

    name: str
    threshold: int
    remaining: int  # in the unit of the program's basis
    remaining_spend: int | None  # the same when the basis is spend, else None


@dataclass(frozen=True)
class Standing:
    """A member's `tier`, `qualifying_spend`, `tier_basis` with `qualifying_value` (this
    period's spend, points or orders) and `next_tier` (None at the top tier)."""

    tier: TierStanding
    qualifying_spend: int
    tier_basis: str
    qualifying_value: int
    next_tier: NextTier | None


def _next_tier(name: str, threshold: int | None, basis: str, value: int) -> NextTier | None:
    if threshold is None:
        return None
    remaining = max(0, threshold - value)
    return NextTier(name, threshold, remaining, remaining if basis == "spend" else None)


def standing_of(row: Any) -> Standing:
    """The member's standing from a row of `with_standing`, for the member view's schema."""
    basis, value = row.standing_basis, int(row.standing_value)
    return Standing(
        TierStanding(
            row.standing_tier_id,
            row.standing_tier_name,
            row.standing_tier_multiplier,
            list(row.standing_tier_perks or []),
            row.standing_ends_at,
        ),
        int(row.standing_spend),
        basis,
        value,
        _next_tier(row.standing_next_name, row.standing_next_threshold, basis, value),
    )


def standing_view(row: Any) -> dict:
    """`standing_of` as the member view's fast path writes it (`members.view_from_row`): the
    JSON `TierViewSchema` and `NextTierSchema` give, built by hand."""
    ends_at = row.standing_ends_at
    basis, value = row.standing_basis, int(row.standing_value)
    next_tier = _next_tier(row.standing_next_name, row.standing_next_threshold, basis, value)
    return {
        "tier": {
            "id": row.standing_tier_id,
            "name": row.standing_tier_name,
            "multiplier": format(row.standing_tier_multiplier.normalize(), "f"),
            "perks": list(row.standing_tier_perks or []),
            "ends_at": iso(ends_at),
        },
        "qualifying_spend": int(row.standing_spend),
        "tier_basis": basis,
        "qualifying_value": value,
        "next_tier": None
        if next_tier is None
        else {
            "name": next_tier.name,
            "threshold": next_tier.threshold,
            "remaining": next_tier.remaining,
            "remaining_spend": next_tier.remaining_spend,
        },
    }


def standing(session: Session, member: Member, now: datetime | None = None) -> dict:
    """One member's `standing_view` at `now` (default: now)."""
    query = with_standing(select(Member.id), now or utcnow()).where(Member.id == member.id)
    return standing_view(session.execute(query).one())


# --- configuration --------------------------------------------------------------------------


def tier_snapshot(tier: Tier) -> dict:
    return {
        "id": tier.id,
        "name": tier.name,
        "threshold": tier.threshold,
        "multiplier": format(tier.multiplier.normalize(), "f"),
        "perks": list(tier.perks or []),
        "entry_reward_id": tier.entry_reward_id,
        "birthday_points": tier.birthday_points,
    }


def _check_rewards(session: Session, values: dict, threshold: int) -> None:
    """An entry reward names a live catalog reward, and never on the base tier (every member
    starts there: that is a sign-up bonus)."""
    reward_id = values.get("entry_reward_id")
    if reward_id is None:
        return
    if threshold == 0:
        raise ValidationFailed(
            "The base tier can't have an entry reward: every member starts there.",
            errors={"entry_reward_id": ["Not on the base tier (threshold 0)."]},
        )
    find = hooks().reward_name
    if find is None or find(session, reward_id) is None:
        raise ValidationFailed(
            f"No reward {reward_id} in the catalog.",
            errors={"entry_reward_id": [f"No reward {reward_id} in the catalog."]},
        )


def _lock_configuration(session: Session) -> None:
    # Tier changes queue on the base tier's row: one configuration change at a time, so the
    # "exactly one tier at 0 / unique names" checks below cannot race each other.
    session.execute(select(Tier.id).where(Tier.threshold == 0).with_for_update())


def _check_unique(
    session: Session, name: str | None, threshold: int | None, tier_id: int | None = None
) -> None:
    others = select(Tier).where(Tier.id != tier_id) if tier_id is not None else select(Tier)
    if name is not None:
        clash = session.scalars(others.where(func.lower(Tier.name) == name.lower())).first()
        if clash is not None:
            raise Conflict(f"A tier named {clash.name!r} already exists.", field="name")
    if threshold is not None:
        clash = session.scalars(others.where(Tier.threshold == threshold)).first()
        if clash is not None:
            detail = (
                f"{clash.name!r} is already the base tier at threshold 0; exactly one tier "
                "has threshold 0."
                if threshold == 0
                else f"{clash.name!r} already has threshold {threshold}."
            )
            raise Conflict(detail, field="threshold")


def _flush_tier(session: Session) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent change won the unique name or threshold
        raise Conflict("Another tier has this name or threshold.") from exc


def create_tier(session: Session, data: dict) -> Tier:
    _lock_configuration(session)
    _check_unique(session, data["name"], data["threshold"])
    _check_rewards(session, data, data["threshold"])
    tier = Tier(
        name=data["name"],
        threshold=data["threshold"],
        multiplier=data["multiplier"],
        perks=data.get("perks", []),
        entry_reward_id=data.get("entry_reward_id"),
        birthday_points=data.get("birthday_points"),
    )
    session.add(tier)
    _flush_tier(session)
    record_change(session, "tier.create", "tier", tier.id, None, tier_snapshot(tier))
    lock_members(session)
    apply_tiers(session, utcnow(), "tier_config", source_id=f"tier:{tier.id}")
    return tier


def update_tier(session: Session, tier_id: int, changes: dict) -> Tier:
    _lock_configuration(session)
    tier = get_tier(session, tier_id, lock=True)
    before = tier_snapshot(tier)
    if "threshold" in changes and (tier.threshold == 0) != (changes["threshold"] == 0):
        if tier.threshold == 0:
            raise Conflict(
                "The base tier must keep threshold 0 (exactly one tier has threshold 0).",
                field="threshold",
            )
        raise Conflict(
            "Only the base tier has threshold 0; change the base tier instead.",
            field="threshold",
        )
    _check_unique(session, changes.get("name"), changes.get("threshold"), tier_id=tier.id)
    _check_rewards(
        session,
        {"entry_reward_id": changes.get("entry_reward_id", tier.entry_reward_id)},
        changes.get("threshold", tier.threshold),
    )
    # Earning rules name their tiers by id: a rename changes none of them.
    for name, value in changes.items():
        setattr(tier, name, value)
    _flush_tier(session)
    record_change(session, "tier.update", "tier", tier.id, before, tier_snapshot(tier))
    if "threshold" in changes:
        lock_members(session)
        apply_tiers(session, utcnow(), "tier_config", source_id=f"tier:{tier.id}")
    return tier


def delete_tier(session: Session, tier_id: int) -> None:
    _lock_configuration(session)
    tier = get_tier(session, tier_id, lock=True)
    if tier.threshold == 0:
        raise Conflict("The base tier (threshold 0) can't be deleted.")
    using = list(
        session.scalars(
            select(EarningRuleTier.rule_id)
            .where(EarningRuleTier.tier_id == tier.id)
            .order_by(EarningRuleTier.rule_id)
        )
    )
    if using:
        raise Conflict(
            f"Earning rules {', '.join(str(rule_id) for rule_id in using)} use tier "
            f"{tier.name!r}; change them first.",
            rule_ids=using,
        )
    before = tier_snapshot(tier)
    # Everyone holding it moves to the tier the remaining list gives them, then it goes.
    lock_members(session)
    apply_tiers(session, utcnow(), "tier_config", source_id=f"tier:{tier.id}",
                exclude_tier_id=tier.id)  # fmt: skip
    session.delete(tier)
    session.flush()
    record_change(session, "tier.delete", "tier", tier_id, before, None)


def validate_tier_list(tiers: list[dict]) -> None:
    """A whole tier list as it would be: exactly one at 0, names and thresholds unique."""
    errors = {}
    zeros = [t["name"] for t in tiers if t["threshold"] == 0]
    if len(zeros) != 1:
        errors["threshold"] = [
            f"Exactly one tier must have threshold 0; got {len(zeros)}"
            + (f" ({', '.join(zeros)})." if zeros else ".")
        ]
    names = [t["name"].lower() for t in tiers]
    if len(set(names)) != len(names):
        dupes = sorted({t["name"] for t in tiers if names.count(t["name"].lower()) > 1})
        errors["name"] = [f"Tier names must be unique: {', '.join(dupes)}."]
    thresholds = [t["threshold"] for t in tiers]
    if len(set(thresholds)) != len(thresholds) and len(zeros) <= 1:
        errors.setdefault("threshold", []).append("Two tiers can't share a threshold.")
    if errors:
        raise ValidationFailed("This tier list is not valid.", errors={"tiers": errors})


def preview(
    session: Session,
    proposed: list[dict],
    now: datetime | None = None,
    basis: str | None = None,
) -> dict:
    """How many members would move between which tiers under `proposed` (and, given, another
    tier basis); changes nothing.

    One grouped query: the formula evaluated with the proposed bands, against each member's
    materialized tier."""
    validate_tier_list(proposed)
    now = now or utcnow()
    bands = proposed_bands(proposed)
    live = live_spend(now, basis=basis)
    spend = func.coalesce(live.c.spend, 0)
    current = aliased(Tier)
    base_name = select(Tier.name).where(Tier.threshold == 0).scalar_subquery()
    from_name = func.coalesce(current.name, base_name)
    rows = session.execute(
        select(from_name.label("from_name"), bands.c.name.label("to_name"), func.count())
        .select_from(Member)
        .outerjoin(live, live.c.member_id == Member.id)
        .outerjoin(current, current.id == Member.tier_id)
        .join(bands, and_(spend >= bands.c.low, or_(bands.c.high.is_(None), spend < bands.c.high)))
        .where(Member.erased_at.is_(None), from_name != bands.c.name)
        .group_by(from_name, bands.c.name)
        .order_by(from_name, bands.c.name)
    )
    return {"moves": [{"from": f, "to": t, "members": int(n)} for f, t, n in rows]}


def preview_basis(session: Session, basis: str, now: datetime | None = None) -> dict:
    """`preview` of the tiers as they are, counted in `basis`: who a change of basis moves."""
    current = [tier_snapshot(tier) for tier in all_tiers(session)]
    return preview(session, current, now, basis=basis)


def reevaluate_basis(session: Session, before: dict[str, Any]) -> None:
    """After the program's settings changed (`hooks.program_updated`), if its `tier_basis`
    did: every member's tier by the formula in the new basis, now — the moves `preview_basis`
    showed, recorded as `tier_config` changes; upgrades give their entry rewards."""
    if get_program_basis(session) == before.get("tier_basis"):
        return
    _lock_configuration(session)
    lock_members(session)
    apply_tiers(session, utcnow(), "tier_config", source_id="program:tier_basis")


def get_program_basis(session: Session) -> str:
    basis: str = session.scalars(select(Program.tier_basis).where(Program.id == PROGRAM_ID)).one()
    return basis


# --- the period close -----------------------------------------------------------------------


def close_period(
    session: Session, now: datetime, batch_size: int, progress: Progress | None = None
) -> int:
    """Set retained tiers and downgrade those who did not requalify, as of `now`.

    The formula depends only on `now` and the spend rows, so running it once, twice or a week
    late gives the same tiers. Per range of members: a read-only check whether anyone's tier
    differs (so the every-minute worker locks nothing when nothing is due); if so, lock the
    range, then two set-based statements (record the changes, move the tiers)."""
    changed = 0
    for low, high in in_ranges(session, batch_size, progress):
        if not has_tier_changes(session, now, low, high):
            continue
        lock_members(session, Member.id.between(low, high))
        changed += apply_tiers(session, now, "period_close", low=low, high=high)
    return changed


def has_tier_changes(session: Session, now: datetime, low: int, high: int) -> bool:
    member_conditions, spend_conditions = _member_filters(low, high)
    targets = tier_targets(now, tier_bands(), member_conditions, spend_conditions)
    due = select(targets.c.member_id).where(targets.c.from_id.is_distinct_from(targets.c.to_id))
    return session.execute(due.limit(1)).first() is not None
