from marshmallow import fields, validate

from loyalty.addresses import IPAddress
from loyalty.schemas import (
    MAX_MONEY,
    AwareDateTime,
    Currency,
    Id,
    Money,
    PaginationQuery,
    PositiveMoney,
    StrictSchema,
    Text,
    page_schema,
)
from rewards.giftcards.models import CARD_STATUSES, MAX_HOLD_SECONDS, SOURCES


class GiftCardCreateSchema(StrictSchema):
    amount = Money(required=True)
    currency = Currency(required=True)
    bonus_amount = Money(load_default=0)
    expires_at = AwareDateTime(allow_none=True, load_default=None)
    note = Text(500, allow_none=True, load_default=None)


class GiftCardSchema(StrictSchema):
    """A `service.CardView`."""

    id = fields.Integer()
    last4 = fields.String()
    balance = fields.Integer()
    currency = fields.String()
    status = fields.String()
    expires_at = AwareDateTime(allow_none=True)
    source = fields.String()
    paid_amount = fields.Integer()
    bonus_amount = fields.Integer()
    held_amount = fields.Integer()
    captured_amount = fields.Integer()
    refunded_amount = fields.Integer()
    adjusted_amount = fields.Integer()
    expired_amount = fields.Integer()
    note = fields.String(allow_none=True)
    created_at = AwareDateTime()
    disabled_at = AwareDateTime(allow_none=True)


class IssuedGiftCardSchema(GiftCardSchema):
    code = fields.String(metadata={"description": "Shown once, here; never stored."})


class GiftCardTransactionSchema(StrictSchema):
    id = fields.Integer()
    kind = fields.String()
    amount = fields.Integer()
    balance_change = fields.Integer()
    hold_id = fields.Integer(allow_none=True)
    order_id = fields.String(allow_none=True)
    actor = fields.String()
    detail = fields.Function(lambda txn: txn.detail or {}, metadata={"type": "object"})
    created_at = AwareDateTime()


class GiftCardDetailSchema(GiftCardSchema):
    transactions = fields.List(fields.Nested(GiftCardTransactionSchema))


GiftCardPageSchema = page_schema(GiftCardSchema, "GiftCardPage")


class GiftCardListQuery(PaginationQuery):
    status = fields.String(load_default=None, validate=validate.OneOf(CARD_STATUSES))
    source = fields.String(load_default=None, validate=validate.OneOf(SOURCES))


class GiftCardRefundSchema(StrictSchema):
    amount = PositiveMoney(required=True)
    order_id = Id(required=True)


class GiftCardAdjustmentSchema(StrictSchema):
    amount = fields.Integer(
        required=True,
        strict=True,
        validate=[validate.Range(-MAX_MONEY, MAX_MONEY), validate.NoneOf([0])],
        metadata={"description": "Signed, minor units: + credits, - debits (never below 0)."},
    )
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class GiftCardCodeSchema(StrictSchema):
    code = Id(required=True)
    ip = IPAddress(
        metadata={
            "description": "The shopper's address, forwarded by the storefront: limits count"
            " per shopper, not per storefront server"
        }
    )


class GiftCardLookupResultSchema(StrictSchema):
    last4 = fields.String()
    balance = fields.Integer()
    currency = fields.String()
    status = fields.String()
    expires_at = AwareDateTime(allow_none=True)


class GiftCardHoldCreateSchema(StrictSchema):
    code = Id(required=True)
    amount = PositiveMoney(required=True)
    order_id = Id(required=True)
    expires_in = fields.Integer(strict=True, validate=validate.Range(1, MAX_HOLD_SECONDS))
    ip = IPAddress(
        metadata={
            "description": "The shopper's address, forwarded by the storefront: limits count"
            " per shopper, not per storefront server"
        }
    )


class GiftCardHoldCardSchema(StrictSchema):
    id = fields.Integer()
    last4 = fields.String()
    balance = fields.Integer()


class GiftCardHoldSchema(StrictSchema):
    """A `service.HoldView`."""

    id = fields.Integer()
    amount = fields.Integer()
    captured_amount = fields.Integer()
    status = fields.String()
    order_id = fields.String()
    created_at = AwareDateTime()
    expires_at = AwareDateTime()
    resolved_at = AwareDateTime(allow_none=True)
    card = fields.Nested(GiftCardHoldCardSchema)


class GiftCardCaptureSchema(StrictSchema):
    amount = PositiveMoney()


class GiftCardCheckoutCreateSchema(StrictSchema):
    amount = PositiveMoney(required=True)
    currency = Currency(required=True)
    purchaser_email = fields.Email(required=True, validate=validate.Length(max=320))
    recipient_email = fields.Email(
        allow_none=True, load_default=None, validate=validate.Length(max=320)
    )
    success_url = fields.Url(required=True, validate=validate.Length(max=2000))
    cancel_url = fields.Url(required=True, validate=validate.Length(max=2000))


class GiftCardCheckoutSchema(StrictSchema):
    session_id = fields.String()
    url = fields.String()


class StripeWebhookResultSchema(StrictSchema):
    received = fields.Boolean()
    result = fields.String()
    card_id = fields.Integer()


class GiftCardRevealedCodeSchema(StrictSchema):
    """A `service.IssuedCardView`, bought: what the storefront may show of it."""

    code = fields.String()
    card_id = fields.Integer(attribute="id")
    last4 = fields.String()
    balance = fields.Integer()
    currency = fields.String()
    expires_at = AwareDateTime(allow_none=True)


class PurchaseExportSchema(StrictSchema):
    """A `GiftCardPurchase` in a member's export."""

    session_id = fields.String()
    amount = fields.Integer()
    currency = fields.String()
    purchaser_email = fields.String(allow_none=True)
    recipient_email = fields.String(allow_none=True)
    status = fields.String()
    gift_card_id = fields.Integer(attribute="card_id", allow_none=True)
    created_at = AwareDateTime()
    completed_at = AwareDateTime(allow_none=True)
