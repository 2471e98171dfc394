from marshmallow import fields, post_dump, validate

from loyalty.earning.models import TRIGGERS
from loyalty.schemas import (
    MAX_POINTS,
    AwareDateTime,
    DecimalString,
    Id,
    Money,
    StrictBoolean,
    StrictSchema,
    Text,
    page_schema,
)


class ConditionsSchema(StrictSchema):
    skus = fields.List(Id(), validate=validate.Length(1, 500))
    categories = fields.List(Text(128), validate=validate.Length(1, 100))
    tiers = fields.List(
        fields.String(validate=validate.Length(1, 64)), validate=validate.Length(1, 50)
    )
    min_spend = Money()


class EarningRuleSchema(StrictSchema):
    """An `EarningRule` (and what creating or changing one takes)."""

    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(1, 128))
    trigger = fields.String(required=True, validate=validate.OneOf(TRIGGERS))
    # The factor on matching lines: "2" = double points. Above 1, or it would be no bonus.
    multiplier = DecimalString(
        min_value=1, min_inclusive=False, max_value=100, allow_none=True, load_default=None
    )
    points = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(1, MAX_POINTS)
    )
    conditions = fields.Nested(ConditionsSchema, load_default=dict)
    starts_at = AwareDateTime(allow_none=True, load_default=None)
    ends_at = AwareDateTime(allow_none=True, load_default=None)
    active = StrictBoolean(load_default=True)
    created_at = AwareDateTime(dump_only=True)
    updated_at = AwareDateTime(dump_only=True)

    @post_dump(pass_original=True)
    def _tiers_by_name(self, data: dict, rule, **kwargs) -> dict:
        """A rule keeps its tiers by id (`earning_rule_tiers`); the API names them."""
        shown = getattr(rule, "shown_conditions", None)  # None when dumping a plain dict
        if shown is not None:
            data["conditions"] = ConditionsSchema().dump(shown)
        return data


class EarningRuleUpdateSchema(StrictSchema):
    name = fields.String(validate=validate.Length(1, 128))
    trigger = fields.String(validate=validate.OneOf(TRIGGERS))
    multiplier = DecimalString(min_value=1, min_inclusive=False, max_value=100, allow_none=True)
    points = fields.Integer(strict=True, allow_none=True, validate=validate.Range(1, MAX_POINTS))
    conditions = fields.Nested(ConditionsSchema)
    starts_at = AwareDateTime(allow_none=True)
    ends_at = AwareDateTime(allow_none=True)
    active = StrictBoolean()


EarningRulePageSchema = page_schema(EarningRuleSchema, "EarningRulePage")
