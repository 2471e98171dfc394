import re

from marshmallow import ValidationError, fields, post_dump, validate

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

# An action's type: the built-in ones and any a store names (lowercase, a bounded slug).
BUILT_IN_ACTION_TYPES = ("review", "social_follow", "newsletter_signup", "profile_completed")
ACTION_TYPE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
ACTION_TYPE_RULE = "1 to 64 characters of a-z, 0-9, _ . and -, starting with a letter or digit."
MAX_CAP = 1_000_000
MAX_LAPSE_DAYS = 3650  # a lapse rule's days without a paid order: at most ten years


def _an_action_type(value: str) -> None:
    if not ACTION_TYPE.fullmatch(value):
        raise ValidationError(ACTION_TYPE_RULE)


def ActionType(**kwargs):  # noqa: N802 - reads as a type in schemas
    """An action's type: a built-in one or the store's own name."""
    return fields.String(
        validate=_an_action_type,
        metadata={
            "description": f"Built in: {', '.join(BUILT_IN_ACTION_TYPES)}; or the store's own "
            f"name: {ACTION_TYPE_RULE}",
            "pattern": f"^{ACTION_TYPE.pattern}$",
        },
        **kwargs,
    )


class ConditionsSchema(StrictSchema):
    skus = fields.List(Id(), validate=validate.Length(1, 500))
    categories = fields.List(Text(128), validate=validate.Length(1, 100))
    tiers = fields.List(
        fields.String(validate=validate.Length(1, 64)), validate=validate.Length(1, 50)
    )
    min_spend = Money()
    action_type = ActionType()  # action rules: the type of action they reward
    # Lapse rules: the days without a paid order after which a member gets the points.
    days = fields.Integer(
        strict=True,
        validate=validate.Range(1, MAX_LAPSE_DAYS),
        metadata={"description": "Lapse rules: the points go to a member once this many days "
                  "pass without a paid order, once per lapse."},
    )  # fmt: skip


class CapsSchema(StrictSchema):
    """Most awards of one action rule a member gets per calendar day, per calendar month (in
    the program's time zone, by the action's `occurred_at`) and in all."""

    per_day = fields.Integer(strict=True, validate=validate.Range(1, MAX_CAP))
    per_month = fields.Integer(strict=True, validate=validate.Range(1, MAX_CAP))
    lifetime = fields.Integer(strict=True, validate=validate.Range(1, MAX_CAP))


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
    caps = fields.Nested(CapsSchema, allow_none=True, load_default=None)
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
    caps = fields.Nested(CapsSchema, allow_none=True)
    starts_at = AwareDateTime(allow_none=True)
    ends_at = AwareDateTime(allow_none=True)
    active = StrictBoolean()


EarningRulePageSchema = page_schema(EarningRuleSchema, "EarningRulePage")
