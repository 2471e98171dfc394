"""How an order event gets into the database and its answer out: the statements of the event
path, PostgreSQL's way and SQLite's way side by side.

- `paid_order`: an `order.paid` claimed (or its stored answer replayed), the member locked
  (enrolled first if the program says so), the order inserted; a `Started` comes back.
- `claim`: any other event claimed, or its stored answer replayed.
- `find_order`, `insert_order`: an order's row as `ctx.order` holds it.
- `store_answer`: the event's answer into its row, with what the handlers changed on the order.

Every order here is a plain `Order` holding the row's values, not attached to the session (see
`OrderEventContext`): what changed on it is written by `store_answer`, in one statement with
the answer on PostgreSQL. Members are the session's own rows, locked.

Exactly once: the event's row (`processed_events`, primary key = event id) is inserted first
(INSERT ... ON CONFLICT DO NOTHING). Concurrent deliveries of one event queue on that key: the
first commits, the others then insert nothing and replay its answer; if the first rolls back,
the next one claims the event instead.

On PostgreSQL an `order.paid` in the program's currency is one statement: claim, member lock
and order insert (`_claim_and_place_statement`), which also reads the config stamp — and, when
the program enrols customers and this one is not a member yet, the member's INSERT, so that a
first order costs about what a repeat one does (then the enrolment's hooks, `members.welcome`).
Everywhere else it is those steps one after another (`_step_by_step`).
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any, NoReturn

from flask import current_app
from sqlalchemy import (
    Boolean,
    String,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement

from loyalty import cache as config_cache
from loyalty.errors import Conflict
from loyalty.fastsql import built, fast, insert_json_rows, json_rows, set_committed_values
from loyalty.hooks import Hooks
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.orders.models import Order, ProcessedEvent
from loyalty.program.service import ProgramSettings, check_currency
from loyalty.tiers.models import Tier
from loyalty.types import utcnow


@dataclass(frozen=True)
class Replay:
    """The event was applied before: the answer it got then, marked as a duplicate."""

    answer: dict


@dataclass(frozen=True)
class Started:
    """An `order.paid` claimed by this delivery: its member (locked; None when the customer is
    not one and the program does not enrol), their tier before this event (to read, not to
    change), and the order as inserted (a plain `Order`, its `id` included)."""

    member: Member | None
    tier: Tier | None
    order: Order


def paid_order(
    session: Session, hooks: Hooks, program: ProgramSettings, data: dict, digest: str, row: dict
) -> Started | Replay:
    """Take in a validated `order.paid` whose order row (`row`, `member_id` unset) is given:
    claimed and started, or replayed. 409 if another event recorded the order; an order in
    another currency than the program's is refused after a replay is answered."""
    if _dialect(session) == "postgresql" and data["order"]["currency"] == program.currency:
        return _on_postgresql(session, hooks, program, data, digest, row)
    return _step_by_step(session, hooks, program, data, digest, row)


