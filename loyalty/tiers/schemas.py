from marshmallow import fields, validate

from loyalty.schemas import AwareDateTime, DecimalString, Money, StrictSchema, Text, page_schema

MAX_TIERS = 50


def TierName(**kwargs):  # noqa: N802 - reads as a type in schemas
    return fields.String(validate=validate.Length(1, 64), **kwargs)


def Multiplier(**kwargs):  # noqa: N802
    return DecimalString(min_value=0, min_inclusive=False, max_value=100, **kwargs)


class TierSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    name = TierName(required=True)
    threshold = Money(required=True)
    multiplier = Multiplier(required=True)
    perks = fields.List(Text(200), load_default=list, validate=validate.Length(max=50))
    created_at = AwareDateTime(dump_only=True)


class TierUpdateSchema(StrictSchema):
    name = TierName()
    threshold = Money()
    multiplier = Multiplier()
    perks = fields.List(Text(200), validate=validate.Length(max=50))


TierListSchema = page_schema(TierSchema, "TierList")


class ProposedTierSchema(StrictSchema):
    name = TierName(required=True)
    threshold = Money(required=True)
    multiplier = Multiplier(required=True)
    perks = fields.List(Text(200), validate=validate.Length(max=50))


class PreviewSchema(StrictSchema):
    tiers = fields.List(
        fields.Nested(ProposedTierSchema), required=True, validate=validate.Length(1, MAX_TIERS)
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
