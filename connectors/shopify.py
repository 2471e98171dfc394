"""Shopify: webhooks in (orders, refunds, customers, GDPR), discount codes out.

Inbound, one rule maps Shopify's orders and refunds (as its webhooks and its REST Admin API
send them) to our order events: `events_from_order` for a whole order, which the bulk import
calls, and the same `paid_event`, `refund_event` and `canceled_event` for the webhooks. The
events then run through `connectors.intake.apply_event`, the service behind `POST /v1/events`.

Our ids are Shopify's, namespaced: customer `shopify:<customer.id>`, order `shopify:<order.id>`,
refund `shopify:<refund.id>`. An event's id is derived from what it is about, not from the
delivery — `shopify:order:<id>:paid`, `shopify:order:<id>:canceled`, `shopify:refund:<id>` —
so an order delivered again under another `X-Shopify-Webhook-Id`, or imported after its
webhook arrived, is one order. An order changed after it was applied here (edited after
payment, then sent again as `orders/paid`) keeps what it first earned: the later copy is
recorded as skipped and answered 200 (the service would answer 409 for the same event id with
another body, and Shopify would send it again for two days). Items taken off by the edit come
as a refund (`refunds/create` with refund line items), which reverses their points.

Money is the shop's (`*_set.shop_money`, or the plain fields, which are in the shop's
currency), never the buyer's presentment currency; an order whose shop currency is not the
program's is refused (422). A guest order (no customer) earns nothing and is skipped (200).
"""

import hashlib
import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from flask import current_app, request
from flask.views import MethodView
from marshmallow import ValidationError, validate
from sqlalchemy import select

from connectors.intake import (
    Outcome,
    OutcomeSchema,
    apply_event,
    blp,
    minor_units,
    record,
    refuse,
    seen,
    verify_signature,
)
from connectors.models import ConnectorDelivery
from loyalty import erasure
from loyalty.addresses import canonical_ip_or_none
from loyalty.audit import record_change
from loyalty.errors import Conflict, CurrencyMismatch, DomainError, ValidationFailed
from loyalty.extensions import db
from loyalty.hooks import Hooks, hooks
from loyalty.members import service as members
from loyalty.members.models import Member
from loyalty.members.schemas import MemberCreateSchema
from loyalty.orders import service as orders
from loyalty.orders.models import Order, ProcessedEvent
from loyalty.program.service import program_settings
from loyalty.schemas import MAX_ID
from loyalty.transaction import on_deadlock

PLATFORM = "shopify"
ACTOR = f"{PLATFORM}:webhook"  # who the audit log says made the changes webhooks ask for
# `financial_status` of an order whose payment was taken (refunds come as their own events).
PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})
MAX_REWARD_CODES = 20  # what an order event takes
REFERRAL_ATTRIBUTES = ("referral_code", "ref")  # note_attributes names, or `?ref=` on landing_site


# --- the mapping: Shopify's JSON in, our event dicts out (pure) -------------------------------


@dataclass(frozen=True)
class OrderEvents:
    """What one Shopify order becomes: its events in the order to apply them, or nothing and
    why (`skipped_reason`); `refused` tells a refusal (another currency: the store's setup is
    wrong) from a skip (a guest order, an unpaid one: nothing to do)."""

    events: list[dict]
    skipped_reason: str | None = None
    refused: bool = False


def customer_key(customer_id) -> str:
    return f"{PLATFORM}:{customer_id}"


def order_key(order_id) -> str:
    return f"{PLATFORM}:{order_id}"


def paid_event_id(order_id) -> str:
    return f"{PLATFORM}:order:{order_id}:paid"


def canceled_event_id(order_id) -> str:
    return f"{PLATFORM}:order:{order_id}:canceled"


def refund_event_id(refund_id) -> str:
    return f"{PLATFORM}:refund:{refund_id}"