def paid_orders(
    session: Session, program: ProgramSettings, items: list[tuple[dict, str, dict]]
) -> dict[str, Started]:
    """`paid_order` for many `order.paid` events at once on PostgreSQL — (event, digest, order
    row) each, of distinct customers, orders and emails, in the program's currency, their
    customers enrolled already if the program enrols: the events claimed in one INSERT, their
    members locked in one SELECT (in id order), their orders' ids drawn from the table's
    sequence. What comes back is, by event id, what `paid_order` gives each event claimed
    here — except that the orders are not inserted yet: `place_orders` inserts them as the
    handlers leave them, with the answers (no UPDATE of rows just inserted; until then no
    other event of the group could see them, as none names their customer or mailbox). An
    event not there (processed before, or its member missing) is for `paid_order` to take."""
    if not items or _dialect(session) != "postgresql":
        return {}
    now = utcnow()
    claims = sorted(
        ({"event_id": data["id"], "type": data["type"], "order_id": data["order"]["id"],
          "body_hash": digest, "created_at": now} for data, digest, _row in items),
        key=lambda claim_row: claim_row["event_id"],
    )  # fmt: skip
    # Each INSERT one statement, its rows one JSON parameter (`fastsql.json_rows`).
    connection = session.connection()
    claimed = set(connection.execute(_CLAIM_ROWS, {"rows": json_rows(claims)}).scalars())
    mine = [item for item in items if item[0]["id"] in claimed]
    if not mine:
        return {}
    customers = [data["order"]["customer_id"] for data, _digest, _row in mine]
    found: dict[str, tuple[Member, Tier | None]] = {}
    # One statement reads each tier once: its members share one plain `Tier` (read, never
    # changed: `Started.tier`). The customers one array parameter: the statement prepared
    # once (`fastsql`), where an IN would be rendered anew with a parameter per customer.
    stamp = None
    tiers_read: dict[int, Tier] = {}
    for locked in fast(_LOCK_MEMBERS).all(connection, {"customers": customers}):
        if locked.config_version != stamp:  # one statement: one stamp, checked once
            stamp = locked.config_version
            config_cache.seen(session, stamp)  # StaleConfig: the request runs again
        values = dict(zip(_MEMBER_ATTRS, _LOCKED_MEMBER(locked), strict=True))
        member = _attached(session, Member, values)
        tier = tiers_read.get(locked.t_id)
        if tier is None and locked.t_id is not None:
            tier = tiers_read[locked.t_id] = built(
                Tier, {n: getattr(locked, f"t_{n}") for n in _TIER_ATTRS}
            )
        found[member.customer_id] = (member, tier)
    rows, started = [], {}
    for data, _digest, row in mine:
        member, tier = found.get(data["order"]["customer_id"], (None, None))
        if member is None and program.auto_enroll:
            raise RuntimeError("paid_orders: a customer to enrol first")  # the caller's to do
        row["member_id"] = member.id if member is not None else None
        rows.append(row)
        started[data["id"]] = (member, tier, row)
    ids = sorted(connection.execute(_ORDER_IDS, {"count": len(rows)}).scalars())
    for row, order_pk in zip(rows, ids, strict=True):
        row["id"] = order_pk
    return {
        event_id: Started(member, tier, built(Order, row))
        for event_id, (member, tier, row) in started.items()
    }


def place_orders(session: Session, placed: list[tuple[str, str, Order]]) -> None:
    """The orders of `paid_orders` inserted, each as the handlers left it, with its event's
    answer — (event id, answer, order) each: one INSERT of the orders (409 if another event
    recorded one of them meanwhile), one UPDATE of the answers."""
    if not placed:
        return
    connection = session.connection()
    rows = [{name: order.__dict__[name] for name in _ORDER_COLUMNS} for _e, _a, order in placed]
    inserted = set(connection.execute(_PLACE_ORDER_ROWS, {"rows": json_rows(rows)}).scalars())
    for row in rows:
        if row["order_id"] not in inserted:
            _order_taken(session, row["order_id"])
    answered = ",".join(f'{{"event_id":{json.dumps(event_id)},"response":{answer}}}'
                        for event_id, answer, _order in placed)  # fmt: skip
    connection.execute(_ANSWER_ROWS, {"rows": f"[{answered}]"})


def claim(session: Session, program: ProgramSettings, data: dict, digest: str) -> Replay | None:
    """Claim the event for this delivery (None), or the answer it got before. An event in
    another currency than the program's is refused once it is claimed (a replay is answered)."""
    row = {
        "event_id": data["id"],
        "type": data["type"],
        "order_id": data["order"]["id"],
        "body_hash": digest,
        "created_at": utcnow(),
    }
    statement = _insert_new(session, _EVENTS, "event_id", "event_id")
    if fast(statement).first(session.connection(), row) is None:
        return _replay(session, data["id"], digest)
    check_currency(program, data["order"]["currency"])
    return None


