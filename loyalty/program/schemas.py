from decimal import Decimal
from zoneinfo import available_timezones

from marshmallow import ValidationError, fields, validate

from loyalty.schemas import MAX_POINTS, Currency, DecimalString, StrictBoolean, StrictSchema


def _at_most_four_places(value: Decimal) -> None:
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise ValidationError("At most 4 decimal places.")


class CheckoutPointsSchema(StrictSchema):
    """Points at checkout: a shopper turns points into an amount-off code for the cart."""

    enabled = StrictBoolean(required=True)
    value_per_point = DecimalString(
        required=True,
        min_value=0,
        min_inclusive=False,
        max_value=1_000_000,
        validate=_at_most_four_places,
        metadata={
            "description": "Minor units of money one point is worth (a decimal string, up to 4 "
            "places): a code for N points is worth floor(N × value_per_point) minor units."
        },
    )
    min_points = fields.Integer(
        strict=True, required=True, validate=validate.Range(1, MAX_POINTS),
        metadata={"description": "The fewest points one code takes (a multiple of `step`)."},
    )  # fmt: skip
    step = fields.Integer(
        strict=True, required=True, validate=validate.Range(1, MAX_POINTS),
        metadata={"description": "Points are taken in multiples of this."},
    )  # fmt: skip
    max_share_of_cart = fields.Integer(
        strict=True, required=True, validate=validate.Range(1, 100),
        metadata={"description": "Percent of the cart subtotal a code may take off at most."},
    )  # fmt: skip
    code_valid_hours = fields.Integer(
        strict=True, required=True, validate=validate.Range(1, 720),
        metadata={"description": "Hours an unused code lives; its points then return."},
    )  # fmt: skip


class ProgramSchema(StrictSchema):
    currency = Currency(required=True)
    timezone = fields.String(required=True, validate=validate.OneOf(sorted(available_timezones())))
    points_per_unit = DecimalString(required=True, min_value=0, max_value=10000)
    pending_days = fields.Integer(strict=True, required=True, validate=validate.Range(0, 3650))
    expiry_inactive_days = fields.Integer(
        strict=True, required=True, allow_none=True, validate=validate.Range(1, 36500)
    )
    qualifying_period = fields.String(
        required=True, validate=validate.OneOf(["calendar_year", "rolling_365"])
    )
    auto_enroll = StrictBoolean(required=True)
    widget_origins = fields.List(
        fields.String(validate=validate.Regexp(r"^https?://[^/\s]+$")),
        required=True,
        validate=validate.Length(max=50),
    )
    checkout_points = fields.Nested(CheckoutPointsSchema, required=True)


class ProgramUpdateSchema(ProgramSchema):
    """PUT /v1/program: fields left out keep their value (within `checkout_points` too)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)
