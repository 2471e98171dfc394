"""WooCommerce: webhooks in (orders by status, customers, the creation ping), coupons out.

WooCommerce sends the whole order (REST API v3 shape) on every `order.created` and
`order.updated`, whatever changed. So a delivery is not an event: it is a snapshot, and
`events_from_order` reads from it the order events it implies — `order.paid` once the order is
paid, one `order.refunded` per refund, `order.canceled` for an order cancelled unpaid — each
with an id derived from the order (and refund) id, never from the delivery. A snapshot seen
again (a redelivery, a later status, an edit) implies the same event ids, and an event that
already ran is not run again: the first answer stands even if the order was edited since.
The bulk import reads orders from the REST API through the same function.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import current_app, request
from flask.views import MethodView
from marshmallow import ValidationError, fields
from sqlalchemy.orm import Session

from connectors.intake import (
    Outcome,
    apply_event,
    blp,
    minor_units,
    record,
    refuse,
    seen,
    verify_signature,
)
from loyalty.addresses import canonical_ip_or_none
from loyalty.errors import Conflict, CurrencyMismatch, DomainError, ValidationFailed
from loyalty.extensions import db
from loyalty.hooks import Hooks, hooks
from loyalty.members import service as members
from loyalty.members.schemas import MemberCreateSchema
from loyalty.orders.models import ProcessedEvent
from loyalty.program.service import program_settings
from loyalty.schemas import MAX_ID, StrictSchema

PLATFORM = "woocommerce"
# Statuses a WooCommerce order only reaches once paid (`date_paid_gmt` is set by then too).
PAID_STATUSES = frozenset({"processing", "completed", "refunded"})
# `failed` is left out on purpose: WooCommerce lets the shopper pay a failed order again
# (it "needs payment" like a pending one), and a canceled order can never be paid here.
CANCELED_STATUSES = frozenset({"cancelled"})
MAX_REWARD_CODES = 20  # what an order event takes (loyalty/orders/schemas.py)
PING = re.compile(rb"\Awebhook_id=\d+\Z")


def customer_key(customer_id) -> str | None:
    """Our customer id for a WooCommerce customer id (None for a guest, id 0)."""
    if customer_id in (None, "", 0, "0"):
        return None
    return f"{PLATFORM}:{customer_id}"


def order_key(order_id) -> str:
    return f"{PLATFORM}:{order_id}"


@dataclass(frozen=True)
class OrderEvents:
    """What one WooCommerce order means here: `events` (our order event dicts, in the order
    they must run), or none and `skipped_reason`; `refused` marks a reason that is a refusal
    (another currency: the webhook answers 422) rather than nothing to do."""

    events: list[dict] = field(default_factory=list)
    skipped_reason: str | None = None
    refused: bool = False


def events_from_order(order: dict, currency: str) -> OrderEvents:
    """The order events one WooCommerce order (an item of GET /wp-json/wc/v3/orders, or an
    order webhook's body) implies, for a program in `currency`. Pure: no database.

    - guest order (`customer_id` 0): none, skipped "guest order";
    - paid (`status` processing/completed/refunded, or `date_paid_gmt` set): `order.paid`,
      then one `order.refunded` per entry of `refunds` (oldest first) that reverses eligible
      money;
    - cancelled before payment: `order.canceled`;
    - anything else (pending, on-hold, failed, drafts): none, skipped "not paid";
    - another currency than `currency`: none, skipped and `refused`.

    Event ids: `woocommerce:<order id>:paid`, `...:refund:<refund id>`, `...:canceled`; our
    order id is `woocommerce:<order id>`, the customer `woocommerce:<customer_id>`. Money is
    converted exactly; an amount the currency cannot hold, or an order not shaped as
    WooCommerce shapes them, raises `ValidationFailed`.
    """
    try:
        return _order_events(order, currency)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationFailed(
            "Not an order as WooCommerce sends them.", errors={"order": [repr(exc)[:200]]}
        ) from exc


def _order_events(order: dict, currency: str) -> OrderEvents:
    customer_id = customer_key(order.get("customer_id"))
    status = str(order.get("status") or "")
    if customer_id is None:
        return OrderEvents(skipped_reason="guest order (customer_id 0): no member to earn")
    paid = status in PAID_STATUSES or bool(order.get("date_paid_gmt"))
    canceled = not paid and status in CANCELED_STATUSES
    if not paid and not canceled:
        return OrderEvents(skipped_reason=f"not paid (status {status or 'unknown'})")
    order_currency = str(order.get("currency") or "").upper()
    if order_currency != currency.upper():
        return OrderEvents(
            skipped_reason=f"currency {order_currency or 'missing'} is not the program's "
            f"{currency}",
            refused=True,
        )
    base = _event_order(order, customer_id, currency)
    prefix = order_key(order["id"])
    if canceled:
        when = order.get("date_modified_gmt") or order.get("date_created_gmt")
        return OrderEvents([_event(f"{prefix}:canceled", "order.canceled", when, base)])
    lines = _lines(order.get("line_items") or [], currency)
    if not lines:
        return OrderEvents(skipped_reason="no line items")
    paid_order = {
        **base,
        "lines": lines,
        "shipping": minor_units(order.get("shipping_total"), currency, "shipping_total"),
        "tax": minor_units(order.get("total_tax"), currency, "total_tax"),
        "reward_codes": _reward_codes(order.get("coupon_lines") or []),
        "ip": canonical_ip_or_none(order.get("customer_ip_address")),
    }
    paid_at = order.get("date_paid_gmt") or order.get("date_created_gmt")
    events = [_event(f"{prefix}:paid", "order.paid", paid_at, paid_order)]
    eligible = sum(line["quantity"] * line["unit_price"] - line["discount"] for line in lines)
    grand_total = minor_units(order.get("total"), currency, "total")
    refunds = sorted(order.get("refunds") or [], key=lambda refund: int(refund["id"]))
    refunded = reversed_ = 0
    for refund in refunds:
        refunded += abs(minor_units(refund.get("total"), currency, "refunds.total"))
        # Tax, shipping and fees are refunded in the same proportion as they were paid, so a
        # refund reverses its share of the eligible money; all of it once fully refunded.
        share = (
            eligible
            if refunded >= grand_total or grand_total <= 0
            else eligible * refunded // grand_total
        )
        amount = max(0, share - reversed_)
        if amount == 0:
            continue
        reversed_ += amount
        when = refund.get("date_created_gmt") or order.get("date_modified_gmt") or paid_at
        events.append(
            _event(
                f"{prefix}:refund:{refund['id']}", "order.refunded", when, base,
                refund={"id": f"{PLATFORM}:{refund['id']}", "amount": amount},
            )
        )  # fmt: skip
    return OrderEvents(events)


def _event_order(order: dict, customer_id: str, currency: str) -> dict:
    billing = order.get("billing") or {}
    name = " ".join(p for p in (billing.get("first_name"), billing.get("last_name")) if p)
    return {
        "id": order_key(order["id"]),
        "customer_id": customer_id,
        "email": billing.get("email") or None,
        "name": name[:200] or None,
        "currency": currency,
    }


def _event(event_id: str, kind: str, when: str | None, order: dict, **extra) -> dict:
    return {"id": event_id, "type": kind, "occurred_at": _gmt(when), "order": order, **extra}


def _gmt(text: str | None) -> str:
    """WooCommerce's `*_gmt` dates carry no offset: they are UTC."""
    if not text:
        return datetime.now(UTC).isoformat()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationFailed(errors={"date": [f"Not a date: {text!r}."]}) from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _lines(items: list[dict], currency: str) -> list[dict]:
    """Our lines: WooCommerce's `subtotal` is the line before discounts, `total` after (both
    without tax), so the line's discount is their difference. A line whose total does not
    divide by its quantity becomes two lines of the same SKU a cent apart, so nothing is
    rounded."""
    lines = []
    for number, item in enumerate(items):
        quantity = int(item.get("quantity") or 0)
        if quantity <= 0:
            continue
        where = f"line_items[{number}]"
        subtotal = minor_units(item.get("subtotal"), currency, f"{where}.subtotal")
        total = minor_units(item.get("total"), currency, f"{where}.total")
        gross = max(subtotal, total)
        discount = gross - total
        product = item.get("variation_id") or item.get("product_id") or f"line-{item.get('id')}"
        sku = (str(item.get("sku") or "").strip() or f"{PLATFORM}:{product}")[:MAX_ID]
        unit, extra = divmod(gross, quantity)
        for count, price in ((quantity - extra, unit), (extra, unit + 1)):
            if count == 0:
                continue
            share = min(discount, count * price)
            discount -= share
            lines.append({"sku": sku, "quantity": count, "unit_price": price, "discount": share})
    return lines


def _reward_codes(coupons: list[dict]) -> list[str]:
    """Every coupon code used, as a reward code to consume; a store's own coupons are simply
    not found (and noted as such in the event's effects), they never fail the order."""
    codes = []
    for coupon in coupons:
        code = str(coupon.get("code") or "").strip()
        if 0 < len(code) <= MAX_ID and code not in codes:
            codes.append(code)
    return codes[:MAX_REWARD_CODES]


def apply_events(session: Session, hooks: Hooks, events: list[dict]) -> list[Outcome]:
    """Run mapped events through the order service; an event that already ran is not sent
    again (its id is its order's transition, and the order may have been edited since: the
    service would call a changed body a conflict)."""
    outcomes = []
    for event in events:
        if session.get(ProcessedEvent, event["id"]) is not None:
            outcomes.append(Outcome("applied", reason="already applied", event_id=event["id"]))
        else:
            outcomes.append(apply_event(session, hooks, event))
    return outcomes


_MEMBERS = MemberCreateSchema()


def enrol_customer(session: Session, hooks: Hooks, customer: dict) -> Outcome:
    """`customer.created`: the same enrolment as `POST /v1/members`."""
    names = (customer.get("first_name"), customer.get("last_name"))
    name = " ".join(p for p in names if isinstance(p, str) and p)
    data = {"id": customer_key(customer.get("id")), "email": customer.get("email")}
    if name:
        data["name"] = name[:200]
    if data["id"] is None:
        return Outcome("skipped", reason="no customer id")
    try:
        data = _MEMBERS.load(data)
    except ValidationError as exc:
        raise ValidationFailed(errors=exc.normalized_messages()) from exc
    try:
        _member, created = members.enroll_from_api(session, hooks, data)
    except Conflict:  # a 409 would only be sent again (and count towards disabling the hook)
        return Outcome("skipped", reason="already a member, with another email")
    return Outcome("applied", reason=None if created else "already a member")


@dataclass
class Delivery:
    delivery_id: str
    topic: str
    body: dict


def is_ping(body: bytes, topic: str | None) -> bool:
    """The request WooCommerce sends once when a webhook is saved: `webhook_id=<id>`, form
    encoded, no topic (and no signature)."""
    return not topic and PING.match(body) is not None


def verified_delivery(body: bytes, headers, secrets: list[str]) -> Delivery:
    verify_signature(secrets, body, headers.get("X-WC-Webhook-Signature"))
    delivery_id = headers.get("X-WC-Webhook-Delivery-ID") or ""
    topic = headers.get("X-WC-Webhook-Topic") or ""
    if not delivery_id or not topic:
        raise ValidationFailed(errors={"headers": ["X-WC-Webhook-Delivery-ID and -Topic."]})
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise ValidationFailed(errors={"body": ["Not JSON."]}) from exc
    if not isinstance(payload, dict):
        raise ValidationFailed(errors={"body": ["Not a JSON object."]})
    return Delivery(delivery_id, topic, payload)


def handle_delivery(session: Session, hooks: Hooks, delivery: Delivery) -> dict:
    """Apply one verified delivery, exactly once per delivery id; its outcome is recorded."""
    earlier = seen(session, PLATFORM, delivery.delivery_id)
    if earlier is not None and earlier.status != "refused":
        return {"status": earlier.status, "reason": earlier.reason, "duplicate": True,
                "events": []}  # fmt: skip
    try:
        outcomes = _outcomes(session, hooks, delivery)
    except DomainError as error:
        refuse(session, PLATFORM, delivery.delivery_id, delivery.topic, error)
        raise
    applied = [o for o in outcomes if o.status == "applied"]
    if len(outcomes) > 1:  # an order's events: the last one that ran now, if any
        new = [o for o in applied if o.reason != "already applied"]
        outcome = Outcome(
            "applied",
            reason=None if new else "already applied",
            event_id=(new or applied)[-1].event_id,
        )
    else:
        [outcome] = outcomes
    record(session, PLATFORM, delivery.delivery_id, delivery.topic, outcome)
    return {
        "status": outcome.status,
        "reason": outcome.reason,
        "duplicate": False,
        "events": [{"id": o.event_id, "duplicate": _duplicate(o)} for o in applied if o.event_id],
    }


def _outcomes(session: Session, hooks: Hooks, delivery: Delivery) -> list[Outcome]:
    topic, payload = delivery.topic, delivery.body
    if topic in ("order.created", "order.updated"):
        mapped = events_from_order(payload, program_settings(session).currency)
        if mapped.refused:
            raise CurrencyMismatch(f"Not taken: {mapped.skipped_reason}.")
        if not mapped.events:
            return [Outcome("skipped", reason=mapped.skipped_reason)]
        return apply_events(session, hooks, mapped.events)
    if topic == "order.deleted":
        # Only the id is sent. Deleting an order returns no money: points stand until it is
        # refunded, and an unpaid order has nothing here to cancel.
        return [Outcome("skipped", reason="order deleted in WooCommerce: nothing changes")]
    if topic == "customer.created":
        return [enrol_customer(session, hooks, payload)]
    return [Outcome("skipped", reason=f"topic {topic} is not used")]


def _duplicate(outcome: Outcome) -> bool:
    if outcome.answer is None:
        return True  # not run again: it had run before
    return bool(json.loads(outcome.answer).get("duplicate"))


class EventRunSchema(StrictSchema):
    """An order event a delivery ran."""

    id = fields.String()
    duplicate = fields.Boolean(metadata={"description": "The event had been applied before"})


class WooCommerceWebhookResultSchema(StrictSchema):
    status = fields.String(metadata={"description": "applied | skipped | ping"})
    reason = fields.String(allow_none=True)
    duplicate = fields.Boolean(metadata={"description": "This delivery id was taken before"})
    events = fields.List(fields.Nested(EventRunSchema))


@blp.route("/woocommerce/webhooks")
class WooCommerceWebhooks(MethodView):
    @blp.response(200, WooCommerceWebhookResultSchema)
    def post(self):
        """WooCommerce webhooks (orders, customers), signed with one of
        WOOCOMMERCE_WEBHOOK_SECRETS; the ping sent when a webhook is saved answers 200."""
        body = request.get_data(cache=True)
        if is_ping(body, request.headers.get("X-WC-Webhook-Topic")):
            return {"status": "ping", "reason": None, "duplicate": False, "events": []}
        secrets = current_app.config["WOOCOMMERCE_WEBHOOK_SECRETS"]
        delivery = verified_delivery(body, request.headers, secrets)
        return handle_delivery(db.session, hooks(), delivery)