def find_order(session: Session, order_id: str) -> Order | None:
    """The order's row, locked (FOR UPDATE), as a plain `Order`; None if there is none."""
    row = session.execute(_LOCK_ORDER, {"order_key": order_id}).first()
    return built(Order, dict(row._mapping)) if row is not None else None


def insert_order(session: Session, row: dict) -> Order:
    """INSERT the order (every column given) unless its id is known, as a plain `Order`; 409
    if it is known (recorded by another event, which a concurrent one waited for)."""
    order_pk = fast(_insert_new(session, _ORDERS, "order_id", "id")).scalar(
        session.connection(), row
    )
    if order_pk is None:
        _order_taken(session, row["order_id"])
    order: Order = built(Order, {**row, "id": order_pk})
    return order


def store_answer(session: Session, event_id: str, answer: str, order: Order, changes: dict) -> None:
    """The answer (JSON text) into the event's row, and `changes` (column -> value) into the
    order's: on PostgreSQL one statement (the order's UPDATE a data-modifying CTE), elsewhere
    one each. A row of this order the session holds (read before the event) gets them too."""
    if _dialect(session) == "postgresql":
        params = {"answer": answer, "event_key": event_id}
        if not changes:
            fast(_STORE_ANSWER).execute(session.connection(), params)
        else:
            params |= {f"order_{name}": value for name, value in changes.items()}
            statement = _store_answer_and_order(tuple(changes))
            fast(statement).execute(session.connection(), {**params, "order_pk": order.id})
    else:
        if changes:
            session.execute(_UPDATE_ORDER, {**changes, "order_pk": order.id})
        params = {"response": json.loads(answer), "event_key": event_id}
        session.execute(_STORE_RESPONSE, params)
    if changes:
        key = _ORDER_MAPPER.identity_key_from_primary_key((order.id,))
        held = session.identity_map.get(key)
        for name, value in changes.items() if held is not None else ():
            set_committed_value(held, name, value)


def store_answers(session: Session, stored: list[tuple[str, str, Order, dict]]) -> None:
    """`store_answer` for many events at once — (event id, answer, order, changes) each, of
    distinct orders: on PostgreSQL `store_answer`'s statements, those of one set of changed
    columns sent together (one pipeline); elsewhere the answers in one executemany UPDATE, the
    orders' changes in one per set of changed columns."""
    if not stored:
        return
    if _dialect(session) == "postgresql":
        # One UPDATE of the answers, one of the orders per set of changed columns, their rows
        # given as JSON (`fastsql.json_rows`; the answers, JSON text already, as they are).
        connection = session.connection()
        answered = ",".join(f'{{"event_id":{json.dumps(event_id)},"response":{answer}}}'
                            for event_id, answer, _order, _changes in stored)  # fmt: skip
        connection.execute(_ANSWER_ROWS, {"rows": f"[{answered}]"})
        by_names: dict[tuple[str, ...], list[dict]] = {}
        for _event_id, _answer, order, changes in stored:
            if changes:
                by_names.setdefault(tuple(sorted(changes)), []).append({**changes, "id": order.id})
        for names, rows in by_names.items():
            connection.execute(_order_rows_update(names), {"rows": json_rows(rows)})
        _held_orders(session, stored)
        return
    answers = [{"response": json.loads(answer), "event_key": event_id}
               for event_id, answer, _order, _changes in stored]  # fmt: skip
    session.execute(_STORE_RESPONSE, answers)
    by_columns: dict[tuple[str, ...], list[dict]] = {}
    for _event_id, _answer, order, changes in stored:
        if changes:
            by_columns.setdefault(tuple(sorted(changes)), []).append(
                {**changes, "order_pk": order.id}
            )
    for rows in by_columns.values():
        session.execute(_UPDATE_ORDER, rows)
    _held_orders(session, stored)


def _held_orders(session: Session, stored: list[tuple[str, str, Order, dict]]) -> None:
    """A row of these orders the session holds (read before the events) gets their changes."""
    for _event_id, _answer, order, changes in stored:
        if changes:
            key = _ORDER_MAPPER.identity_key_from_primary_key((order.id,))
            held = session.identity_map.get(key)
            for name, value in changes.items() if held is not None else ():
                set_committed_value(held, name, value)