def events_from_order(order: dict, currency: str) -> OrderEvents:
    """One order as Shopify's REST Admin API returns it (an item of `orders.json`, with its
    `refunds`) → our order events, in the order to apply them:

    - `order.paid` if `financial_status` says the payment was taken (paid, partially_refunded,
      refunded), then one `order.refunded` per refund that gave back goods or money for them
      (a refund of shipping, tax or duties only is left out: nothing eligible was returned);
    - or `order.canceled` if the order was cancelled before it was paid;
    - or no events and a `skipped_reason`: a guest order (no customer), an order not paid and
      not cancelled; or, with `refused=True`, an order whose shop currency is not `currency`
      (the program's).

    Event ids are derived from Shopify's order and refund ids, so running the result through
    `apply_event` twice, or after the webhooks delivered the same order, applies it once.
    Raises `loyalty.errors.ValidationFailed` for an amount `currency` cannot hold.
    """
    refusal = _not_taken(order, currency)
    if refusal is not None:
        return refusal
    status = order.get("financial_status")
    if status in PAID_STATUSES:
        events = [paid_event(order, currency)]
        reference = order_reference(order, currency)
        for refund in order.get("refunds") or []:
            event = refund_event(refund, reference)
            if event is not None:
                events.append(event)
        return OrderEvents(events)
    if order.get("cancelled_at"):
        return OrderEvents([canceled_event(order, currency)])
    return OrderEvents([], f"not paid (financial_status {status!r})")


def _not_taken(order: dict, currency: str) -> OrderEvents | None:
    shop_currency = str(order.get("currency") or "").upper()
    if shop_currency != currency:
        reason = f"the shop's currency {shop_currency or '(none)'} is not the program's {currency}"
        return OrderEvents([], reason, refused=True)
    if not (order.get("customer") or {}).get("id"):
        return OrderEvents([], "guest checkout: no customer to credit")
    return None


def order_reference(order: dict, currency: str) -> dict:
    """What a refund or cancellation event says of its order."""
    customer = customer_key(order["customer"]["id"])
    return {"id": order_key(order["id"]), "customer_id": customer, "currency": currency}


def paid_event(order: dict, currency: str) -> dict:
    """`order.paid` for a paid order with a customer, in the program's `currency`."""
    taxes_included = bool(order.get("taxes_included"))
    lines = [
        _line(item, currency, taxes_included)
        for item in order.get("line_items") or []
        if _quantity(item) > 0
    ]
    shipping = 0
    for shipping_line in order.get("shipping_lines") or []:
        amount = _shop_money(shipping_line, "discounted_price", currency)
        if amount is None:
            amount = _shop_money(shipping_line, "price", currency) or 0
        if taxes_included:  # the tax inside the price is counted once, in `tax`
            amount -= _taxes(shipping_line, currency)
        shipping += max(amount, 0)
    payload = {
        **order_reference(order, currency),
        "email": _email(order.get("customer") or {}) or _email(order),
        "name": _name(order["customer"]),
        "lines": lines,
        "shipping": shipping,
        "tax": _shop_money(order, "total_tax", currency) or 0,
        "reward_codes": _discount_codes(order),
        "referral_code": _referral_code(order),
        "ip": _ip(order),
        "shipping_address_hash": _address_hash(order.get("shipping_address")),
    }
    return {
        "id": paid_event_id(order["id"]),
        "type": "order.paid",
        "occurred_at": order.get("processed_at") or order.get("created_at"),
        "order": {key: value for key, value in payload.items() if value not in (None, [])},
    }


def refund_event(refund: dict, reference: dict) -> dict | None:
    """`order.refunded` for a Shopify refund of the order `reference` names (`order_reference`),
    or None when it returned nothing eligible (shipping, tax or duties only).

    Refunded line items become refund `lines` (quantity per SKU: the order's lines are
    reversed in proportion); a refund of money without items (Shopify records it as a
    `refund_discrepancy` order adjustment) becomes an `amount` of eligible money."""
    quantities: dict[str, int] = {}
    for item in refund.get("refund_line_items") or []:
        quantity = _quantity(item)
        if quantity > 0:
            sku = line_sku(item.get("line_item") or {"id": item.get("line_item_id")})
            quantities[sku] = quantities.get(sku, 0) + quantity
    if quantities:
        ours: dict[str, object] = {
            "lines": [{"sku": sku, "quantity": n} for sku, n in quantities.items()]
        }
    else:
        amount = -sum(
            _shop_money(adjustment, "amount", reference["currency"]) or 0
            for adjustment in refund.get("order_adjustments") or []
            if adjustment.get("kind") == "refund_discrepancy"
        )
        if amount <= 0:
            return None
        ours = {"amount": amount}
    return {
        "id": refund_event_id(refund["id"]),
        "type": "order.refunded",
        "occurred_at": refund.get("processed_at") or refund.get("created_at"),
        "order": reference,
        "refund": {"id": order_key(refund["id"]), **ours},
    }


