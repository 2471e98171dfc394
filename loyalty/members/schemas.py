from marshmallow import ValidationError, fields, validate, validates

from loyalty.schemas import MAX_POINTS, AwareDateTime, MemberId, StrictSchema, Text


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
    available = fields.Integer()
    pending = fields.Integer()
    lifetime_earned = fields.Integer()


class TierViewSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    multiplier = fields.String()
    perks = fields.List(fields.String())
    ends_at = fields.String(allow_none=True)


class NextTierSchema(StrictSchema):
    name = fields.String()
    threshold = fields.Integer()
    remaining_spend = fields.Integer()


class ReferralViewSchema(StrictSchema):
    code = fields.String()
    url = fields.String()


class MemberSchema(StrictSchema):
    id = fields.String()
    email = fields.String()
    name = fields.String(allow_none=True)
    birthday = fields.String(allow_none=True)
    enrolled_at = fields.String()
    points = fields.Nested(PointsSchema)
    tier = fields.Nested(TierViewSchema)
    qualifying_spend = fields.Integer()
    next_tier = fields.Nested(NextTierSchema, allow_none=True)
    referral = fields.Nested(ReferralViewSchema, allow_none=True)


class EntrySchema(StrictSchema):
    id = fields.Integer()
    kind = fields.String()
    points = fields.Integer()
    state = fields.String()
    created_at = AwareDateTime()
    occurred_at = AwareDateTime()
    matures_at = AwareDateTime(allow_none=True)
    expires_at = AwareDateTime(allow_none=True)
    source = fields.Dict()
    rule_id = fields.Integer(allow_none=True)
    detail = fields.Dict()


class EntryPageSchema(StrictSchema):
    items = fields.List(fields.Nested(EntrySchema))
    next_cursor = fields.String(allow_none=True)


class MemberExportSchema(StrictSchema):
    profile = fields.Nested(MemberSchema)
    ledger = fields.List(fields.Nested(EntrySchema))
    orders = fields.List(fields.Dict(), metadata={"description": "By member, id or mailbox."})
    tier_history = fields.List(fields.Dict())
    codes = fields.List(fields.Dict(), metadata={"description": "Reward codes."})
    referrals = fields.Dict(
        metadata={"description": "Share code, friends referred, referrals naming them."}
    )
    gift_card_purchases = fields.List(fields.Dict())


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
