"""The points ledger: append-only entries and the balances they add up to.

Every change of a member's points goes through `post_entry`, which inserts one immutable entry
and changes the member's materialized balances in the same transaction with a relative
(and, for spending, conditional) UPDATE — never a read-modify-write in Python. The database
refuses updates of an entry other than its maturity, and deletes (see the first migration).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import Insert, ReturningUpdate
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Select, Subquery

from loyalty.errors import InsufficientPoints, ValidationFailed
from loyalty.extensions import Base
from loyalty.fastsql import built, fast, json_rows, set_committed_values
from loyalty.members.models import Member
from loyalty.types import MAX_RUNNING_TOTAL, BigId, JSONType, UTCDateTime, utcnow

PENDING, AVAILABLE = "pending", "available"

# Kinds that count toward "lifetime earned": what the member earned, net of reversals.
# Spending (redeem), its undoing (redeem_cancel) and expiry do not change it.
EARNING_KINDS = ("earn", "bonus", "referral", "adjust", "reversal", "clawback")
KINDS = (*EARNING_KINDS, "redeem", "redeem_cancel", "expire")


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("points <> 0", name="points_not_zero"),
        CheckConstraint("state IN ('pending', 'available')", name="state"),
        CheckConstraint("state = 'available' OR matures_at IS NOT NULL", name="pending_matures"),
        Index("ix_ledger_entries_member_id_id", "member_id", "id"),
        Index("ix_ledger_entries_source", "source_type", "source_id"),
        # Pending points by member: the maturing job reads one member range's at a time.
        Index(
            "ix_ledger_entries_pending_member_matures_at",
            "member_id",
            "matures_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(24))
    points: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10))
    # What caused it: ("order", order id), ("refund", "ord_1/re_1"), ("api_key", key id)...
    source_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(300))
    rule_id: Mapped[int | None] = mapped_column(Integer)
    # The numbers used to compute it, so it can be explained line by line.
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    matures_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    matured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


BALANCES = ("points_available", "points_pending", "points_lifetime")
_members = Member.__table__
_entries = LedgerEntry.__table__


def _refresh_member(session: Session, member_id: int, row: Row, names: Iterable[str]) -> None:
    """Core UPDATEs bypass the identity map: give a loaded member the values the UPDATE
    returned (what a re-read in this transaction would see, without the round trip)."""
    member = session.identity_map.get((Member, (member_id,), None))
    if member is not None:
        for name in names:
            set_committed_value(member, name, row._mapping[name])


def _refresh_member_at_once(
    session: Session, member_id: int, row: Row, names: tuple[str, ...]
) -> None:
    """`_refresh_member` for a batch (`post_entries`): the values set and committed together
    (`fastsql.set_committed_values`: one commit of the member's state, not one per name)."""
    member = session.identity_map.get((Member, (member_id,), None))
    if member is not None:
        values = row._mapping
        set_committed_values(member, {name: values[name] for name in names})


def activity_moved_to(at: ColumnElement[datetime] | None = None) -> ColumnElement[datetime]:
    """SET value for `members.last_activity_at`: `at` (default: the bind parameter
    `activity_at`) if it is later than what the column holds; never back."""
    column = _members.c.last_activity_at
    if at is None:
        at = bindparam("activity_at", type_=UTCDateTime())
    return case((or_(column.is_(None), column < at), at), else_=column)


@cache
def _balances_update(
    state: str, earning: bool, spend: bool, activity: bool, credit: bool
) -> ReturningUpdate:
    """UPDATE members ... RETURNING the balances, for one shape of entry (built once).

    A credit updates no row if it would take a balance it moves past `MAX_RUNNING_TOTAL`
    (compared with `headroom`, the limit less the points, so the test itself cannot overflow).
    """
    return _moving(
        (state, earning, spend, activity, credit),
        member_key=bindparam("member_key"),
        points=bindparam("points", type_=BigInteger()),
        headroom=bindparam("headroom", type_=BigInteger()),
        at=None,
    )


def _moving(
    shape: tuple,
    *,
    member_key: ColumnElement[Any],
    points: ColumnElement[Any],
    headroom: ColumnElement[Any],
    at: ColumnElement[Any] | None,
) -> ReturningUpdate:
    """`_balances_update` with its values taken from `member_key`, `points`, `headroom` and
    `at` (bind parameters, or the columns of the rows `post_entries` sends)."""
    state, earning, spend, activity, credit = shape
    c = _members.c
    moved = [c.points_pending if state == PENDING else c.points_available]
    if earning:
        moved.append(c.points_lifetime)
    values = {column.key: column + points for column in moved}
    if activity:
        values["last_activity_at"] = activity_moved_to(at)
    returned = [c.id, *(c[name] for name in _balances_returned(activity))]
    statement = update(_members).where(c.id == member_key).values(**values)
    if spend:
        statement = statement.where(c.points_available + points >= 0)
    if credit:
        statement = statement.where(*(column <= headroom for column in moved))
    return statement.returning(*returned)


_INSERT_ENTRY = insert(_entries).returning(_entries.c.id)
_ENTRY_VALUES = ("kind", "points", "state", "source_type", "source_id", "rule_id", "detail",
                 "occurred_at", "created_at", "matures_at")  # fmt: skip


@cache
def _post_in_one_statement(
    state: str, earning: bool, spend: bool, activity: bool, credit: bool
) -> Select:
    """PostgreSQL: the UPDATE and the INSERT as one statement. The entry is inserted from the
    UPDATE's RETURNING, so when no member row is updated (a spend not covered, an unknown
    member) nothing is inserted and no row comes back."""
    moved = _balances_update(state, earning, spend, activity, credit).cte("moved")
    c = _entries.c
    values = [
        bindparam("points" if name == "points" else f"entry_{name}", type_=c[name].type)
        for name in _ENTRY_VALUES
    ]
    entry = (
        insert(_entries)
        .from_select(["member_id", *_ENTRY_VALUES], select(moved.c.id, *values))
        .returning(c.id)
        .cte("entry")
    )
    balances = [moved.c[name] for name in _balances_returned(activity)]
    return select(entry.c.id.label("entry_id"), *balances).select_from(moved).join(entry, true())


@cache
def _post_many_statement(
    state: str, earning: bool, spend: bool, activity: bool, credit: bool
) -> Select:
    """PostgreSQL: `_post_in_one_statement` for many entries of one shape, of distinct
    members, given as the JSON rows of the parameter `rows` (`n`: their order): one UPDATE of
    their balances (`_moving`, the same construct) and one INSERT of the entries of the members
    it updated, in the rows' order; each entry's id comes back with its member's balances."""
    c = _entries.c
    typed = {"n": BigInteger(), "member_id": BigInteger(), "headroom": BigInteger(),
             "activity_at": UTCDateTime()}  # fmt: skip
    typed |= {name: c[name].type for name in _ENTRY_VALUES}
    source = (
        func.jsonb_to_recordset(cast(bindparam("rows", type_=Text()), JSONB))
        .table_valued(*(column(name, kind) for name, kind in typed.items()))
        .render_derived(name="r", with_types=True)
    )
    rows = select(source).cte("entry_rows")
    moved = _moving(
        (state, earning, spend, activity, credit),
        member_key=rows.c.member_id,
        points=rows.c.points,
        headroom=rows.c.headroom,
        at=rows.c.activity_at,
    ).cte("moved")
    entry = (
        insert(_entries)
        .from_select(
            ["member_id", *_ENTRY_VALUES],
            select(rows.c.member_id, *(rows.c[name] for name in _ENTRY_VALUES))
            .join_from(rows, moved, moved.c.id == rows.c.member_id)
            .order_by(rows.c.n),
        )
        .returning(c.id, c.member_id)
        .cte("entry")
    )
    balances = [moved.c[name] for name in _balances_returned(activity)]
    return select(entry.c.id.label("entry_id"), moved.c.id, *balances).join_from(
        moved, entry, entry.c.member_id == moved.c.id
    )


def _balances_returned(activity: bool) -> tuple[str, ...]:
    return (*BALANCES, "last_activity_at") if activity else BALANCES


# What a set-based job's INSERT ... SELECT of entries fills, in this order (`rule_id` after
# `source_id` when the entries come from an earning rule); the rest keep their defaults.
ENTRY_COLUMNS = (
    "member_id", "kind", "points", "state", "source_type", "source_id", "detail",
    "occurred_at", "created_at",
)  # fmt: skip


def insert_entries(rows: Select[*tuple[Any, ...]], *, rule: bool = False) -> Insert:
    """INSERT INTO ledger_entries SELECT `rows`: the set-based jobs' way of writing many
    entries in one statement. `rows` selects ENTRY_COLUMNS in order (and `rule_id` after
    `source_id` when `rule`); the caller moves the same members' balances by the same points
    in the same transaction (`verify-ledger` checks that they agree)."""
    return insert(LedgerEntry).from_select(entry_columns(rule=rule), rows)


def entry_columns(*, rule: bool = False) -> list[str]:
    """ENTRY_COLUMNS, with `rule_id` after `source_id` when `rule`."""
    columns = list(ENTRY_COLUMNS)
    if rule:
        columns.insert(columns.index("source_id") + 1, "rule_id")
    return columns


def post_entry(
    session: Session,
    member_id: int,
    kind: str,
    points: int,
    *,
    source_type: str,
    source_id: str,
    state: str = AVAILABLE,
    detail: dict | None = None,
    rule_id: int | None = None,
    occurred_at: datetime | None = None,
    matures_at: datetime | None = None,
    spend: bool = False,
    activity_at: datetime | None = None,
) -> LedgerEntry:
    """Append one entry and move the member's balances by it, atomically.

    `spend=True` makes a debit conditional: it succeeds only if `available` covers it at this
    instant, whatever runs concurrently; otherwise `InsufficientPoints` and nothing changes.
    Other debits (clawbacks) may take `available` below zero. `activity_at` also moves the
    member's `last_activity_at` forward to it (never back), in the same UPDATE.

    Core statements built once: on PostgreSQL one (the INSERT of the entry selects from the
    UPDATE of the balances), elsewhere the UPDATE then the INSERT. The entry returned is a
    plain, unattached `LedgerEntry` holding what was inserted.
    """
    planned = _plan(member_id, kind, points, source_type=source_type, source_id=source_id,
                    state=state, detail=detail, rule_id=rule_id, occurred_at=occurred_at,
                    matures_at=matures_at, spend=spend, activity_at=activity_at)  # fmt: skip
    shape, params, entry = planned
    if session.get_bind().dialect.name == "postgresql":
        row = fast(_post_in_one_statement(*shape)).first(session.connection(), _with_entry(planned))
    else:
        row = session.execute(_balances_update(*shape), params).first()
    return _posted(session, planned, row)


def post_entries(session: Session, entries: list[dict]) -> list[LedgerEntry]:
    """`post_entry` for many entries (each a dict of its arguments but the session), of
    distinct members: on PostgreSQL the statements of each shape sent together (one pipeline);
    elsewhere one `post_entry` after another. The entries posted, in order."""
    if session.get_bind().dialect.name != "postgresql":
        return [post_entry(session, **entry) for entry in entries]
    planned = [_plan(**entry) for entry in entries]
    if len({entry["member_id"] for _shape, _params, entry in planned}) < len(planned):
        raise ValueError("post_entries: one entry per member")
    rows: list[Row | None] = [None] * len(planned)
    shapes: dict[tuple, list[int]] = {}
    for index, (shape, _params, _entry) in enumerate(planned):
        shapes.setdefault(shape, []).append(index)
    for shape, indexes in shapes.items():
        sent = [_with_entry(planned[i]) for i in indexes]
        for n, row in enumerate(sent):
            row["n"] = n
            row["member_id"] = row.pop("member_key")
            row |= {name: row.pop(f"entry_{name}") for name in _ENTRY_VALUES if name != "points"}
        found = {
            row.id: row
            for row in session.connection().execute(
                _post_many_statement(*shape),
                {"rows": json_rows(sent)},
            )
        }
        for index in indexes:
            rows[index] = found.get(planned[index][2]["member_id"])
    return [_posted(session, plan, row, _refresh_member_at_once)
            for plan, row in zip(planned, rows, strict=True)]  # fmt: skip


def _plan(
    member_id: int,
    kind: str,
    points: int,
    *,
    source_type: str,
    source_id: str,
    state: str = AVAILABLE,
    detail: dict | None = None,
    rule_id: int | None = None,
    occurred_at: datetime | None = None,
    matures_at: datetime | None = None,
    spend: bool = False,
    activity_at: datetime | None = None,
) -> tuple[tuple, dict, dict]:
    """An entry to post: its statement's shape, the statement's parameters, the entry's row."""
    if kind not in KINDS:
        raise ValueError(f"unknown ledger kind {kind!r}")
    if points == 0:
        raise ValueError("a ledger entry moves a non-zero number of points")
    if state not in (PENDING, AVAILABLE):
        raise ValueError(f"unknown state {state!r}")
    credit = points > 0
    shape = (state, kind in EARNING_KINDS, spend and points < 0, activity_at is not None, credit)
    now = utcnow()
    entry = {
        "member_id": member_id,
        "kind": kind,
        "points": points,
        "state": state,
        "source_type": source_type,
        "source_id": source_id,
        "detail": detail or {},
        "rule_id": rule_id,
        "occurred_at": occurred_at or now,
        "created_at": now,
        "matures_at": matures_at,
        "matured_at": None,
        "expires_at": None,
    }
    params: dict[str, object] = {"member_key": member_id, "points": points}
    if credit:
        params["headroom"] = MAX_RUNNING_TOTAL - points
    if activity_at is not None:
        params["activity_at"] = activity_at
    return shape, params, entry


def _with_entry(planned: tuple[tuple, dict, dict]) -> dict:
    """PostgreSQL's one statement: the UPDATE's parameters and the entry's values."""
    _shape, params, entry = planned
    return {**params, **{f"entry_{name}": entry[name] for name in _ENTRY_VALUES}}


def _posted(
    session: Session,
    planned: tuple[tuple, dict, dict],
    row: Row | None,
    refresh: Callable[[Session, int, Row, tuple[str, ...]], None] = _refresh_member,
) -> LedgerEntry:
    """The entry posted, from what its UPDATE (PostgreSQL: and INSERT) returned: the member's
    balances refreshed, the entry inserted after the UPDATE where it is not done yet; the
    refusals when no row was updated."""
    shape, params, entry = planned
    member_id, points, spend = entry["member_id"], entry["points"], shape[2]
    credit, activity = shape[4], shape[3]
    if row is None:
        if spend:
            raise InsufficientPoints(f"This needs {-points} available points.")
        if credit and session.get(Member, member_id) is not None:
            raise ValidationFailed(
                f"{points} more points would take this member's balance past {MAX_RUNNING_TOTAL}.",
                errors={"points": [f"Balances stay at or below {MAX_RUNNING_TOTAL}."]},
            )
        raise LookupError(f"member {member_id} not found")
    refresh(session, member_id, row, _balances_returned(activity))
    if "entry_id" in row._mapping:
        entry_id = row.entry_id
    else:
        entry_id = session.execute(_INSERT_ENTRY, entry).scalar_one()
    posted: LedgerEntry = built(LedgerEntry, {"id": entry_id, **entry})
    return posted


def lock_member(session: Session, member_id: int) -> Member:
    """Take the member's row lock: events for one member apply one after another."""
    return session.execute(
        select(Member)
        .where(Member.id == member_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def entries_for_source(session: Session, source_type: str, source_id: str) -> list[LedgerEntry]:
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.source_type == source_type, LedgerEntry.source_id == source_id)
            .order_by(LedgerEntry.id)
        )
    )


