"""Order events: validate once, apply exactly once, answer the same way every time.

The flow of an event is one list: the event is taken in (`intake`: claimed once, or its
answer replayed; a paid order inserted with its member locked), the core records the refund or
cancellation, then every registered handler reacts in order — earning points, tier spend,
reward codes, gift card holds, referrals — and the answer is stored with what they changed on
the order, all in the caller's one transaction. The statements, and how they differ between
PostgreSQL and SQLite, are `intake`'s; what happens to an order is here.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, exists, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from loyalty import jsontext, ledger
from loyalty.errors import Conflict, ValidationFailed
from loyalty.fastsql import fast
from loyalty.hooks import Hooks
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.orders import intake
from loyalty.orders.models import Order, OrderRefund
from loyalty.program.service import ProgramSettings, program_settings
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
    """What handlers see: the event, the program, the order and the member.

    `order` is the same kind of object on every event type: a plain `Order` holding the
    order's row (its `id` included), not attached to the session — on `order.paid` the row
    as just inserted, on `order.refunded` as read (locked) with this refund's `lines` and
    `refunded_amount` applied, on `order.canceled` as read (locked) or inserted. Handlers read
    it and assign its fields (`detail`, `points_awarded`, `points_reversed`...: a new value,
    not a dict or list changed in place, as for any JSON column of the ORM); after the last
    handler the core writes whatever changed (`order_changes()`) in one UPDATE, with the
    event's answer. Until then a query of `orders` sees the row as it was.

    `member` is the session's own row, locked (None: the customer is not a member);
    `program` is the cached `ProgramSettings` (plain values, read-only).
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
    # The order's values when the context was made: what `order_changes()` compares with.
    order_as_read: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.order_as_read = dict(sa_inspect(self.order).dict)

    def order_changes(self) -> dict:
        """What changed on `order` since the context was made: column -> value."""
        now, before = sa_inspect(self.order).dict, self.order_as_read
        changes = {}
        for name in _ORDER_FIELDS:
            value, was = now.get(name), before.get(name)
            if value is not was and value != was:
                changes[name] = value
        return changes


def body_hash(payload: object) -> str:
    """The hash of the event's body in canonical JSON (`jsontext.canonical`): the same body
    sent again, in any key order, has the same hash."""
    return hashlib.sha256(jsontext.canonical(payload).encode()).hexdigest()


def line_eligible_amount(line: dict) -> int:
    """Line total after discounts; gift card purchases never earn or count toward a tier."""
    if line.get("gift_card"):
        return 0
    amount: int = line["quantity"] * line["unit_price"] - line.get("discount", 0)
    return amount


