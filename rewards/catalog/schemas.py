from marshmallow import ValidationError, fields, validate, validates_schema

from loyalty.cursors import MAX_INT32_ROW_ID
from loyalty.members.schemas import SourceSchema
from loyalty.schemas import (
    MAX_MONEY,
    MAX_POINTS,
    MAX_QUANTITY,
    AwareDateTime,
    Cursor,
    DecimalString,
    Id,
    Itself,
    MemberId,
    Money,
    PositiveMoney,
    StrictBoolean,
    StrictSchema,
    Text,
    page_schema,
)
from rewards.catalog.models import KINDS, STATUSES


class TierRef(fields.Field):
    """A tier by name (string) or id (integer); null for no requirement."""

    def _serialize(self, value, attr, obj, **kwargs):
        return value

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError("A tier name (string) or id (integer).")
        if isinstance(value, str) and not 1 <= len(value) <= 64:
            raise ValidationError("Length must be between 1 and 64.")
        return value


def _optional_range(low, high):
    return {"allow_none": True, "strict": True, "validate": validate.Range(low, high)}


class RewardFields(StrictSchema):
    name = fields.String(validate=validate.Length(1, 200))
    description = Text(1000, allow_none=True)
    points_cost = fields.Integer(strict=True, validate=validate.Range(1, MAX_POINTS))
    kind = fields.String(validate=validate.OneOf(KINDS))
    amount = Money(allow_none=True)
    percent = fields.Integer(**_optional_range(1, 100))
    sku = Id(allow_none=True)
    min_order = Money()
    tier = TierRef(allow_none=True)
    stock = fields.Integer(**_optional_range(0, MAX_POINTS))
    per_member_limit = fields.Integer(**_optional_range(1, MAX_QUANTITY))
    starts_at = AwareDateTime(allow_none=True)
    ends_at = AwareDateTime(allow_none=True)
    code_valid_days = fields.Integer(strict=True, validate=validate.Range(1, 3650))
    active = StrictBoolean()


class RewardCreateSchema(RewardFields):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    points_cost = fields.Integer(required=True, strict=True, validate=validate.Range(1, MAX_POINTS))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    min_order = Money(load_default=0)
    code_valid_days = fields.Integer(load_default=90, strict=True, validate=validate.Range(1, 3650))
    active = StrictBoolean(load_default=True)


class RewardUpdateSchema(RewardFields):
    @validates_schema
    def _not_null(self, data, **_kwargs):
        for name in ("name", "points_cost", "kind", "min_order", "code_valid_days", "active"):
            if name in data and data[name] is None:
                raise ValidationError("May not be null.", name)


class RewardSchema(StrictSchema):
    """A `service.RewardView`."""

    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    points_cost = fields.Integer()
    kind = fields.String()
    amount = fields.Integer(allow_none=True)
    percent = fields.Integer(allow_none=True)
    sku = fields.String(allow_none=True)
    min_order = fields.Integer()
    currency = fields.String()
    tier = fields.String(allow_none=True)
    tier_id = fields.Integer(allow_none=True)
    stock = fields.Integer(allow_none=True)
    per_member_limit = fields.Integer(allow_none=True)
    starts_at = AwareDateTime(allow_none=True)
    ends_at = AwareDateTime(allow_none=True)
    code_valid_days = fields.Integer()
    active = fields.Boolean()
    created_at = AwareDateTime()


class MemberRewardSchema(RewardSchema):
    """A `service.MemberRewardView`: a reward of the live catalog, for one member."""

    affordable = fields.Boolean(metadata={"description": "Enough points now."})
    redeemable = fields.Boolean(metadata={"description": "Affordable, nothing else in the way."})
    unavailable_reason = fields.String(allow_none=True)


RewardPageSchema = page_schema(RewardSchema, "RewardPage")


