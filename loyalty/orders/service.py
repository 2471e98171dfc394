"""Order events: validate once, apply exactly once, answer the same way every time.

The flow of an event is one list: the core records the order (or refund, or cancellation),
then every registered handler reacts in order — earning points, tier spend, reward codes,
gift card holds, referrals — all in the caller's one transaction.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from typing import NoReturn

from sqlalchemy import Boolean, Text, bindparam, cast, exists, literal, or_, select, true, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from loyalty import cache as config_cache
from loyalty import ledger
from loyalty.errors import Conflict, ValidationFailed
from loyalty.fastsql import built, fast
from loyalty.hooks import Hooks
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.orders.models import Order, OrderRefund, ProcessedEvent
from loyalty.program.service import ProgramSettings, check_currency, program_settings
from loyalty.tiers.models import Tier
from loyalty.types import utcnow

ORDER_ATTRIBUTES = (
    "reward_codes",
    "referral_code",
    "gift_card_holds",
    "shipping_address_hash",
    "payment_fingerprint",
    "ip",
    "name",
    "shipping",
    "tax",
)


@dataclass
class OrderEventContext:
    """What handlers see: the event, the program, the order row and the member (locked).

    On `order.paid`, `order` is a plain `Order` holding the row just inserted (its `id`
    included) but not attached to the session: handlers assign its fields (`detail`,
    `points_awarded`...) and `_paid` writes whatever changed in one UPDATE after the last
    handler. `program` is the cached `ProgramSettings` (plain values, read-only).
    """

    session: Session
    program: ProgramSettings
    event_id: str
    type: str
    occurred_at: datetime
    payload: dict  # the validated order object of the event
    order: Order
    member: Member | None
    refund: OrderRefund | None = None
    # order.paid: the member's tier before this event, read with the member's row.
    tier: Tier | None = None
    refund_amount: int = 0  # eligible money refunded by this event
    effects: list[dict] = field(default_factory=list)
    # Set by the core after the handlers: what they changed on the paid order, written with
    # the event's answer.
    order_changes: dict = field(default_factory=dict)


def body_hash(payload) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def line_eligible_amount(line: dict) -> int:
    """Line total after discounts; gift card purchases never earn or count toward a tier."""
    if line.get("gift_card"):
        return 0
    return line["quantity"] * line["unit_price"] - line.get("discount", 0)


def has_paid_orders(
    session: Session,
    *,
    customer_ids=(),
    emails=(),
    excluding_order_pk: int | None = None,
) -> bool:
    """Has this shopper (any of these customer ids or normalized emails) paid an order here?

    The one answer to "is this a first order / a new customer", for first-order rewards and
    referrals alike; `excluding_order_pk` leaves out the order being paid right now.
    """
    who = []
    customer_ids = {c for c in customer_ids if c}
    emails = {e for e in emails if e}
    if customer_ids:
        who.append(Order.customer_id.in_(customer_ids))
    if emails:
        who.append(Order.email_normalized.in_(emails))
    if not who:
        return False
    paid = exists().where(Order.status == "paid", or_(*who))
    if excluding_order_pk is not None:
        paid = paid.where(Order.id != excluding_order_pk)
    return bool(session.scalar(select(paid)))


def _replay(event: ProcessedEvent, digest: str) -> dict:
    if event.body_hash != digest:
        raise Conflict(f"Event {event.event_id!r} was already received with a different body.")
    return {**event.response, "duplicate": True}


def _claim(session: Session, data: dict, digest: str) -> bool:
    """Insert the event's row unless one exists: True if this delivery is the one to apply it.

    One statement (INSERT ... ON CONFLICT DO NOTHING RETURNING). Concurrent deliveries of one
    event queue on the primary key: the first commits, the others then insert nothing and
    replay its answer; if the first rolls back, the next one claims the event instead.
    """
    row = {
        "event_id": data["id"],
        "type": data["type"],
        "order_id": data["order"]["id"],
        "body_hash": digest,
        "created_at": utcnow(),
    }
    statement = _insert_new(session, _EVENTS, "event_id", "event_id")
    return fast(statement).first(session.connection(), row) is not None


# The hot path's statements are built once (per dialect) and run with parameters: building
# and caching a statement anew each time cost more CPU than the round trip it makes.
_EVENTS, _ORDERS, _MEMBERS = ProcessedEvent.__table__, Order.__table__, Member.__table__


@cache
def _insert_new_statement(dialect: str, table, key: str, returned: str):
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert_(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[returned])


def _insert_new(session: Session, table, key: str, returned: str):
    """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING `returned`; values at execution."""
    return _insert_new_statement(session.get_bind().dialect.name, table, key, returned)


_STORE_RESPONSE = update(_EVENTS).where(_EVENTS.c.event_id == bindparam("event_key"))
# PostgreSQL: the answer given as the JSON text already encoded (the server parses it either way).
_STORE_ANSWER = _STORE_RESPONSE.values(response=cast(bindparam("answer", type_=Text()), JSONB))
_LOCK_MEMBER = (
    select(Member, Tier)
    .outerjoin(Tier, Tier.id == Member.tier_id)
    .where(Member.customer_id == bindparam("customer_id"))
    .with_for_update(of=Member)
    .execution_options(populate_existing=True)
)
# SET whichever columns the parameters name (besides `order_pk`).
_UPDATE_ORDER = update(_ORDERS).where(_ORDERS.c.id == bindparam("order_pk"))
_TOUCH_ACTIVITY = (
    update(_MEMBERS)
    .where(_MEMBERS.c.id == bindparam("member_key"))
    .values(last_activity_at=ledger.activity_moved_to())
    .returning(_MEMBERS.c.last_activity_at)
)


def process_event(session: Session, hooks: Hooks, data: dict, digest: str) -> dict:
    """The event applied (or replayed): its answer."""
    return json.loads(answer_event(session, hooks, data, digest))


def encode_answer(answer: dict) -> str:
    """An answer as JSON text, encoded once for both its row and its response: Flask's compact
    form with sorted keys (what `jsonify` sends), anything not JSON-native as its str()."""
    return json.dumps(answer, default=str, sort_keys=True, separators=(",", ":"))


def answer_event(session: Session, hooks: Hooks, data: dict, digest: str) -> str:
    """Apply the event exactly once; its answer as JSON text (`encode_answer`), the same
    answer every time it is sent again."""
    program = program_settings(session)
    started = None
    if (
        data["type"] == "order.paid"
        and data["order"]["currency"] == program.currency
        and session.get_bind().dialect.name == "postgresql"
    ):
        started = _claim_and_place(session, program, data, digest)
        claimed = started is not None
    else:
        claimed = _claim(session, data, digest)
    if not claimed:
        existing = session.get(ProcessedEvent, data["id"], populate_existing=True)
        if existing is None:  # purged between the two statements: the sender retries
            raise Conflict(f"Event {data['id']!r} is being processed; retry.")
        return encode_answer(_replay(existing, digest))
    check_currency(program, data["order"]["currency"])
    if started is not None:
        ctx = _paid(session, hooks, program, data, started)
    else:
        apply = {"order.paid": _paid, "order.refunded": _refunded, "order.canceled": _canceled}
        ctx = apply[data["type"]](session, hooks, program, data)
    answer = encode_answer({
        "event_id": data["id"],
        "duplicate": False,
        "member": members.member_view(session, hooks, ctx.member) if ctx.member else None,
        "effects": ctx.effects,
    })  # fmt: skip
    _store_answer(session, data["id"], answer, ctx)
    return answer


def _store_answer(session: Session, event_id: str, answer: str, ctx) -> None:
    """The answer (JSON text) into the event's row; the handlers' changes to a paid order go
    with it (on PostgreSQL in the same statement, as a data-modifying CTE)."""
    changes = ctx.order_changes
    if session.get_bind().dialect.name != "postgresql":
        if changes:
            session.execute(_UPDATE_ORDER, {**changes, "order_pk": ctx.order.id})
        params = {"response": json.loads(answer), "event_key": event_id}
        session.execute(_STORE_RESPONSE, params)
        return
    params = {"answer": answer, "event_key": event_id}
    if not changes:
        fast(_STORE_ANSWER).execute(session.connection(), params)
    else:
        params |= {f"order_{name}": value for name, value in changes.items()}
        statement = _store_answer_and_order(tuple(changes))
        fast(statement).execute(session.connection(), {**params, "order_pk": ctx.order.id})


@lru_cache(maxsize=64)
def _store_answer_and_order(names: tuple[str, ...]):
    values = {name: bindparam(f"order_{name}", type_=_ORDERS.c[name].type) for name in names}
    changed = update(_ORDERS).where(_ORDERS.c.id == bindparam("order_pk")).values(values)
    return _STORE_ANSWER.add_cte(changed.cte("order_changes"))


def _find_order(session: Session, order_id: str, *, lock: bool = False) -> Order | None:
    query = select(Order).where(Order.order_id == order_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.execute(query).scalar_one_or_none()


def _insert_order(session: Session, order: Order) -> None:
    # No savepoint: losing the race on the unique order id ends the whole event with a 409,
    # and the request's transaction is rolled back anyway (it saves two round trips).
    session.add(order)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Order {order.order_id!r} was recorded by another event.") from exc


def _lock_member(session: Session, customer_id: str) -> tuple[Member | None, Tier | None]:
    """The member's row, locked, and their tier (which earning reads), in one statement."""
    row = session.execute(_LOCK_MEMBER, {"customer_id": customer_id}).first()
    return (row[0], row[1]) if row is not None else (None, None)


