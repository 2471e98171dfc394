from flask import Response, stream_with_context
from flask.views import MethodView
from marshmallow import RAISE

from loyalty.auth import require
from loyalty.extensions import Blueprint
from loyalty.hooks import hooks
from loyalty.reports import aggregates, overview, service
from loyalty.reports.schemas import (
    CohortQuery,
    CohortsSchema,
    OverviewSchema,
    RetentionQuery,
    RetentionSchema,
    SegmentQuery,
    SegmentsSchema,
)
from loyalty.reports.source import Source, reports_session
from loyalty.types import utcnow

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/v1/reports",
    description=(
        "Retention reports over the paid orders the service has seen (admin or reports scope). "
        "An order's value is its net eligible spend: goods after discounts, without tax, "
        "shipping or gift card purchases, minus refunds; money in minor units. Rates and "
        "averages are decimal strings with two places (rates in percent), null when there is "
        "nothing to divide by. Dates are midnight UTC; periods are [from, to)."
    ),
)


@blp.route("/retention")
class Retention(MethodView):
    @require("reports")
    @blp.arguments(RetentionQuery, location="query", unknown=RAISE)
    @blp.response(200, RetentionSchema)
    def get(self, query):
        """Retention over [from, to), overall and split by member / non-member orders.

        E (`customers`) = customers with a paid order in [from, to); N (`new_customers`) = those
        whose first paid order ever is in the period; S (`customers_at_start`) = customers with
        a paid order before `from`. `retention_rate` = ((E − N) / S) × 100: the share of the
        customers the store had at the start who bought again during the period.
        `repeat_purchase_rate` = percent of E with two or more orders in the period;
        `orders_per_customer` = orders in the period / E; `avg_days_between_orders` = mean gap
        between consecutive orders of one customer within the period; `clv` = mean net spend,
        from the first order up to `to`, of the E customers. The members / non-members blocks
        compute the same over orders with / without a member (a customer may be in both).
        """
        session, source = reports_session()
        return {**service.retention(session, query["from_"], query["to"]), **sourced(source)}


@blp.route("/cohorts")
class Cohorts(MethodView):
    @require("reports")
    @blp.arguments(CohortQuery, location="query", unknown=RAISE)
    @blp.response(200, CohortsSchema)
    def get(self, query):
        """Customers grouped by the month (UTC, `YYYY-MM`) of their first paid order, or by
        `referral` ("referred" when a paid order of theirs converted a referral) or `reward`
        (the reward of the first code they used); others are in the cohort "none".

        Per cohort: customers, their paid orders and net revenue to date, the percent of them
        with two or more orders, orders per customer, revenue per customer (`clv`), and
        `retention[k]`: customers with a paid order k calendar months after their first one
        (k = 0 is everyone), up to the latest month with an order.
        """
        session, source = reports_session()
        return {**service.cohorts(session, query["by"], hooks().report_cohorts), **sourced(source)}


@blp.route("/segments")
class Segments(MethodView):
    @require("reports")
    @blp.arguments(SegmentQuery, location="query", unknown=RAISE)
    @blp.response(200, SegmentsSchema)
    @blp.alt_response(
        200,
        schema={"type": "string"},
        content_type="text/csv",
        description="`?format=csv`: one row per member. `X-Data-Source` (`replica` or "
        "`primary`) and, from the replica, `Replica-Lag-Seconds` say where it was read.",
        example="segment,customer_id,recency_days,frequency,monetary\n",
        success=True,
    )
    def get(self, query):
        """RFM segments of live members, as of `as_of` (default now); each member is in one.

        Per member: recency (days since the last paid order), frequency (paid orders) and
        monetary (net spend). Active = last order within `active_days`. High value = net spend
        ≥ `high_value_min`, by default the spend of the buyer ranked ⌊high_value_top × buyers⌋
        (at least 1st) from the top (ties included), and above 0. Low AOV = average order
        value below `low_aov_max`, by default the lower median of buyers' average order values.
        In this order: `new_subscribers` (no paid order), `loyal_high_value` (high value, active),
        `at_risk_high_value` (high value, inactive), `low_value_inactive` (inactive),
        `frequent_low_aov` (active, ≥ `frequent_orders` orders, low AOV), `other_active`.
        `?format=csv` streams one row per member: segment, customer_id, recency_days,
        frequency, monetary (its `Data-As-Of` header is the answer's `data_as_of`).
        `?segment=` keeps one segment: its item, or its members' rows.

        `data_as_of` (every report): every event committed before it is counted.
        """
        as_of = query["as_of"] or utcnow()
        session, source = reports_session()
        thresholds = service.segment_thresholds(
            session,
            as_of=as_of,
            active_days=query["active_days"],
            frequent_orders=query["frequent_orders"],
            high_value_top=query["high_value_top"],
            high_value_min=query["high_value_min"],
            low_aov_max=query["low_aov_max"],
        )
        if query["format"] == "json":
            answer = service.segments(
                session,
                as_of=as_of,
                thresholds=thresholds,
                member_ids_limit=query["member_ids_limit"],
                segment=query["segment"],
            )
            return {**answer, **sourced(source)}
        rows = service.segment_rows(
            session, as_of=as_of, thresholds=thresholds, segment=query["segment"]
        )
        return csv_download(rows, query["segment"], source, aggregates.data_as_of(session))


@blp.route("/overview")
class Overview(MethodView):
    @require("reports")
    @blp.response(200, OverviewSchema)
    def get(self):
        """The program at a glance, as of now (the console's dashboard shows the same).

        Stocks, as they stand: `members` (not erased), `active_members` (members with a paid
        order in the last `active_days` days), and `points`: the points the program owes —
        `available` (negative balances count as 0) + `pending` = `outstanding` — with their
        money value, `liability` = outstanding × `value.money` ÷ `value.points`, where `value`
        is the best rate among the amount-off rewards a member can redeem now (null: none).

        Flows, over [`from`, `to`): the last 12 calendar months (UTC), this one so far.
        Per month (`months`, oldest first): `points_earned` (earning entries, net of reversals
        and clawbacks, adjustments included), `points_redeemed` (spent on rewards less
        canceled redemptions' returns), `points_expired`, `referral_conversions` (referrals
        converted by the friend's paid order, unless refunded below the minimum).
        `redemption_rate` = points_redeemed ÷ points_earned × 100 over the window.
        `retention`: the members' and non-members' customers, repeat purchase rate and CLV
        exactly as `/v1/reports/retention?from=<from>&to=<to>` gives them.

        `data_as_of`: every event committed before it is counted in `retention` and
        `active_members` (read from the reports' aggregates, as every report's).
        """
        found = hooks()
        session, source = reports_session()
        figures = overview.overview(
            session,
            utcnow(),
            conversions=found.report_conversions,
            point_value=found.report_point_value,
        )
        return {**figures, **sourced(source)}


def sourced(source: Source) -> dict:
    """The `source` member of a report's answer (`ReportSourceSchema`)."""
    return {"source": source.as_dict()}


def csv_download(rows, segment: str | None, source: Source, data_as_of=None) -> Response:
    """The segments CSV of `rows`, streamed as a download named after the segment (if one),
    with headers saying where it was read (`Source.headers`) and its freshness in a
    `Data-As-Of` header (ISO 8601) when known."""
    name = f"segment-{segment}.csv" if segment else "segments.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if data_as_of is not None:
        headers["Data-As-Of"] = data_as_of.isoformat()
    return Response(
        stream_with_context(service.segments_csv(rows)),
        mimetype="text/csv",
        headers={**headers, **source.headers()},
    )