@dataclass(frozen=True)
class Drift:
    member_id: int
    customer_id: str | None
    stored: tuple[int, int, int]
    computed: tuple[int, int, int]


def recomputed_balances() -> Subquery:
    """Per member: (available, pending, lifetime) summed from the entries, as a subquery."""
    e = LedgerEntry
    return (
        select(
            e.member_id.label("member_id"),
            func.sum(case((e.state == AVAILABLE, e.points), else_=0)).label("available"),
            func.sum(case((e.state == PENDING, e.points), else_=0)).label("pending"),
            func.sum(case((e.kind.in_(EARNING_KINDS), e.points), else_=0)).label("lifetime"),
        )
        .group_by(e.member_id)
        .subquery()
    )


def find_drift(session: Session) -> list[Drift]:
    """Every member whose stored balances differ from the sum of their entries (one query)."""
    sums = recomputed_balances()
    available = func.coalesce(sums.c.available, literal(0))
    pending = func.coalesce(sums.c.pending, literal(0))
    lifetime = func.coalesce(sums.c.lifetime, literal(0))
    rows = session.execute(
        select(
            Member.id,
            Member.customer_id,
            Member.points_available,
            Member.points_pending,
            Member.points_lifetime,
            available,
            pending,
            lifetime,
        )
        .outerjoin(sums, sums.c.member_id == Member.id)
        .where(
            ~and_(
                Member.points_available == available,
                Member.points_pending == pending,
                Member.points_lifetime == lifetime,
            )
        )
        .order_by(Member.id)
    )
    return [Drift(r[0], r[1], (r[2], r[3], r[4]), (int(r[5]), int(r[6]), int(r[7]))) for r in rows]