def _member_for(session, hooks, program, payload, occurred_at):
    """The paying member (enrolled now if the program says so) and their tier, locked."""
    member, tier = _lock_member(session, payload["customer_id"])
    if member is None and program.auto_enroll:
        members.enroll(
            session,
            hooks,
            payload["customer_id"],
            payload.get("email"),
            name=payload.get("name"),
            enrolled_at=occurred_at,
        )
        member, tier = _lock_member(session, payload["customer_id"])
    return member, tier


def _insert_paid_order(session: Session, row: dict) -> int:
    """INSERT the order unless its id is known (one statement); 409 if it is."""
    order_pk = fast(_insert_new(session, _ORDERS, "order_id", "id")).scalar(
        session.connection(), row
    )
    if order_pk is None:
        _order_taken(session, row["order_id"])
    return order_pk


def _order_taken(session: Session, order_id: str) -> NoReturn:
    """409: the order was paid or canceled by another event (a concurrent one waited for it
    to commit)."""
    status = session.scalar(select(Order.status).where(Order.order_id == order_id))
    state = "canceled" if status == "canceled" else "already paid"
    raise Conflict(f"Order {order_id!r} was recorded by another event: it is {state}.")


# --- order.paid on PostgreSQL: claim, member lock and order insert in one statement ----------