def canceled_event(order: dict, currency: str) -> dict:
    """`order.canceled` for an order cancelled before payment (its held codes are released)."""
    return {
        "id": canceled_event_id(order["id"]),
        "type": "order.canceled",
        "occurred_at": order.get("cancelled_at") or order.get("updated_at"),
        "order": order_reference(order, currency),
    }


def line_sku(item: dict) -> str:
    """A line's SKU, or for a line without one (custom items) its line item id."""
    sku = _clean(item.get("sku"))
    if sku and len(sku) <= MAX_ID:
        return sku
    return f"{PLATFORM}-line:{item.get('id')}"


def _line(item: dict, currency: str, taxes_included: bool) -> dict:
    quantity = _quantity(item)
    unit_price = _shop_money(item, "price", currency) or 0
    discount = sum(
        _shop_money(allocation, "amount", currency) or 0
        for allocation in item.get("discount_allocations") or []
    )
    if taxes_included:  # prices hold the tax: it never earns, so it comes off the line
        discount += _taxes(item, currency)
    line = {
        "sku": line_sku(item),
        "quantity": quantity,
        "unit_price": unit_price,
        "discount": min(discount, quantity * unit_price),
    }
    if item.get("gift_card") is True:
        line["gift_card"] = True
    return line


def _quantity(item: dict) -> int:
    quantity = item.get("quantity")
    return quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 0


def _shop_money(item: dict, field: str, currency: str) -> int | None:
    """`field` in the shop's currency: `<field>_set.shop_money.amount`, else the plain field."""
    money = ((item.get(f"{field}_set") or {}).get("shop_money") or {}).get("amount")
    if money is None:
        money = item.get(field)
    if money is None:
        return None
    return minor_units(money, currency, field)


def _taxes(item: dict, currency: str) -> int:
    return sum(_shop_money(tax, "price", currency) or 0 for tax in item.get("tax_lines") or [])


def _clean(text) -> str | None:
    """Text as the database can keep it (no NUL, no lone surrogate), trimmed; None if empty."""
    if not isinstance(text, str):
        return None
    text = "".join(c for c in text if c != "\x00" and not "\ud800" <= c <= "\udfff").strip()
    return text or None


_EMAIL = validate.Email()


def _email(item: dict) -> str | None:
    email = _clean(item.get("email"))
    try:
        return _EMAIL(email) if email and len(email) <= 320 else None
    except ValidationError:
        return None


def _name(customer: dict) -> str | None:
    parts = (_clean(customer.get("first_name")), _clean(customer.get("last_name")))
    name = " ".join(part for part in parts if part)
    return name[:200] or None


def _discount_codes(order: dict) -> list[str]:
    """Every discount code of the order: reward codes are consumed, and a code that is not
    ours (the store's own) is listed as rejected in the event's effects; the order stands."""
    codes = []
    for discount in order.get("discount_codes") or []:
        code = _clean(discount.get("code"))
        if code and len(code) <= MAX_ID and code not in codes:
            codes.append(code)
    return codes[:MAX_REWARD_CODES]


def _referral_code(order: dict) -> str | None:
    for attribute in order.get("note_attributes") or []:
        if attribute.get("name") in REFERRAL_ATTRIBUTES:
            code = _clean(attribute.get("value"))
            if code and len(code) <= MAX_ID:
                return code
    landing = _clean(order.get("landing_site"))
    if landing:  # the share link sends the shopper to the landing page with `?ref=<code>`
        code = _clean((parse_qs(urlsplit(landing).query).get("ref") or [""])[0])
        if code and len(code) <= MAX_ID:
            return code
    return None


def _ip(order: dict) -> str | None:
    texts = (order.get("browser_ip"), (order.get("client_details") or {}).get("browser_ip"))
    return next(filter(None, map(canonical_ip_or_none, texts)), None)


