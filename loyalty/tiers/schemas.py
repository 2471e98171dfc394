from marshmallow import fields, validate

from loyalty.schemas import AwareDateTime, DecimalString, Money, StrictSchema, Text, page_schema
from loyalty.tiers.service import BASES

MAX_TIERS = 50


def TierName(**kwargs):  # noqa: N802 - reads as a type in schemas
    return fields.String(validate=validate.Length(1, 64), **kwargs)


def Multiplier(**kwargs):  # noqa: N802
    return DecimalString(min_value=0, min_inclusive=False, max_value=100, **kwargs)


def EntryRewardId(**kwargs):  # noqa: N802
    return fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(1, 2**31 - 1),
        metadata={
            "description": "A catalog reward whose code a member gets on reaching this tier,"
            " once per qualifying period (not again after a drop and a return in the same"
            " period); null: none. Not on the base tier."
        },
        **kwargs,
    )


def BirthdayPoints(**kwargs):  # noqa: N802
    return fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(0, 10_000_000),
        metadata={
            "description": "Birthday points for members of this tier, instead of the points"
            " of each live birthday rule that applies to them (0: none); null: the rules'"
            " own points."
        },
        **kwargs,
    )


class TierSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    name = TierName(required=True)
    threshold = Money(
        required=True,
        metadata={
            "description": "In the unit of the program's tier_basis: minor units of spend,"
            " points, or orders"
        },
    )
    multiplier = Multiplier(required=True)
    perks = fields.List(Text(200), load_default=list, validate=validate.Length(max=50))
    entry_reward_id = EntryRewardId(load_default=None)
    birthday_points = BirthdayPoints(load_default=None)
    created_at = AwareDateTime(dump_only=True)


class TierUpdateSchema(StrictSchema):
    name = TierName()
    threshold = Money()
    multiplier = Multiplier()
    perks = fields.List(Text(200), validate=validate.Length(max=50))
    entry_reward_id = EntryRewardId()
    birthday_points = BirthdayPoints()


TierListSchema = page_schema(TierSchema, "TierList")


class ProposedTierSchema(StrictSchema):
    name = TierName(required=True)
    threshold = Money(required=True)
    multiplier = Multiplier(required=True)
    perks = fields.List(Text(200), validate=validate.Length(max=50))
    entry_reward_id = EntryRewardId()
    birthday_points = BirthdayPoints()


class PreviewSchema(StrictSchema):
    tiers = fields.List(
        fields.Nested(ProposedTierSchema), required=True, validate=validate.Length(1, MAX_TIERS)
    )
    tier_basis = fields.String(
        validate=validate.OneOf(BASES),
        metadata={"description": "Count the thresholds in this basis (default: the program's)"},
    )


class MoveSchema(StrictSchema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    members = fields.Integer()


class PreviewResultSchema(StrictSchema):
    moves = fields.List(fields.Nested(MoveSchema))


class TierChangeSchema(StrictSchema):
    """A `TierChange`."""

    id = fields.Integer()
    from_ = fields.String(data_key="from", attribute="from_tier", allow_none=True)
    to = fields.String(attribute="to_tier")
    direction = fields.String()
    reason = fields.String()
    source_id = fields.String(allow_none=True)
    qualifying_spend = fields.Integer()
    occurred_at = AwareDateTime()


TierChangePageSchema = page_schema(TierChangeSchema, "TierChangePage")
