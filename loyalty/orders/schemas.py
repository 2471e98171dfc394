from datetime import UTC, datetime, timedelta

from flask import current_app, has_app_context
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from loyalty.addresses import IPAddress
from loyalty.members.schemas import MemberSchema
from loyalty.schemas import (
    MAX_ID,
    MAX_MONEY,
    MAX_QUANTITY,
    AwareDateTime,
    Currency,
    Id,
    MemberId,
    Money,
    Quantity,
    StrictBoolean,
    StrictSchema,
    Text,
)
from loyalty.types import utcnow

EVENT_TYPES = ("order.paid", "order.refunded", "order.canceled")
MAX_FUTURE = timedelta(minutes=5)


class LineSchema(StrictSchema):
    sku = Id(required=True)
    quantity = Quantity(required=True)
    unit_price = Money(required=True)
    discount = Money(load_default=0)
    category = Text(128, allow_none=True, load_default=None)
    gift_card = StrictBoolean(load_default=False)

    @validates_schema
    def _discount_within_line(self, data: dict, **_kwargs: object) -> None:
        total = data["quantity"] * data["unit_price"]
        limit = current_app.config["MAX_ORDER_AMOUNT"]
        if total > limit:
            raise ValidationError(f"quantity × unit_price is above {limit}.", "unit_price")
        if data["discount"] > total:
            raise ValidationError("Larger than the line total.", "discount")


class OrderSchema(StrictSchema):
    id = Id(required=True)
    customer_id = MemberId(required=True)
    email = fields.Email(allow_none=True, load_default=None, validate=validate.Length(max=320))
    name = Text(200, allow_none=True, load_default=None)
    currency = Currency(required=True)
    lines = fields.List(fields.Nested(LineSchema), validate=validate.Length(1, 500))
    shipping = Money(load_default=0)
    tax = Money(load_default=0)
    reward_codes = fields.List(Id(), load_default=list, validate=validate.Length(max=20))
    referral_code = Id(allow_none=True, load_default=None)
    gift_card_holds = fields.List(Id(), load_default=list, validate=validate.Length(max=20))
    shipping_address_hash = Text(128, allow_none=True, load_default=None)
    payment_fingerprint = Text(128, allow_none=True, load_default=None)
    ip = IPAddress(allow_none=True, load_default=None)

    @validates_schema
    def _total_within_limit(self, data: dict, **_kwargs: object) -> None:
        lines = data.get("lines") or []
        total = sum(line["quantity"] * line["unit_price"] - line["discount"] for line in lines)
        total += data["shipping"] + data["tax"]
        limit = current_app.config["MAX_ORDER_AMOUNT"]
        if total > limit:
            raise ValidationError(
                f"The order's total (lines after discounts, shipping and tax) is {total}, "
                f"above {limit}.",
                "lines",
            )


class RefundLineSchema(StrictSchema):
    sku = Id(required=True)
    quantity = Quantity(required=True)


class RefundSchema(StrictSchema):
    id = Id(required=True)
    amount = Money()
    lines = fields.List(fields.Nested(RefundLineSchema), validate=validate.Length(1, 500))

    @validates_schema
    def _amount_or_lines(self, data: dict, **_kwargs: object) -> None:
        if ("amount" in data) == ("lines" in data):
            raise ValidationError("Give either `amount` or `lines`.", "amount")


class EventSchema(StrictSchema):
    id = Id(required=True)
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    occurred_at = AwareDateTime(required=True)
    order = fields.Nested(OrderSchema, required=True)
    refund = fields.Nested(RefundSchema)

    @validates_schema
    def _by_type(self, data: dict, **_kwargs: object) -> None:
        if data["occurred_at"] > utcnow() + MAX_FUTURE:
            raise ValidationError("More than 5 minutes in the future.", "occurred_at")
        if data["type"] == "order.paid" and "lines" not in data["order"]:
            raise ValidationError({"lines": ["Required for order.paid."]}, "order")
        if data["type"] == "order.refunded" and "refund" not in data:
            raise ValidationError("Required for order.refunded.", "refund")
        if data["type"] != "order.refunded" and "refund" in data:
            raise ValidationError("Only for order.refunded.", "refund")


# --- `EventSchema().load`, with a fast path for the common event ------------------------------