# --- the statements, built once (per dialect) and run with parameters: building and caching
# a statement anew each time cost more CPU than the round trip it makes ----------------------

_EVENTS, _ORDERS, _MEMBERS, _TIERS = (
    ProcessedEvent.__table__,
    Order.__table__,
    Member.__table__,
    Tier.__table__,
)
_ORDER_MAPPER = sa_inspect(Order)
_MEMBER_ATTRS = tuple(attr.key for attr in sa_inspect(Member).column_attrs)
_TIER_ATTRS = tuple(attr.key for attr in sa_inspect(Tier).column_attrs)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


@cache
def _insert_new_statement(dialect: str, table: Table, key: str, returned: str) -> Any:
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert_(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[returned])


def _insert_new(session: Session, table: Table, key: str, returned: str) -> Any:
    """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING `returned`; values at execution."""
    return _insert_new_statement(_dialect(session), table, key, returned)


_STORE_RESPONSE = update(_EVENTS).where(_EVENTS.c.event_id == bindparam("event_key"))
# PostgreSQL: the answer given as the JSON text already encoded (the server parses it either way).
_STORE_ANSWER = _STORE_RESPONSE.values(response=cast(bindparam("answer", type_=Text()), JSONB))
# SET whichever columns the parameters name (besides `order_pk`).
_UPDATE_ORDER = update(_ORDERS).where(_ORDERS.c.id == bindparam("order_pk"))
_LOCK_ORDER = select(_ORDERS).where(_ORDERS.c.order_id == bindparam("order_key")).with_for_update()
_LOCK_MEMBER = (
    select(Member, Tier)
    .outerjoin(Tier, Tier.id == Member.tier_id)
    .where(Member.customer_id == bindparam("customer_id"))
    .with_for_update(of=Member)
    .execution_options(populate_existing=True)
)


# PostgreSQL: a group's claims and its orders, each one INSERT of rows given as JSON, what the
# single path's INSERT ... ON CONFLICT DO NOTHING does for each row.
_CLAIM_ROWS = insert_json_rows(
    _EVENTS, ("event_id", "type", "order_id", "body_hash", "created_at"), "event_id", "event_id"
)
_ORDER_COLUMNS = tuple(c.name for c in _ORDERS.c)
# PostgreSQL: a group's members (and their tiers) locked in id order, with the config stamp.
_LOCK_MEMBERS = (
    select(_MEMBERS, *(_TIERS.c[n].label(f"t_{n}") for n in _TIER_ATTRS),
           config_cache.version_column())
    .outerjoin(_TIERS, _TIERS.c.id == _MEMBERS.c.tier_id)
    .where(_MEMBERS.c.customer_id == any_(bindparam("customers", type_=ARRAY(String))))
    .order_by(_MEMBERS.c.id)
    .with_for_update(of=_MEMBERS)
)  # fmt: skip
# A locked row's member columns, in `_MEMBER_ATTRS` order (one C call, not a getattr each).
_LOCKED_MEMBER = itemgetter(
    *(list(_LOCK_MEMBERS.exported_columns.keys()).index(n) for n in _MEMBER_ATTRS)
)
_PLACE_ORDER_ROWS = insert_json_rows(_ORDERS, _ORDER_COLUMNS, "order_id", "order_id")
# The ids the sequence of `orders.id` gives next, as many as `count` (what the INSERT of as
# many rows would have drawn).
_ORDER_IDS = text(
    f"SELECT nextval(pg_get_serial_sequence('{_ORDERS.name}', 'id'))"  # noqa: S608 - the model's
    " FROM generate_series(1, :count)"
)
_ANSWER_ROWS = text(
    f"UPDATE {_EVENTS.name} AS e SET response = r.response"  # noqa: S608 - the model's name
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(event_id text, response jsonb)"
    " WHERE e.event_id = r.event_id"
)


