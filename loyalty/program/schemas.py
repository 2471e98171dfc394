from zoneinfo import available_timezones

from marshmallow import fields, validate

from loyalty.schemas import Currency, DecimalString, StrictBoolean, StrictSchema


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
    tier_basis = fields.String(
        required=True,
        validate=validate.OneOf(["spend", "points", "orders"]),
        metadata={
            "description": "What tier thresholds count in the qualifying period: eligible spend"
            " (minor units), points earned by orders net of reversals, or paid orders not"
            " refunded in full. A change re-evaluates every member's tier at once."
        },
    )
    auto_enroll = StrictBoolean(required=True)
    widget_origins = fields.List(
        fields.String(validate=validate.Regexp(r"^https?://[^/\s]+$")),
        required=True,
        validate=validate.Length(max=50),
    )


class ProgramUpdateSchema(ProgramSchema):
    """PUT /v1/program: fields left out keep their value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)
