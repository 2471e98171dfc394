"""Strict query schemas and response shapes of the retention reports."""

import re
from datetime import UTC, datetime, timedelta

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from loyalty.hooks import hooks
from loyalty.reports.service import SEGMENTS
from loyalty.schemas import MAX_MONEY, AwareDateTime, DecimalString, StrictSchema

MAX_RANGE_DAYS = 3660  # ten years: the longest period one retention report covers
# Reports look at what the service has seen; far-off years only mean a typo (and year 1 with a
# positive offset does not even fit a datetime once moved to UTC).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MOMENT_PATTERN = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$"
_MOMENT = re.compile(_MOMENT_PATTERN)


class ReportMoment(fields.Field):
    """`2026-01-01` (midnight UTC) or an ISO 8601 datetime with an offset; naive ones refused."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).update(
            {
                "type": "string",
                "pattern": _MOMENT_PATTERN,
                "example": "2026-01-01",
                "description": self.__doc__,
            }
        )
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _MOMENT.fullmatch(value):
            raise ValidationError("An ISO 8601 date or datetime with an offset.")
        if _DATE.fullmatch(value):
            try:
                moment = datetime.fromisoformat(value).replace(tzinfo=UTC)
            except ValueError as exc:
                raise ValidationError("Not a calendar date.") from exc
        else:
            moment = AwareDateTime()._deserialize(value, attr, data, **kwargs)
        try:
            moment = moment.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError("Out of range.") from exc
        if not EARLIEST <= moment < LATEST:
            raise ValidationError("Must be between 1970-01-01 and 9000-01-01.")
        return moment


class RetentionQuery(StrictSchema):
    from_ = ReportMoment(required=True, data_key="from")
    to = ReportMoment(required=True)

    @validates_schema
    def _ordered_and_bounded(self, data, **_kwargs):
        if "from_" not in data or "to" not in data:
            return
        if data["from_"] >= data["to"]:
            raise ValidationError("Must be after `from`.", "to")
        if data["to"] - data["from_"] > timedelta(days=MAX_RANGE_DAYS):
            raise ValidationError(f"The period may span at most {MAX_RANGE_DAYS} days.", "to")


class CohortQuery(StrictSchema):
    by = fields.String(
        load_default="first_order_month",
        validate=validate.Length(1, 64),
        metadata={
            "description": "`first_order_month`, or a cohort a domain registers: "
            "`referral` (referred by a member) and `reward` (first reward used)."
        },
    )

    @validates("by")
    def _known(self, value, **_kwargs):
        known = ["first_order_month", *sorted(hooks().report_cohorts)]
        if value not in known:
            raise ValidationError(f"Must be one of: {', '.join(known)}.")


class SegmentQuery(StrictSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))
    segment = fields.String(
        load_default=None,
        validate=validate.OneOf(SEGMENTS),
        metadata={
            "description": "Only this segment: its one item in JSON, its members in the CSV."
        },
    )
    as_of = ReportMoment(
        load_default=None,
        metadata={"description": "The moment the segments are computed at (default: now)."},
    )
    active_days = fields.Integer(
        load_default=90,
        validate=validate.Range(1, 3650),
        metadata={"description": "A buyer is active when their last order is this recent."},
    )
    frequent_orders = fields.Integer(
        load_default=3,
        validate=validate.Range(2, 1_000_000),
        metadata={"description": "Paid orders that make a buyer frequent."},
    )
    high_value_top = DecimalString(
        load_default=None,
        min_value="0",
        min_inclusive=False,
        max_value="1",
        metadata={
            "description": 'Share of buyers, by net spend, that is high value (default "0.2").'
        },
    )
    high_value_min = fields.Integer(
        load_default=None,
        validate=validate.Range(0, MAX_MONEY),
        metadata={"description": "Net spend that makes a buyer high value (overrides the share)."},
    )
    low_aov_max = fields.Integer(
        load_default=None,
        validate=validate.Range(0, MAX_MONEY),
        metadata={"description": "Average order value below which it is low (default: median)."},
    )
    member_ids_limit = fields.Integer(
        load_default=1000,
        validate=validate.Range(0, 10_000),
        metadata={"description": "Member ids listed per segment (the CSV lists every member)."},
    )

    @validates_schema
    def _one_high_value_rule(self, data, **_kwargs):
        if data.get("high_value_top") is not None and data.get("high_value_min") is not None:
            raise ValidationError(
                "Give high_value_top or high_value_min, not both.", "high_value_min"
            )


class ReportSourceSchema(StrictSchema):
    database = fields.String(
        metadata={
            "description": "`replica` (REPORTS_DATABASE_URL) or `primary`.",
            "enum": ["replica", "primary"],
        }
    )
    lag_seconds = fields.Float(
        allow_none=True,
        metadata={
            "description": "How far behind the primary the replica was when the report "
            "started: 0 when it had replayed everything it received; null on the primary."
        },
    )
    fallback = fields.String(
        allow_none=True,
        metadata={
            "description": "Why the primary answered though a replica is configured: "
            "`replica-unavailable` or `replica-lagging` (beyond the configured maximum); "
            "null otherwise.",
            "enum": ["replica-unavailable", "replica-lagging", None],
        },
    )


def _source():
    return fields.Nested(
        ReportSourceSchema,
        metadata={"description": "The database the report was read from, and its lag."},
    )


def _rate(description: str):
    return fields.String(allow_none=True, metadata={"description": description})


class RetentionBlockSchema(StrictSchema):
    customers = fields.Integer(
        metadata={"description": "E: customers with a paid order in the period."}
    )
    new_customers = fields.Integer(
        metadata={"description": "N: of those, first order ever in the period."}
    )
    returning_customers = fields.Integer(metadata={"description": "E − N."})
    customers_at_start = fields.Integer(
        metadata={"description": "S: customers with a paid order before `from`."}
    )
    orders = fields.Integer()
    revenue = fields.Integer(metadata={"description": "Net eligible spend of the period's orders."})
    average_order_value = fields.Integer(allow_none=True)
    repeat_purchase_rate = _rate("Percent of E with two or more orders in the period.")
    orders_per_customer = _rate("Orders in the period / E.")
    avg_days_between_orders = _rate(
        "Mean gap between consecutive orders of a customer in the period."
    )
    clv = fields.Integer(
        allow_none=True, metadata={"description": "Mean net spend to `to` of E's customers."}
    )
    retention_rate = _rate("((E − N) / S) × 100.")


def _data_as_of():
    return AwareDateTime(
        allow_none=True,
        metadata={
            "description": "Freshness: every event committed before this time is counted "
            "(the aggregates' last refresh; see docs/reports.md)."
        },
    )


class RetentionSchema(RetentionBlockSchema):
    data_as_of = _data_as_of()
    from_ = AwareDateTime(data_key="from", attribute="from")
    to = AwareDateTime()
    currency = fields.String()
    members = fields.Nested(RetentionBlockSchema)
    non_members = fields.Nested(RetentionBlockSchema)
    source = _source()


class CohortRowSchema(StrictSchema):
    cohort = fields.String()
    customers = fields.Integer()
    orders = fields.Integer()
    revenue = fields.Integer()
    repeat_purchase_rate = fields.String(allow_none=True)
    orders_per_customer = fields.String(allow_none=True)
    clv = fields.Integer(allow_none=True)
    retention = fields.List(
        fields.Integer(),
        metadata={"description": "[k]: customers with a paid order k months after their first."},
    )


class CohortsSchema(StrictSchema):
    data_as_of = _data_as_of()
    by = fields.String()
    currency = fields.String()
    items = fields.List(fields.Nested(CohortRowSchema))
    source = _source()


class SegmentSchema(StrictSchema):
    segment = fields.String()
    count = fields.Integer()
    member_ids = fields.List(fields.String())
    member_ids_truncated = fields.Boolean()


class ThresholdsSchema(StrictSchema):
    active_days = fields.Integer()
    frequent_orders = fields.Integer()
    high_value_top = fields.String(allow_none=True)
    high_value_min = fields.Integer(allow_none=True)
    low_aov_max = fields.Integer(allow_none=True)


class SegmentsSchema(StrictSchema):
    data_as_of = _data_as_of()
    as_of = AwareDateTime()
    currency = fields.String()
    buyers = fields.Integer()
    thresholds = fields.Nested(ThresholdsSchema)
    items = fields.List(fields.Nested(SegmentSchema))
    source = _source()


class PointValueSchema(StrictSchema):
    money = fields.Integer(metadata={"description": "Minor units of discount for `points`."})
    points = fields.Integer()
    per_point = fields.String(
        metadata={"description": "money ÷ points: minor units per point, four places."}
    )
    reward_id = fields.Integer(
        allow_none=True,
        metadata={"description": "The catalog reward it is taken from; null: points at checkout."},
    )
    reward_name = fields.String(
        metadata={"description": 'That reward\'s name, or "Points at checkout".'}
    )


class OutstandingPointsSchema(StrictSchema):
    available = fields.Integer(
        metadata={"description": "Live members' available points (negative balances as 0)."}
    )
    pending = fields.Integer(metadata={"description": "Live members' pending points."})
    outstanding = fields.Integer(metadata={"description": "available + pending."})
    value = fields.Nested(
        PointValueSchema,
        allow_none=True,
        metadata={
            "description": "A point's money value: the best amount ÷ points cost of the "
            "amount-off rewards redeemable now; null when there is none."
        },
    )
    liability = fields.Integer(
        allow_none=True,
        metadata={"description": "outstanding × money ÷ points, rounded half up (minor units)."},
    )


class OverviewGroupSchema(StrictSchema):
    customers = fields.Integer()
    repeat_purchase_rate = fields.String(allow_none=True)
    clv = fields.Integer(allow_none=True)


class OverviewRetentionSchema(StrictSchema):
    members = fields.Nested(OverviewGroupSchema)
    non_members = fields.Nested(OverviewGroupSchema)


class OverviewMonthSchema(StrictSchema):
    month = fields.String(metadata={"description": "`YYYY-MM` (UTC)."})
    points_earned = fields.Integer()
    points_redeemed = fields.Integer()
    points_expired = fields.Integer()
    referral_conversions = fields.Integer()


class OverviewSchema(StrictSchema):
    data_as_of = _data_as_of()
    as_of = AwareDateTime()
    from_ = AwareDateTime(data_key="from", attribute="from")
    to = AwareDateTime()
    currency = fields.String()
    members = fields.Integer(metadata={"description": "Members (erased ones excepted)."})
    active_members = fields.Integer(
        metadata={"description": "Members with a paid order in the last `active_days` days."}
    )
    active_days = fields.Integer()
    points = fields.Nested(OutstandingPointsSchema)
    points_earned = fields.Integer(metadata={"description": "Sum of `months`' points_earned."})
    points_redeemed = fields.Integer(metadata={"description": "Sum of `months`' points_redeemed."})
    points_expired = fields.Integer(metadata={"description": "Sum of `months`' points_expired."})
    redemption_rate = _rate("points_redeemed ÷ points_earned × 100; null when none earned.")
    retention = fields.Nested(
        OverviewRetentionSchema,
        metadata={"description": "/v1/reports/retention over [from, to), member / non-member."},
    )
    referral_conversions = fields.Integer(
        metadata={"description": "Sum of `months`' referral_conversions."}
    )
    months = fields.List(fields.Nested(OverviewMonthSchema))
    source = _source()