_EVENT = EventSchema()
_ORDER = OrderSchema()
_LINE = LineSchema()
_LINE_KEYS = frozenset(LineSchema._declared_fields)
_ORDER_KEYS = frozenset(OrderSchema._declared_fields)
_EVENT_KEYS = frozenset(("id", "type", "occurred_at", "order"))  # no `refund`: marshmallow's
# The fields whose own validators (and, for `ip`, conversion: `Field.deserialize`) the fast
# path runs: exactly marshmallow's rules, without the schema's machinery.
_CUSTOMER_ID, _EMAIL, _CURRENCY, _IP = (
    _ORDER.fields[name] for name in ("customer_id", "email", "currency", "ip")
)


def load_event(event: object) -> dict:
    """`EventSchema().load(event)`: the event validated, or its `ValidationError`.

    An event of the common shape — an order event without a refund, every key one the schema
    knows, every value of the type the field takes (a JSON string, integer, boolean, list or
    object) and within its bounds — is loaded by `_fast_event`, which gives exactly what the
    schema's load gives (the same values, the same keys in the same order, the defaults
    filled in) for a fraction of its CPU. Anything else (a refund, an unknown key, a value of
    another type, one out of bounds, a schema-level rule broken) it declines, and marshmallow
    loads the event — so an invalid event gets marshmallow's own messages. Switched off by
    `EVENT_FAST_VALIDATION=false` (docs/performance.md, "Order events in batches");
    `tests/test_event_fast_load.py` checks the two agree on random events."""
    if not has_app_context() or current_app.config.get("EVENT_FAST_VALIDATION", True):
        data = _fast_event(event)
        if data is not None:
            return data
    loaded: dict = _EVENT.load(event)  # type: ignore[arg-type]
    return loaded


def _an_id(value: object) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_ID


