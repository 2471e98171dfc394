from datetime import timedelta

from flask import current_app
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from loyalty.addresses import IPAddress
from loyalty.members.schemas import MemberSchema
from loyalty.schemas import (
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