class RewardListQuery(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = Cursor(MAX_INT32_ROW_ID)
    active = fields.Boolean(load_default=None, allow_none=True)


class RedeemSchema(StrictSchema):
    reward_id = fields.Integer(required=True, strict=True, validate=validate.Range(1, 2**31 - 1))


class PlatformStateSchema(StrictSchema):
    """Where the store platform is with the code (only when a store connector mirrors it)."""

    name = fields.String(metadata={"enum": ["shopify", "woocommerce"]})
    status = fields.String(metadata={"enum": ["pending", "created", "failed"]})
    error = fields.String()


class RewardCodeSchema(StrictSchema):
    """A `RewardCode` as the shopper and the storefront see it."""

    id = fields.Integer()
    code = fields.String()
    kind = fields.String()
    amount = fields.Integer(allow_none=True)
    percent = fields.Integer(allow_none=True)
    sku = fields.String(allow_none=True)
    min_order = fields.Integer()
    first_order_only = fields.Boolean()
    status = fields.String(metadata={"enum": list(STATUSES)})
    expires_at = AwareDateTime()
    created_at = AwareDateTime()
    used_at = AwareDateTime(allow_none=True)
    order_id = fields.String(attribute="used_order_id", allow_none=True)
    reward_id = fields.Integer(allow_none=True)
    points_spent = fields.Integer()


class RedemptionSchema(RewardCodeSchema):
    """A `service.RedemptionView`."""

    reward = fields.Nested(RewardSchema, allow_none=True)
    source = fields.String(
        attribute="source_type",
        metadata={"description": "What issued it: `redemption` (a catalog reward), `checkout` "
                  "(points at checkout), `referral`, ..."},
    )  # fmt: skip
    canceled_at = AwareDateTime(allow_none=True)
    expired_at = AwareDateTime(allow_none=True)
    points_returned = fields.Integer()
    platform = fields.Nested(PlatformStateSchema)


class ExportedCodeSchema(RewardCodeSchema):
    """A code in its member's export: with whom it was for, and what it came from."""

    customer_id = fields.String(allow_none=True)
    email = fields.String(attribute="email_normalized", allow_none=True)
    source = Itself(SourceSchema)


RedemptionPageSchema = page_schema(RedemptionSchema, "RedemptionPage")


class ValidateCodeSchema(StrictSchema):
    code = Id(required=True)
    customer_id = MemberId(required=True)
    subtotal = Money(required=True)
    email = fields.Email(allow_none=True, load_default=None, validate=validate.Length(max=320))
    # Optional: hold the code for this checkout until it is paid or canceled (or times out).
    order_id = Id(allow_none=True, load_default=None)


class DiscountSchema(StrictSchema):
    kind = fields.String()
    amount = fields.Integer()
    percent = fields.Integer()
    sku = fields.String()


class ValidationResultSchema(StrictSchema):
    """A `service.CodeCheck`."""

    valid = fields.Boolean()
    code = fields.String()
    reward = fields.Nested(RewardSchema, allow_none=True)
    discount = fields.Nested(DiscountSchema)
    expires_at = AwareDateTime()
    min_order = fields.Integer()
    reserved_until = AwareDateTime(allow_none=True)


class RewardSettingsSchema(StrictSchema):
    expired_codes_return_points = StrictBoolean()
    reservation_minutes = fields.Integer(strict=True, validate=validate.Range(1, 7 * 24 * 60))


class CheckoutDiscountRequestSchema(StrictSchema):
    points = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_POINTS))
    cart_subtotal = PositiveMoney(
        required=True,
        metadata={"description": "The cart's goods before discounts (minor units)."},
    )


class CheckoutQuoteQuery(StrictSchema):
    # a query string's number: not `strict`
    cart_subtotal = fields.Integer(required=True, validate=validate.Range(1, MAX_MONEY))


class CheckoutQuoteSchema(StrictSchema):
    """A `service.CheckoutQuote`: the program's points-at-checkout terms, and what the member
    may take off this cart now."""

    enabled = fields.Boolean()
    currency = fields.String()
    value_per_point = DecimalString(
        metadata={"description": "Minor units one point is worth (decimal string)."}
    )
    min_points = fields.Integer()
    step = fields.Integer()
    max_share_of_cart = fields.Integer(metadata={"description": "Percent of the cart."})
    code_valid_hours = fields.Integer()
    cart_subtotal = fields.Integer()
    points_available = fields.Integer()
    max_points = fields.Integer(
        metadata={"description": "The most points one code may take off this cart now (0: none)."}
    )
    max_amount = fields.Integer(metadata={"description": "What `max_points` is worth."})