def _address_hash(address: dict | None) -> str | None:
    """The shipping address as the referral rules compare it (same address, same hash)."""
    if not address:
        return None
    parts = [address.get(k) for k in ("address1", "address2", "city", "zip", "country_code")]
    text = "|".join(" ".join(str(p).casefold().split()) if p else "" for p in parts)
    if not text.strip("|"):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


# --- the webhooks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    id: str  # X-Shopify-Webhook-Id: the same on Shopify's retries of one delivery
    topic: str  # X-Shopify-Topic
    shop: str | None  # X-Shopify-Shop-Domain


# Shopify signs the body, not the headers: a body must be shaped as its topic's, so that a
# signed body sent again under another X-Shopify-Topic (an order as customers/redact, a
# customer's redaction as shop/redact) is refused instead of acted on.
SHAPES = {
    "orders/paid": {"line_items", "financial_status"},
    "orders/cancelled": {"line_items", "cancelled_at"},
    "refunds/create": {"order_id", "refund_line_items"},
    "customers/create": {"email", "first_name"},
    "customers/data_request": {"shop_domain", "customer", "orders_requested", "data_request"},
    "customers/redact": {"shop_domain", "customer", "orders_to_redact"},
    "shop/redact": {"shop_id", "shop_domain"},
}
ONLY_THESE = {"shop/redact"}  # its body has nothing else


def _check_shape(topic: str, payload: dict) -> None:
    wanted = SHAPES.get(topic)
    if wanted is None:
        return
    keys = set(payload)
    if not wanted <= keys or (topic in ONLY_THESE and keys != wanted):
        message = f"Not a {topic} body: it has {', '.join(sorted(keys)) or 'nothing'}."
        raise ValidationFailed(message, errors={"json": [message]})


def receive(session, hooks: Hooks, delivery: Delivery, payload: dict) -> Outcome:
    """Take one verified webhook: apply it, skip it or refuse it, and record which.

    A delivery seen before (Shopify retrying one it thought failed) is answered from its
    record, unless it was refused (it may be taken now). A refusal raises the 422 after
    recording it; a 409 (a refund before its order) records nothing: Shopify sends it again.
    """
    previous = seen(session, PLATFORM, delivery.id)
    if previous is not None and previous.status != "refused":
        return Outcome(previous.status, previous.reason, previous.event_id)
    handle = TOPICS.get(delivery.topic)
    if handle is None:
        outcome = Outcome("skipped", f"topic {delivery.topic!r} is not one this service takes")
    else:
        try:
            try:
                _check_shape(delivery.topic, payload)
                outcome = handle(session, hooks, delivery, payload)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                message = f"Not a Shopify {delivery.topic} payload ({exc!r})."
                raise ValidationFailed(message, errors={"json": [message]}) from exc
        except DomainError as error:
            if error.status == 422:
                event_id = _event_id(delivery.topic, payload)
                refuse(session, PLATFORM, delivery.id, delivery.topic, error, event_id)
            raise
    record(session, PLATFORM, delivery.id, delivery.topic, outcome)
    return outcome


def _event_id(topic: str, payload: dict) -> str | None:
    key = payload.get("id") if isinstance(payload, dict) else None
    if key is None:
        return None
    return {
        "orders/paid": paid_event_id,
        "orders/cancelled": canceled_event_id,
        "refunds/create": refund_event_id,
    }.get(topic, lambda _key: None)(key)


def _currency(session) -> str:
    return program_settings(session).currency


def _take(session, hooks: Hooks, mapped: OrderEvents, event_id: str) -> Outcome:
    if mapped.refused:
        raise CurrencyMismatch(f"Not taken: {mapped.skipped_reason}.")
    if mapped.skipped_reason:
        return Outcome("skipped", mapped.skipped_reason, event_id)
    *earlier, last = mapped.events  # not skipped: at least one event
    for event in earlier:
        take_event(session, hooks, event)
    return take_event(session, hooks, last)