def has_paid_orders(
    session: Session,
    *,
    customer_ids: Iterable[str | None] = (),
    emails: Iterable[str | None] = (),
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


def process_event(session: Session, hooks: Hooks, data: dict, digest: str) -> dict:
    """The event applied (or replayed): its answer."""
    answer: dict = json.loads(answer_event(session, hooks, data, digest))
    return answer


def encode_answer(answer: dict) -> str:
    """An answer as JSON text, encoded once for both its row and its response: Flask's compact
    form with sorted keys (what `jsonify` sends), anything not JSON-native as its str()
    (`jsontext.canonical`)."""
    return jsontext.canonical(answer)


def answer_event(session: Session, hooks: Hooks, data: dict, digest: str) -> str:
    """Apply the event exactly once; its answer as JSON text (`encode_answer`), the same
    answer every time it is sent again."""
    applied = apply_event(session, hooks, data, digest)
    if isinstance(applied, str):
        return applied
    view = members.member_view(session, hooks, applied.member) if applied.member else None
    answer = event_answer(applied, view)
    intake.store_answer(session, data["id"], answer, applied.order, applied.order_changes())
    return answer


def apply_event(
    session: Session,
    hooks: Hooks,
    data: dict,
    digest: str,
    started: intake.Started | None = None,
) -> "OrderEventContext | str":
    """The event taken in and every handler run on it: its context, whose answer is still to
    be written (`event_answer`, then `intake.store_answer`); or, for an event applied before,
    its stored answer (JSON text). `started`: an `order.paid` the caller has taken in already
    (`intake.paid_orders`, with the rows of `order_row`)."""
    program = program_settings(session)
    if started is not None:
        return _paid(session, hooks, program, data, started)
    if data["type"] == "order.paid":
        taken = intake.paid_order(session, hooks, program, data, digest, order_row(data))
        if isinstance(taken, intake.Replay):
            return encode_answer(taken.answer)
        return _paid(session, hooks, program, data, taken)
    replay = intake.claim(session, program, data, digest)
    if replay is not None:
        return encode_answer(replay.answer)
    step = _refunded if data["type"] == "order.refunded" else _canceled
    return step(session, hooks, program, data)


def event_answer(ctx: OrderEventContext, view: dict | None) -> str:
    """The answer of an event applied (`apply_event`), with its member's view as it stands
    after the event (None without a member), as JSON text."""
    return encode_answer({
        "event_id": ctx.event_id,
        "duplicate": False,
        "member": view,
        "effects": ctx.effects,
    })  # fmt: skip


_ORDERS, _MEMBERS = Order.__table__, Member.__table__
_ORDER_FIELDS = tuple(column.key for column in _ORDERS.c if column.key != "id")
_TOUCH_ACTIVITY = (
    update(_MEMBERS)
    .where(_MEMBERS.c.id == bindparam("member_key"))
    .values(last_activity_at=ledger.activity_moved_to())
    .returning(_MEMBERS.c.last_activity_at)
)


def _touch_activity(session: Session, member: Member | None, at: datetime) -> None:
    """Move the member's `last_activity_at` forward to `at` unless earning already did (same
    UPDATE); nothing without a member."""
    if member is None or (member.last_activity_at is not None and member.last_activity_at >= at):
        return
    params = {"member_key": member.id, "activity_at": at}
    value = session.execute(_TOUCH_ACTIVITY, params).scalar_one()
    set_committed_value(member, "last_activity_at", value)


def order_row(data: dict) -> dict:
    """The paid order's row, as inserted (`member_id` is the intake's to set)."""
    payload = data["order"]
    lines = [{**line, "eligible": line_eligible_amount(line), "refunded_quantity": 0}
             for line in payload["lines"]]  # fmt: skip
    goods = sum(line["quantity"] * line["unit_price"] - line["discount"] for line in lines)
    return {
        "order_id": payload["id"],
        "customer_id": payload["customer_id"],
        "member_id": None,
        "email_normalized": members.normalize_email(payload.get("email")),
        "currency": payload["currency"],
        "status": "paid",
        "occurred_at": data["occurred_at"],
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


def _paid(
    session: Session, hooks: Hooks, program: ProgramSettings, data: dict, started: intake.Started
) -> OrderEventContext:
    """The order is in (`intake.paid_order`): the handlers earn, count and convert on it."""
    ctx = OrderEventContext(
        session, program, data["id"], data["type"], data["occurred_at"], data["order"],
        started.order, started.member, tier=started.tier,
    )  # fmt: skip
    hooks.dispatch("paid", ctx)
    _touch_activity(session, ctx.member, ctx.occurred_at)
    session.flush()
    return ctx


def apply_paid_group(
    session: Session,
    hooks: Hooks,
    items: list[tuple[dict, intake.Started]],
) -> list[OrderEventContext]:
    """`apply_event` for a group of `order.paid` events already taken in (each with its
    `Started`), of distinct members, orders and mailboxes: each handler on all of them at once
    (`Hooks.dispatch_many`), then their members' activity moved. Their contexts, in order;
    the answers are the caller's to write (`event_answer`, `intake.store_answers`)."""
    program = program_settings(session)
    ctxs = [
        OrderEventContext(
            session, program, data["id"], data["type"], data["occurred_at"], data["order"],
            started.order, started.member, tier=started.tier,
        )
        for data, started in items
    ]  # fmt: skip
    hooks.dispatch_many("paid", ctxs)
    touched = [
        (ctx, ctx.member) for ctx in ctxs
        if ctx.member is not None and (ctx.member.last_activity_at is None
                                       or ctx.member.last_activity_at < ctx.occurred_at)
    ]  # fmt: skip
    if touched and session.get_bind().dialect.name == "postgresql":
        params = [{"member_key": member.id, "activity_at": ctx.occurred_at}
                  for ctx, member in touched]  # fmt: skip
        moved = fast(_TOUCH_ACTIVITY).many(session.connection(), params)
        for (_ctx, member), row in zip(touched, moved, strict=True):
            set_committed_value(member, "last_activity_at", row[0])
    else:
        for ctx, member in touched:
            _touch_activity(session, member, ctx.occurred_at)
    session.flush()
    return ctxs


def _refund_value(order: Order, refund: dict) -> int:
    """Eligible money a refund is worth; a line refund is its share of the line's amount."""
    if "amount" in refund:
        amount: int = refund["amount"]
        return amount
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


def _refunded(
    session: Session, hooks: Hooks, program: ProgramSettings, data: dict
) -> OrderEventContext:
    payload, refund = data["order"], data["refund"]
    order = intake.find_order(session, payload["id"])
    if order is None or order.status != "paid":
        raise Conflict(f"Order {payload['id']!r} has not been paid here (yet); retry later.")
    if order.customer_id is not None and order.customer_id != payload["customer_id"]:
        raise ValidationFailed(errors={"order": {"customer_id": ["Not this order's customer."]}})
    ctx = OrderEventContext(
        session, program, data["id"], data["type"], data["occurred_at"], payload, order,
        _member_of(session, order),
    )  # fmt: skip
    amount = _refund_value(order, refund)
    if amount > order.eligible_amount - order.refunded_amount:
        raise ValidationFailed(
            "The refund is larger than what remains of the order.",
            errors={"refund": {"amount": ["Larger than the eligible amount left to refund."]}},
            remaining=order.eligible_amount - order.refunded_amount,
        )
    ctx.refund = OrderRefund(
        order_pk=order.id, refund_id=refund["id"], amount=amount, occurred_at=data["occurred_at"]
    )
    try:
        with session.begin_nested():
            session.add(ctx.refund)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Refund {refund['id']!r} was already applied by another event.") from exc
    order.refunded_amount += amount
    ctx.refund_amount = amount
    ctx.effects.append({"kind": "refund", "amount": amount, "refund_id": refund["id"]})
    hooks.dispatch("refunded", ctx)
    session.flush()
    return ctx


def _member_of(session: Session, order: Order) -> Member | None:
    """The order's member, locked; None for an order of no member (or an erased one)."""
    if order.member_id is None:
        return None
    query = select(Member).where(Member.id == order.member_id).with_for_update()
    return session.execute(query).scalar_one()


def _canceled(
    session: Session, hooks: Hooks, program: ProgramSettings, data: dict
) -> OrderEventContext:
    payload = data["order"]
    order = intake.find_order(session, payload["id"])
    if order is not None and order.status == "paid":
        raise Conflict(f"Order {payload['id']!r} is paid; send order.refunded instead.")
    member = members.find_member(session, payload["customer_id"], lock=True)
    if order is None:  # canceled before it was paid: recorded, so it is never paid later
        order = intake.insert_order(session, _canceled_row(data, member))
    ctx = OrderEventContext(
        session, program, data["id"], data["type"], data["occurred_at"], payload, order, member
    )
    ctx.effects.append({"kind": "canceled", "order_id": order.order_id})
    hooks.dispatch("canceled", ctx)
    session.flush()
    return ctx


def _canceled_row(data: dict, member: Member | None) -> dict:
    payload = data["order"]
    return {
        "order_id": payload["id"],
        "customer_id": payload["customer_id"],
        "member_id": member.id if member is not None else None,
        "email_normalized": None,
        "currency": payload["currency"],
        "status": "canceled",
        "occurred_at": data["occurred_at"],
        "total_amount": 0,
        "eligible_amount": 0,
        "refunded_amount": 0,
        "points_awarded": 0,
        "points_reversed": 0,
        "lines": [],
        "attributes": {k: payload.get(k) for k in ORDER_ATTRIBUTES},
        "detail": {},
        "created_at": utcnow(),
    }