@lru_cache(maxsize=64)
def _order_rows_update(names: tuple[str, ...]) -> Any:
    """PostgreSQL: UPDATE of the columns `names` of the orders whose rows (`id` and those
    columns) are the JSON parameter `rows`."""
    sets = ", ".join(f"{name} = r.{name}" for name in names)
    return text(
        f"UPDATE {_ORDERS.name} AS o SET {sets}"  # noqa: S608 - the model's names
        f" FROM jsonb_populate_recordset(NULL::{_ORDERS.name}, CAST(:rows AS jsonb)) AS r"
        " WHERE o.id = r.id"
    )


@lru_cache(maxsize=64)
def _store_answer_and_order(names: tuple[str, ...]) -> Any:
    values = {name: bindparam(f"order_{name}", type_=_ORDERS.c[name].type) for name in names}
    changed = update(_ORDERS).where(_ORDERS.c.id == bindparam("order_pk")).values(values)
    return _STORE_ANSWER.add_cte(changed.cte("order_changes"))


def _replay(session: Session, event_id: str, digest: str) -> Replay:
    """The stored answer of an event claimed before, if sent again with the same body."""
    event = session.get(ProcessedEvent, event_id, populate_existing=True)
    if event is None:  # purged between the two statements: the sender retries
        raise Conflict(f"Event {event_id!r} is being processed; retry.")
    if event.body_hash != digest:
        raise Conflict(f"Event {event_id!r} was already received with a different body.")
    return Replay({**(event.response or {}), "duplicate": True})


def _order_taken(session: Session, order_id: str) -> NoReturn:
    """409: the order was paid or canceled by another event (a concurrent one waited for it
    to commit)."""
    status = session.scalar(select(Order.status).where(Order.order_id == order_id))
    state = "canceled" if status == "canceled" else "already paid"
    raise Conflict(f"Order {order_id!r} was recorded by another event: it is {state}.")


# --- order.paid, step by step (SQLite; PostgreSQL for an order in another currency) ----------


def _step_by_step(
    session: Session, hooks: Hooks, program: ProgramSettings, data: dict, digest: str, row: dict
) -> Started | Replay:
    replay = claim(session, program, data, digest)
    if replay is not None:
        return replay
    return _place(session, hooks, program, data, row)


def _place(
    session: Session, hooks: Hooks, program: ProgramSettings, data: dict, row: dict
) -> Started:
    """The member locked (enrolled first if the program says so), then the order inserted."""
    member, tier = _lock_member(session, data["order"]["customer_id"])
    if member is None and program.auto_enroll:
        payload = data["order"]
        members.enroll(
            session,
            hooks,
            payload["customer_id"],
            payload.get("email"),
            name=payload.get("name"),
            enrolled_at=data["occurred_at"],
        )
        member, tier = _lock_member(session, payload["customer_id"])
    row["member_id"] = member.id if member is not None else None
    return Started(member, tier, insert_order(session, row))


def _lock_member(session: Session, customer_id: str) -> tuple[Member | None, Tier | None]:
    """The member's row, locked, and their tier (which earning reads), in one statement."""
    row = session.execute(_LOCK_MEMBER, {"customer_id": customer_id}).first()
    return (row[0], row[1]) if row is not None else (None, None)


# --- order.paid on PostgreSQL: claim, member lock and order insert in one statement ----------