def take_event(session, hooks: Hooks, event: dict) -> Outcome:
    """Apply one mapped event through the order service, once. An event applied before with
    other content (the order was edited after it was paid here) is skipped: what it first
    earned stands, and the edit's removals come as refunds."""
    known = session.get(ProcessedEvent, event["id"])
    if known is not None and known.body_hash != orders.body_hash(event):
        reason = "applied before with other content (changed since): the first version stands"
        return Outcome("skipped", reason, event["id"])
    return apply_event(session, hooks, event)


def _orders_paid(session, hooks: Hooks, delivery: Delivery, order: dict) -> Outcome:
    currency = _currency(session)
    mapped = _not_taken(order, currency) or OrderEvents([paid_event(order, currency)])
    return _take(session, hooks, mapped, paid_event_id(order["id"]))


def _orders_cancelled(session, hooks: Hooks, delivery: Delivery, order: dict) -> Outcome:
    currency = _currency(session)
    mapped = _not_taken(order, currency)
    if mapped is None and order.get("financial_status") in PAID_STATUSES:
        mapped = OrderEvents([], "cancelled after payment: its refunds reverse the points")
    mapped = mapped or OrderEvents([canceled_event(order, currency)])
    return _take(session, hooks, mapped, canceled_event_id(order["id"]))


def _refunds_create(session, hooks: Hooks, delivery: Delivery, refund: dict) -> Outcome:
    """A refund names only its order: who paid it and in which currency is read from the order
    as it was recorded here."""
    event_id = refund_event_id(refund["id"])
    order = session.scalar(select(Order).where(Order.order_id == order_key(refund["order_id"])))
    if order is None:
        not_taken = session.scalar(
            select(ConnectorDelivery.reason)
            .where(
                ConnectorDelivery.platform == PLATFORM,
                ConnectorDelivery.event_id == paid_event_id(refund["order_id"]),
                ConnectorDelivery.status.in_(("skipped", "refused")),
            )
            .limit(1)
        )
        if not_taken is None:  # not seen yet: Shopify sends it again later
            raise Conflict(f"Order {order_key(refund['order_id'])!r} has not been paid here (yet).")
        return Outcome("skipped", f"its order was not taken ({not_taken})", event_id)
    if order.status != "paid":
        return Outcome("skipped", "its order was cancelled before payment", event_id)
    if order.customer_id is None:
        return Outcome("skipped", "its order's member was erased", event_id)
    reference = {"id": order.order_id, "customer_id": order.customer_id, "currency": order.currency}
    event = refund_event(refund, reference)
    if event is None:
        return Outcome(
            "skipped", "nothing eligible refunded (shipping, tax or duties only)", event_id
        )
    return take_event(session, hooks, event)


def _customers_create(session, hooks: Hooks, delivery: Delivery, customer: dict) -> Outcome:
    """Enrol the customer as `POST /v1/members` does (with auto-enrolment off too)."""
    email = _email(customer)
    if email is None:
        return Outcome("skipped", "no email: members are enrolled with one")
    data = {"id": customer_key(customer["id"]), "email": email}
    if name := _name(customer):
        data["name"] = name
    try:
        data = MemberCreateSchema().load(data)
    except ValidationError as exc:
        raise ValidationFailed(errors=exc.normalized_messages()) from exc
    try:
        _member, created = members.enroll_from_api(session, hooks, data)
    except Conflict:
        return Outcome("skipped", "already a member, with another email")
    return Outcome("applied", "enrolled" if created else "already a member")


def _customers_data_request(session, hooks: Hooks, delivery: Delivery, body: dict) -> Outcome:
    """Shopify asks, for the merchant, what is held about a customer: the request goes to the
    audit log (action `member.data_request`), and the merchant's answer is the member's export,
    `GET /v1/members/shopify:<id>/export`."""
    customer = body.get("customer") or {}
    customer_id = customer_key(customer.get("id"))
    member = members.find_member(session, customer_id)
    if member is None or customer.get("id") is None:
        return Outcome("skipped", "no member: nothing is held about this customer")
    record_change(session, "member.data_request", "member", member.id, None, {
        "shop": delivery.shop,
        "customer_id": customer_id,
        "data_request_id": (body.get("data_request") or {}).get("id"),
        "orders_requested": body.get("orders_requested") or [],
    }, actor=ACTOR)  # fmt: skip
    return Outcome("applied", "recorded in the audit log; the export is the member's export")