@dataclass
class _Started:
    member: Member | None
    tier: Tier | None
    row: dict  # the order row as inserted
    order_pk: int | None  # None: not inserted (no member yet to enrol, or the order was taken)


_MEMBER_ATTRS = tuple(attr.key for attr in sa_inspect(Member).column_attrs)
_TIER_ATTRS = tuple(attr.key for attr in sa_inspect(Tier).column_attrs)
_TIERS = Tier.__table__


@cache
def _claim_and_place_statement():
    """One statement doing what `_claim`, `_lock_member` and `_insert_paid_order` do, in that
    order (each step reads the one before it, which orders them):

    - `claim`: the event's row, unless it exists (INSERT ... ON CONFLICT DO NOTHING);
    - `locked`: if claimed, the member's row, locked (FOR UPDATE; after waiting for a lock,
      PostgreSQL returns the row as the other transaction committed it);
    - `placed`: if claimed, and the member was found or is not needed (no auto-enrolment),
      the order (ON CONFLICT (order_id) DO NOTHING), with the locked member's id;

    and it answers with the claim, the order's id, the member's and their tier's columns, and
    the config stamp (`config_cache.version_column()`: the settings the event used are checked).
    """
    claim = (
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
    claimed = exists(select(claim.c.event_id))
    locked = (
        select(_MEMBERS)
        .where(_MEMBERS.c.customer_id == bindparam("customer_id"), claimed)
        .with_for_update()
        .cte("locked")
    )
    order_columns = [c for c in _ORDERS.c if c.key != "id"]
    values = [
        select(locked.c.id).scalar_subquery() if c.key == "member_id"
        else bindparam(f"order_{c.key}", type_=c.type)
        for c in order_columns
    ]  # fmt: skip
    placed = (
        postgresql_insert(_ORDERS)
        .from_select(
            [c.key for c in order_columns],
            select(*values).where(
                claimed,
                or_(bindparam("member_optional", type_=Boolean()), exists(select(locked.c.id))),
            ),
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(_ORDERS.c.id)
        .cte("placed")
    )
    one = select(literal(1).label("one")).subquery("one")
    return (
        select(
            select(claim.c.event_id).scalar_subquery().label("claimed"),
            select(placed.c.id).scalar_subquery().label("order_pk"),
            config_cache.version_column(),
            *(locked.c[name].label(f"m_{name}") for name in _MEMBER_ATTRS),
            *(_TIERS.c[name].label(f"t_{name}") for name in _TIER_ATTRS),
        )
        .select_from(one)
        .outerjoin(locked, true())
        .outerjoin(_TIERS, _TIERS.c.id == locked.c.tier_id)
    )


def _attached(session: Session, model, values: dict):
    """The session's instance of `model` holding `values` as just loaded (what a query with
    populate_existing gives), without another query."""
    instance = session.identity_map.get(sa_inspect(model).identity_key_from_primary_key(
        (values["id"],)
    ))  # fmt: skip
    if instance is not None:
        for name, value in values.items():
            set_committed_value(instance, name, value)
        return instance
    instance = built(model, values)
    make_transient_to_detached(instance)  # loaded state: no history, nothing to flush
    session.add(instance)
    return instance


def _claim_and_place(session: Session, program, data: dict, digest: str) -> _Started | None:
    """order.paid on PostgreSQL: None if the event was claimed before (replay it)."""
    payload = data["order"]
    row = _order_row(payload, data["occurred_at"], None)
    params = {f"order_{name}": value for name, value in row.items() if name != "member_id"}
    params |= {
        "event_id": data["id"],
        "event_type": data["type"],
        "event_order_id": payload["id"],
        "body_hash": digest,
        "event_created_at": row["created_at"],
        "customer_id": payload["customer_id"],
        "member_optional": not program.auto_enroll,
    }
    found = fast(_claim_and_place_statement()).first(session.connection(), params)
    config_cache.seen(session, found.config_version)  # StaleConfig: the request runs again
    if found.claimed is None:
        return None
    member = tier = None
    if found.m_id is not None:
        member = _attached(session, Member, {n: getattr(found, f"m_{n}") for n in _MEMBER_ATTRS})
        row["member_id"] = member.id
    if found.t_id is not None:
        # Read only (earning's rate and name): a snapshot, not a row of the session.
        tier = built(Tier, {n: getattr(found, f"t_{n}") for n in _TIER_ATTRS})
    return _Started(member, tier, row, found.order_pk)


_ORDER_FIELDS = tuple(column.key for column in _ORDERS.c if column.key != "id")


def _order_changes(order: Order, inserted: dict) -> dict:
    """What the handlers changed on the (unattached) paid order."""
    changes = {}
    for name in _ORDER_FIELDS:
        value = getattr(order, name)
        if value is not inserted[name] and value != inserted[name]:
            changes[name] = value
    return changes


def _touch_activity(session: Session, member: Member, at: datetime) -> None:
    """Move `last_activity_at` forward to `at` unless earning already did (same UPDATE)."""
    if member.last_activity_at is not None and member.last_activity_at >= at:
        return
    params = {"member_key": member.id, "activity_at": at}
    value = session.execute(_TOUCH_ACTIVITY, params).scalar_one()
    set_committed_value(member, "last_activity_at", value)


def _order_row(payload: dict, occurred_at: datetime, member_id: int | None) -> dict:
    """The paid order's row, as inserted."""
    lines = [{**line, "eligible": line_eligible_amount(line), "refunded_quantity": 0}
             for line in payload["lines"]]  # fmt: skip
    goods = sum(line["quantity"] * line["unit_price"] - line["discount"] for line in lines)
    return {
        "order_id": payload["id"],
        "customer_id": payload["customer_id"],
        "member_id": member_id,
        "email_normalized": members.normalize_email(payload.get("email")),
        "currency": payload["currency"],
        "status": "paid",
        "occurred_at": occurred_at,
        "total_amount": goods + payload["shipping"] + payload["tax"],
        "eligible_amount": sum(line["eligible"] for line in lines),
        "refunded_amount": 0,
        "points_awarded": 0,
        "points_reversed": 0,
        "lines": lines,
        "attributes": {k: payload.get(k) for k in ORDER_ATTRIBUTES},
        "detail": {},
        "created_at": utcnow(),
    }


def _paid(session, hooks, program, data, started=None) -> OrderEventContext:
    payload, occurred_at = data["order"], data["occurred_at"]
    if started is not None and started.order_pk is not None:
        member, tier, row, order_pk = started.member, started.tier, started.row, started.order_pk
    else:
        if started is not None and (started.member is not None or not program.auto_enroll):
            _order_taken(session, payload["id"])  # the member is there: the order was not new
        member, tier = _member_for(session, hooks, program, payload, occurred_at)
        row = _order_row(payload, occurred_at, member.id if member else None)
        order_pk = _insert_paid_order(session, row)
    # The handlers' view of the row: their changes are written once, below.
    order = built(Order, {**row, "id": order_pk, "detail": {}})
    ctx = OrderEventContext(
        session, program, data["id"], data["type"], occurred_at, payload, order, member, tier=tier
    )
    hooks.dispatch("paid", ctx)
    ctx.order_changes = _order_changes(order, row)  # written with the event's answer
    if member is not None:
        _touch_activity(session, member, occurred_at)
    session.flush()
    return ctx


def _refund_value(order: Order, refund: dict) -> int:
    """Eligible money a refund is worth; a line refund is its share of the line's amount."""
    if "amount" in refund:
        return refund["amount"]
    lines = [dict(line) for line in order.lines]
    value = 0
    for wanted in refund["lines"]:
        quantity = wanted["quantity"]
        for line in lines:
            if line["sku"] != wanted["sku"] or quantity == 0:
                continue
            take = min(quantity, line["quantity"] - line["refunded_quantity"])
            if take == 0:
                continue
            before = line["eligible"] * line["refunded_quantity"] // line["quantity"]
            line["refunded_quantity"] += take
            value += line["eligible"] * line["refunded_quantity"] // line["quantity"] - before
            quantity -= take
        if quantity:
            raise ValidationFailed(
                f"Refund of {wanted['quantity']} × {wanted['sku']} exceeds what remains.",
                errors={"refund": {"lines": [f"Not that many {wanted['sku']} left to refund."]}},
            )
    order.lines = lines
    return value


def _refunded(session, hooks, program, data) -> OrderEventContext:
    payload, refund = data["order"], data["refund"]
    order = _find_order(session, payload["id"], lock=True)
    if order is None or order.status != "paid":
        raise Conflict(f"Order {payload['id']!r} has not been paid here (yet); retry later.")
    if order.customer_id is not None and order.customer_id != payload["customer_id"]:
        raise ValidationFailed(errors={"order": {"customer_id": ["Not this order's customer."]}})
    member = None
    if order.member_id is not None:
        member = session.execute(
            select(Member).where(Member.id == order.member_id).with_for_update()
        ).scalar_one()
    amount = _refund_value(order, refund)
    if amount > order.eligible_amount - order.refunded_amount:
        raise ValidationFailed(
            "The refund is larger than what remains of the order.",
            errors={"refund": {"amount": ["Larger than the eligible amount left to refund."]}},
            remaining=order.eligible_amount - order.refunded_amount,
        )
    row = OrderRefund(
        order_pk=order.id, refund_id=refund["id"], amount=amount, occurred_at=data["occurred_at"]
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Refund {refund['id']!r} was already applied by another event.") from exc
    order.refunded_amount += amount
    ctx = OrderEventContext(
        session, program, data["id"], data["type"], data["occurred_at"], payload, order, member,
        refund=row, refund_amount=amount,
    )  # fmt: skip
    ctx.effects.append({"kind": "refund", "amount": amount, "refund_id": refund["id"]})
    hooks.dispatch("refunded", ctx)
    session.flush()
    return ctx


def _canceled(session, hooks, program, data) -> OrderEventContext:
    payload = data["order"]
    order = _find_order(session, payload["id"], lock=True)
    if order is not None and order.status == "paid":
        raise Conflict(f"Order {payload['id']!r} is paid; send order.refunded instead.")
    member = members.find_member(session, payload["customer_id"], lock=True)
    if order is None:
        order = Order(
            order_id=payload["id"],
            customer_id=payload["customer_id"],
            member_id=member.id if member else None,
            currency=payload["currency"],
            status="canceled",
            occurred_at=data["occurred_at"],
            lines=[],
            attributes={k: payload.get(k) for k in ORDER_ATTRIBUTES},
            detail={},
        )
        _insert_order(session, order)
    ctx = OrderEventContext(
        session, program, data["id"], data["type"], data["occurred_at"], payload, order, member
    )
    ctx.effects.append({"kind": "canceled", "order_id": order.order_id})
    hooks.dispatch("canceled", ctx)
    session.flush()
    return ctx