def _on_postgresql(
    session: Session, hooks: Hooks, program: ProgramSettings, data: dict, digest: str, row: dict
) -> Started | Replay:
    payload = data["order"]
    params = {f"order_{name}": value for name, value in row.items() if name != "member_id"}
    params |= {
        "event_id": data["id"],
        "event_type": data["type"],
        "event_order_id": payload["id"],
        "body_hash": digest,
        "event_created_at": row["created_at"],
        "customer_id": payload["customer_id"],
    }
    enrol = program.auto_enroll and current_app.config["FAST_ENROLLMENT"]
    if enrol:  # the new member's values that vary (the rest are the statement's constants)
        params |= {
            "new_email": payload.get("email"),
            "new_email_normalized": row["email_normalized"],
            "new_name": payload.get("name"),
            "new_enrolled_at": data["occurred_at"],
        }
    else:
        params["member_optional"] = not program.auto_enroll
    found = fast(_claim_and_place_statement(enrol)).first(session.connection(), params)
    config_cache.seen(session, found.config_version)  # StaleConfig: the request runs again
    if found.claimed is None:
        return _replay(session, data["id"], digest)
    enrolled_id = found.new_id if enrol else None
    if found.order_pk is None:
        if found.id is not None or enrolled_id is not None or not program.auto_enroll:
            _order_taken(session, payload["id"])  # the member is there: the order was not new
        # A customer to enrol first (or enrolled by a concurrent event after this statement
        # looked: its INSERT then inserted nothing, and waits no more), step by step.
        return _place(session, hooks, program, data, row)
    member = tier = None
    if found.id is not None:  # the member's row, locked
        member = _attached(session, Member, {n: getattr(found, n) for n in _MEMBER_ATTRS})
    elif enrolled_id is not None:  # the row the statement inserted: what enrolment makes
        values = members.new_member_values(
            payload["customer_id"], payload.get("email"), payload.get("name"), None,
            data["occurred_at"],
        )  # fmt: skip
        member = _attached(session, Member, {"id": enrolled_id, **values, "tier_id": found.t_id})
    if found.t_id is not None:
        # Read only (earning's rate and name): a snapshot, not a row of the session.
        tier = built(Tier, {n: getattr(found, f"t_{n}") for n in _TIER_ATTRS})
    if enrolled_id is not None and member is not None:
        members.welcome(session, hooks, [member])  # sign-up points, share code, announcements
    row["member_id"] = member.id if member is not None else None
    return Started(member, tier, built(Order, {**row, "id": found.order_pk}))