def _customers_redact(session, hooks: Hooks, delivery: Delivery, body: dict) -> Outcome:
    """Erase the member as `DELETE /v1/members/{id}` does."""
    customer = body.get("customer") or {}
    member = None
    if customer.get("id") is not None:
        member = members.find_member(session, customer_key(customer["id"]), lock=True)
    if member is None:
        # Not a member, yet their paid orders may be kept (auto-enrolment off): those go too.
        email = customer.get("email") if isinstance(customer.get("email"), str) else None
        if customer.get("id") is None or not erasure.erase_customer(
            session, customer_key(customer["id"]), email
        ):
            return Outcome("skipped", "no member: nothing is held about this customer")
        return Outcome("applied", "orders of a customer who was not a member erased")
    _erase(session, hooks, member, delivery)
    return Outcome("applied", "member erased")


def _shop_redact(session, hooks: Hooks, delivery: Delivery, body: dict) -> Outcome:
    """Shopify's request, 48 hours after the store uninstalled the app, to delete the store's
    data: every member enrolled from Shopify (`shopify:` ids) is erased as
    `DELETE /v1/members/{id}` erases one, and so are the orders of buyers who never enrolled.
    Orders and ledgers stay, anonymous, so the books add up; members from other channels are
    not the store's Shopify data and stay."""
    prefix = f"{PLATFORM}:"
    member_ids = session.scalars(
        select(Member.id)
        .where(Member.customer_id.startswith(prefix, autoescape=True))
        .order_by(Member.id)
    ).all()
    erased = 0
    for member_id in member_ids:
        member = session.execute(
            select(Member).where(Member.id == member_id).with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()  # fmt: skip
        if member.customer_id and member.customer_id.startswith(prefix):
            _erase(session, hooks, member, delivery)
            erased += 1
    # Buyers who never became members (auto-enrolment off) left orders under their ids.
    buyers = session.execute(
        select(Order.customer_id, Order.email_normalized)
        .where(Order.customer_id.startswith(prefix, autoescape=True))
        .distinct()
    ).all()
    for customer_id, email in buyers:
        erasure.erase_customer(session, customer_id, email)
    return Outcome("applied", f"{erased} members erased")


def _erase(session, hooks: Hooks, member: Member, delivery: Delivery) -> None:
    members.erase(session, hooks, member, actor=ACTOR)


TOPICS = {
    "orders/paid": _orders_paid,
    "orders/cancelled": _orders_cancelled,
    "refunds/create": _refunds_create,
    "customers/create": _customers_create,
    "customers/data_request": _customers_data_request,
    "customers/redact": _customers_redact,
    "shop/redact": _shop_redact,
}


@blp.route("/shopify/webhooks")
class ShopifyWebhooks(MethodView):
    @blp.response(200, OutcomeSchema)
    def post(self):
        """Shopify's webhooks, signed with the app's secret (`X-Shopify-Hmac-Sha256`): orders
        paid and cancelled, refunds, new customers, and the GDPR topics. 401 for a missing or
        wrong signature (nothing recorded); 422 for an order that can't be taken (recorded as
        refused); 200 for the rest, applied or skipped."""
        body = request.get_data()
        headers = request.headers
        verify_signature(
            current_app.config["SHOPIFY_WEBHOOK_SECRETS"],
            body,
            headers.get("X-Shopify-Hmac-Sha256"),
        )
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ValidationFailed(errors={"json": ["The body is not JSON."]}) from exc
        if not isinstance(payload, dict):
            raise ValidationFailed(errors={"json": ["The body is not a JSON object."]})
        delivery = Delivery(
            id=headers.get("X-Shopify-Webhook-Id")
            or headers.get("X-Shopify-Event-Id")
            or "sha256:" + hashlib.sha256(body).hexdigest(),
            topic=headers.get("X-Shopify-Topic", ""),
            shop=headers.get("X-Shopify-Shop-Domain"),
        )
        session = db.session()
        outcome = on_deadlock(
            session,
            lambda: receive(session, hooks(), delivery, payload),
            f"Shopify webhook {delivery.id!r}",
        )
        return outcome
