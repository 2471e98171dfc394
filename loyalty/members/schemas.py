from marshmallow import ValidationError, fields, validate, validates

from loyalty.email.schemas import EmailExportSchema
from loyalty.schemas import (
    MAX_POINTS,
    AwareDateTime,
    DecimalString,
    Itself,
    MemberId,
    StrictSchema,
    Text,
    page_schema,
)
from loyalty.tiers.schemas import TierChangeSchema


class MemberCreateSchema(StrictSchema):
    id = MemberId(required=True)
    email = fields.Email(required=True, validate=validate.Length(max=320))
    name = Text(200, allow_none=True)
    birthday = fields.String(allow_none=True, validate=validate.Regexp(r"^\d{2}-\d{2}$"))

    @validates("birthday")
    def _real_day(self, value, **_kwargs):
        if value is None:
            return
        month, day = int(value[:2]), int(value[3:])
        days = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        if not (1 <= month <= 12 and 1 <= day <= days[month - 1]):
            raise ValidationError("Not a calendar day (MM-DD).")


class PointsSchema(StrictSchema):
    """A member's balances, from the member's columns."""

    available = fields.Integer(attribute="points_available")
    pending = fields.Integer(attribute="points_pending")
    lifetime_earned = fields.Integer(attribute="points_lifetime")


class TierViewSchema(StrictSchema):
    """A `tiers.service.TierStanding`."""

    id = fields.Integer()
    name = fields.String()
    multiplier = DecimalString()
    perks = fields.List(fields.String())
    ends_at = AwareDateTime(allow_none=True)


class NextTierSchema(StrictSchema):
    """A `tiers.service.NextTier`."""

    name = fields.String()
    threshold = fields.Integer(metadata={"description": "in the unit of `tier_basis`"})
    remaining = fields.Integer(metadata={"description": "left to reach it, in that unit"})
    remaining_spend = fields.Integer(
        allow_none=True, metadata={"description": "`remaining` when the basis is spend, else null"}
    )


class ReferralViewSchema(StrictSchema):
    code = fields.String()
    url = fields.String()


class MemberSchema(StrictSchema):
    """The member view: a `service.MemberView` (`service.view_from_row` writes the same JSON
    by hand for the reads that answer most often; a test holds the two equal)."""

    id = fields.String(allow_none=True, metadata={"description": "null once erased"})
    email = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    birthday = fields.String(allow_none=True)
    enrolled_at = AwareDateTime()
    points = Itself(PointsSchema)
    tier = fields.Nested(TierViewSchema, attribute="standing.tier")
    qualifying_spend = fields.Integer(attribute="standing.qualifying_spend")
    tier_basis = fields.String(
        attribute="standing.tier_basis",
        metadata={"description": "what tiers count: spend, points or orders"},
    )
    qualifying_value = fields.Integer(
        attribute="standing.qualifying_value",
        metadata={"description": "this period's spend, points earned or paid orders"},
    )
    next_tier = fields.Nested(NextTierSchema, attribute="standing.next_tier", allow_none=True)
    referral = fields.Nested(ReferralViewSchema, allow_none=True)


class SourceSchema(StrictSchema):
    """What an entry came from: an order, a redemption, an admin..."""

    type = fields.String(attribute="source_type")
    id = fields.String(attribute="source_id")


class EntrySchema(StrictSchema):
    """A `LedgerEntry`."""

    id = fields.Integer()
    kind = fields.String()
    points = fields.Integer()
    state = fields.String()
    created_at = AwareDateTime()
    occurred_at = AwareDateTime()
    matures_at = AwareDateTime(allow_none=True)
    expires_at = AwareDateTime(allow_none=True)
    source = Itself(SourceSchema)
    rule_id = fields.Integer(allow_none=True)
    detail = fields.Function(lambda entry: entry.detail or {}, metadata={"type": "object"})


EntryPageSchema = page_schema(EntrySchema, "EntryPage")


class OrderExportSchema(StrictSchema):
    """An `Order` as a member's export shows it."""

    id = fields.String(attribute="order_id")
    customer_id = fields.String(allow_none=True)
    email = fields.String(attribute="email_normalized", allow_none=True)
    status = fields.String()
    currency = fields.String()
    occurred_at = AwareDateTime(allow_none=True)
    total_amount = fields.Integer()
    eligible_amount = fields.Integer()
    refunded_amount = fields.Integer()
    points_awarded = fields.Integer()
    points_reversed = fields.Integer()
    lines = fields.List(fields.Dict(), allow_none=True)
    attributes = fields.Dict(allow_none=True)
    detail = fields.Dict(allow_none=True)


class MemberExportSchema(StrictSchema):
    """A `service.MemberExport`."""

    profile = fields.Nested(MemberSchema)
    ledger = fields.List(fields.Nested(EntrySchema))
    orders = fields.List(
        fields.Nested(OrderExportSchema), metadata={"description": "By member, id or mailbox."}
    )
    tier_history = fields.List(fields.Nested(TierChangeSchema))
    codes = fields.List(fields.Dict(), metadata={"description": "Reward codes."})
    referrals = fields.Dict(
        metadata={"description": "Share code, friends referred, referrals naming them."}
    )
    gift_card_purchases = fields.List(fields.Dict())
    actions = fields.List(
        fields.Dict(), metadata={"description": "Custom actions: id, type, occurred_at, detail."}
    )
    emails = fields.List(
        fields.Nested(EmailExportSchema),
        metadata={"description": "The program's own emails to them (loyalty/email)."},
    )


class AdjustmentSchema(StrictSchema):
    points = fields.Integer(
        strict=True,
        required=True,
        validate=[
            validate.Range(-MAX_POINTS, MAX_POINTS),
            validate.NoneOf([0], error="Must not be zero."),
        ],
    )
    reason = fields.String(required=True, validate=validate.Length(1, 500))