@cache
def _claim_and_place_statement(enrol: bool) -> Any:
    """One statement doing what `claim`, `_lock_member`, `members.enroll`'s INSERT and
    `insert_order` do, in that order (each step reads the one before it, which orders them):

    - `claim`: the event's row, unless it exists (INSERT ... ON CONFLICT DO NOTHING);
    - `locked`: if claimed, the member's row, locked (FOR UPDATE; after waiting for a lock,
      PostgreSQL returns the row as the other transaction committed it);
    - `enrolled` (`enrol`: the program enrols customers): if claimed and no member was found,
      the new member's row (`members.new_member_values`, the `new_` parameters; at the base
      tier) — INSERT ... ON CONFLICT (customer_id) DO NOTHING: when a concurrent event enrols
      the same customer first, this waits for it to commit and inserts nothing, no order is
      placed either, and the caller goes step by step (where the member is found, locked);
    - `placed`: if claimed, and the member was found (or enrolled), or is not needed (no
      auto-enrolment: `member_optional`), the order (ON CONFLICT (order_id) DO NOTHING), with
      the member's id;

    and it answers with the claim, the order's id, the locked member's columns (under their
    own names) or the enrolled member's id (`new_id`), their tier's columns (`t_`), and the
    config stamp (`config_cache.version_column()`: the settings the event used are checked).

    psycopg caches the parsing of a statement of up to 4096 bytes and 50 parameters, and
    parses a longer one again at every execution (a sixth of an order event's CPU): hence the
    unlabeled member columns and the enrolment's constants written into the SQL.
    """
    claim_ = (
        postgresql_insert(_EVENTS)
        .values(
            event_id=bindparam("event_id"),
            type=bindparam("event_type"),
            order_id=bindparam("event_order_id"),
            body_hash=bindparam("body_hash"),
            created_at=bindparam("event_created_at", type_=_EVENTS.c.created_at.type),
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(_EVENTS.c.event_id)
        .cte("claim")
    )
    claimed = exists(select(claim_.c.event_id))
    locked = (
        select(_MEMBERS)
        .where(_MEMBERS.c.customer_id == bindparam("customer_id"), claimed)
        .with_for_update()
        .cte("locked")
    )
    member_id: ColumnElement[Any] = select(locked.c.id).scalar_subquery()
    tier_id: ColumnElement[Any] = locked.c.tier_id
    if enrol:
        # The new member's row: the varying values as parameters, the rest (zero balances...)
        # written into the SQL, which keeps the statement short enough for psycopg to cache
        # its parsing (`test_events` checks the limits).
        constants = members.new_member_values("", None, None, None, _EPOCH)
        member_columns = [c for c in _MEMBERS.c if c.key != "id"]
        new_values = [
            bindparam("customer_id") if c.key == "customer_id"
            else bindparam(f"new_{c.key}", type_=c.type) if c.key in _NEW_VARYING
            else select(_TIERS.c.id).where(_TIERS.c.threshold == literal_column("0"))
            .scalar_subquery()
            if c.key == "tier_id"
            else _sql_constant(constants[c.key])
            for c in member_columns
        ]  # fmt: skip
        enrolled = (
            postgresql_insert(_MEMBERS)
            .from_select(
                [c.key for c in member_columns],
                select(*new_values).where(claimed, ~exists(select(locked.c.id))),
            )
            .on_conflict_do_nothing(index_elements=["customer_id"])
            .returning(_MEMBERS.c.id, _MEMBERS.c.tier_id)  # the rest is the parameters'
            .cte("enrolled")
        )
        member_id = func.coalesce(member_id, select(enrolled.c.id).scalar_subquery())
        tier_id = func.coalesce(tier_id, enrolled.c.tier_id)
        needed = or_(exists(select(locked.c.id)), exists(select(enrolled.c.id)))
    else:
        needed = or_(bindparam("member_optional", type_=Boolean()), exists(select(locked.c.id)))
    order_columns = [c for c in _ORDERS.c if c.key != "id"]
    values = [
        member_id if c.key == "member_id" else bindparam(f"order_{c.key}", type_=c.type)
        for c in order_columns
    ]
    placed = (
        postgresql_insert(_ORDERS)
        .from_select([c.key for c in order_columns], select(*values).where(claimed, needed))
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(_ORDERS.c.id)
        .cte("placed")
    )
    one = select(literal(1).label("one")).subquery("one")
    query = (
        select(
            select(claim_.c.event_id).scalar_subquery().label("claimed"),
            select(placed.c.id).scalar_subquery().label("order_pk"),
            config_cache.version_column(),
            *(locked.c[name] for name in _MEMBER_ATTRS),  # unlabeled: shorter SQL
            *(_TIERS.c[name].label(f"t_{name}") for name in _TIER_ATTRS),
        )
        .select_from(one)
        .outerjoin(locked, true())
    )
    if enrol:
        query = query.add_columns(enrolled.c.id.label("new_id")).outerjoin(enrolled, true())
    return query.outerjoin(_TIERS, _TIERS.c.id == tier_id)


# The columns of a member enrolled by an order event that come from the event.
_NEW_VARYING = ("email", "email_normalized", "name", "enrolled_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _sql_constant(value: object) -> Any:
    """A constant column value (NULL, a boolean, an integer) written into the SQL."""
    if value is None:
        return null()
    if isinstance(value, bool):
        return true() if value else false()
    if isinstance(value, int):
        return literal_column(str(value))
    raise TypeError(f"not a constant for the enrolment INSERT: {value!r}")


def _attached(session: Session, model: type, values: dict) -> Any:
    """The session's instance of `model` holding `values` as just loaded (what a query with
    populate_existing gives), without another query."""
    instance = session.identity_map.get(sa_inspect(model).identity_key_from_primary_key(
        (values["id"],)
    ))  # fmt: skip
    if instance is not None:
        set_committed_values(instance, values)
        return instance
    instance = built(model, values)
    make_transient_to_detached(instance)  # loaded state: no history, nothing to flush
    session.add(instance)
    return instance