def _money(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_MONEY


def _text(value: object, max_length: int) -> bool:
    return value is None or (type(value) is str and len(value) <= max_length)


def _validated(field: fields.Field, value: object) -> None:
    """The field's own validators on a string (what its `deserialize` runs after taking a
    string as it is): ValidationError if one refuses it."""
    for validator in field.validators:
        validator(value)


def _ids(value: object) -> list | None:
    """A list of at most 20 ids, as a new list; None if it is not one."""
    if type(value) is not list or len(value) > 20 or not all(_an_id(item) for item in value):
        return None
    return list(value)


def _fast_event(event: object) -> dict | None:
    """`EventSchema().load(event)` for an event of the common shape (`load_event`); None for
    anything else, marshmallow's to load. Every value is checked as its field checks it, and
    the schemas' own `validates_schema` methods run on the result."""
    if type(event) is not dict or not _EVENT_KEYS.issuperset(event):
        return None
    event_id, kind, moment, payload = (
        event.get("id"), event.get("type"), event.get("occurred_at"), event.get("order")
    )  # fmt: skip
    if not _an_id(event_id) or type(kind) is not str or kind not in EVENT_TYPES:
        return None
    if type(moment) is not str or type(payload) is not dict:
        return None
    try:
        occurred_at = datetime.fromisoformat(moment)  # AwareDateTime(format="iso")'s parser
        if occurred_at.tzinfo is None or occurred_at.tzinfo.utcoffset(occurred_at) is None:
            return None
        occurred_at.astimezone(UTC)
        order = _fast_order(payload)
        if order is None:
            return None
        data = {"id": event_id, "type": kind, "occurred_at": occurred_at, "order": order}
        _EVENT._by_type(data)
    except (ValueError, OverflowError, ValidationError):
        return None
    return data


def _fast_order(payload: dict) -> dict | None:
    if not _ORDER_KEYS.issuperset(payload):
        return None
    get = payload.get
    order_id, customer_id, email, name = get("id"), get("customer_id"), get("email"), get("name")
    if not _an_id(order_id) or not _an_id(customer_id) or not _text(name, 200):
        return None
    currency = get("currency")
    if type(currency) is not str or (email is not None and type(email) is not str):
        return None
    _validated(_CUSTOMER_ID, customer_id)
    _validated(_CURRENCY, currency)
    if email is not None:
        _validated(_EMAIL, email)
    order: dict = {
        "id": order_id, "customer_id": customer_id, "email": email, "name": name,
        "currency": currency,
    }  # fmt: skip
    if "lines" in payload:
        lines = payload["lines"]
        if type(lines) is not list or not 0 < len(lines) <= 500:
            return None
        loaded = []
        for line in lines:
            if type(line) is not dict:
                return None
            found = _fast_line(line)
            if found is None:
                return None
            loaded.append(found)
        order["lines"] = loaded
    shipping, tax = get("shipping", 0), get("tax", 0)
    if not _money(shipping) or not _money(tax):
        return None
    order["shipping"], order["tax"] = shipping, tax
    reward_codes, gift_card_holds = _ids(get("reward_codes", [])), _ids(get("gift_card_holds", []))
    if reward_codes is None:
        return None
    order["reward_codes"] = reward_codes
    referral_code = get("referral_code")
    if referral_code is not None and not _an_id(referral_code):
        return None
    order["referral_code"] = referral_code
    if gift_card_holds is None:
        return None
    order["gift_card_holds"] = gift_card_holds
    address, fingerprint, ip = (
        get("shipping_address_hash"), get("payment_fingerprint"), get("ip")
    )  # fmt: skip
    if not _text(address, 128) or not _text(fingerprint, 128):
        return None
    order["shipping_address_hash"], order["payment_fingerprint"] = address, fingerprint
    order["ip"] = _IP.deserialize(ip) if ip is not None else None
    _ORDER._total_within_limit(order)
    return order


def _fast_line(line: dict) -> dict | None:
    if not _LINE_KEYS.issuperset(line):
        return None
    get = line.get
    sku, quantity, unit_price, discount, category, gift_card = (
        get("sku"), get("quantity"), get("unit_price"), get("discount", 0), get("category"),
        get("gift_card", False),
    )  # fmt: skip
    if not _an_id(sku) or type(quantity) is not int or not 0 < quantity <= MAX_QUANTITY:
        return None
    if not _money(unit_price) or not _money(discount) or not _text(category, 128):
        return None
    if type(gift_card) is not bool:
        return None
    loaded = {
        "sku": sku, "quantity": quantity, "unit_price": unit_price, "discount": discount,
        "category": category, "gift_card": gift_card,
    }  # fmt: skip
    _LINE._discount_within_line(loaded)
    return loaded


class EffectSchema(Schema):
    """One thing an event did. Every effect has its `kind`; the other members depend on it
    (points earned or reversed, a tier change, a reward code used, a gift card captured...)."""

    class Meta:
        unknown = INCLUDE

    kind = fields.String(
        required=True,
        metadata={
            "description": "earn, bonus, reversal, clawback, refund, canceled, tier_changed, "
            "referral, reward_code_used, reward_code_rejected, reward_code_released, "
            "gift_card_capture, gift_card_void..."
        },
    )
    points = fields.Integer()
    state = fields.String()
    entry_id = fields.Integer()
    matures_at = AwareDateTime(allow_none=True)


class EventResultSchema(StrictSchema):
    """An event's answer, stored with the event as JSON text and sent again byte for byte
    (`service.encode_answer`): `member` is the member view's fast path (`MemberSchema`)."""

    event_id = fields.String()
    duplicate = fields.Boolean()
    member = fields.Nested(MemberSchema, allow_none=True)
    effects = fields.List(fields.Nested(EffectSchema))


class EventBatchSchema(StrictSchema):
    events = fields.List(
        fields.Raw(),
        required=True,
        validate=validate.Length(1, 500),
        metadata={"description": "1 to 500 events, each exactly what `POST /v1/events` takes."},
    )


class EventBatchItemSchema(StrictSchema):
    id = fields.String(
        allow_none=True, metadata={"description": "The event's id (null if it had none)."}
    )
    status = fields.Integer(
        metadata={"description": "The HTTP status `POST /v1/events` gives this event."}
    )
    body = fields.Raw(
        metadata={
            "description": "The event's answer (as `POST /v1/events` answers: `event_id`, "
            "`duplicate`, `member`, `effects`) or its problem+json."
        }
    )


class EventBatchResultSchema(StrictSchema):
    """One result per event, in the order the events were sent."""

    results = fields.List(fields.Nested(EventBatchItemSchema))
