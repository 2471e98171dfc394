"""Reports: retention for a chosen period, cohorts, RFM segments and each segment's members.

Every figure comes from the services the reports API serves (`GET /v1/reports/retention`,
`/cohorts`, `/segments`), with the API's own query validation (`RetentionQuery`) and
defaults (`SegmentQuery`): the page and the API show the same numbers. Segments use the
API's default thresholds, the ones a bonus-points award to a segment uses too. Read-only:
the figures come from the reports' replica when one is configured
(`loyalty.reports.source`), and each page says so (`reports_source` in the templates).
"""

from flask import Blueprint, abort, current_app, render_template, request
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import StringField
from wtforms.validators import DataRequired

from console import display
from console.auth import can, requires
from console.reports import heatmap, periods
from console.reports import segments as words
from loyalty.errors import ValidationFailed
from loyalty.hooks import hooks
from loyalty.program.service import get_program
from loyalty.reports import aggregates, service
from loyalty.reports.routes import csv_download
from loyalty.reports.schemas import RetentionQuery, SegmentQuery
from loyalty.reports.source import reports_session
from loyalty.types import utcnow

bp = Blueprint("reports", __name__, url_prefix="/reports")

MEMBERS_PAGE_SIZE = 50
COHORT_MONTHS_SHOWN = 24  # the newest first-order months in the heatmap, unless all are asked
AWARD_ENDPOINT = "console.segment_awards.new"


@bp.context_processor
def _helpers():
    return {"display": display, "segment_names": words.NAMES}


def _figures():
    """The session the page's figures are read from, with the source the page names."""
    session, source = reports_session()
    return session, {"reports_source": source}


class PeriodForm(FlaskForm):
    """The period of the retention report, read from the query string (nothing changes, so
    no CSRF token): the API's `from` and `to`."""

    class Meta:
        csrf = False

    start = StringField(
        "From",
        name="from",
        validators=[DataRequired(message="Pick the first day of the period.")],
        description="From midnight UTC of this day.",
        render_kw={"type": "date"},
    )
    end = StringField(
        "To (not included)",
        name="to",
        validators=[DataRequired(message="Pick the day after the period's last day.")],
        description="Up to midnight UTC of this day, which is not included.",
        render_kw={"type": "date"},
    )


# --- retention -------------------------------------------------------------------------------


@bp.get("")
@requires("reports.view")
def index():
    """The retention report for the period asked (the last 30 days when none is)."""
    today = utcnow().date()
    presets = periods.presets(today)
    form = PeriodForm(formdata=request.args if request.args else None)
    if not request.args:
        form.start.data = presets[0].start.isoformat()
        form.end.data = presets[0].end.isoformat()
    context = {"form": form, "presets": presets, "report": None}
    if not form.validate():
        return render_template("console/reports/retention.html", **context), 422
    try:
        query = RetentionQuery().load({"from": form.start.data, "to": form.end.data})
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {}

        def words(key: str) -> list[str]:  # the API's messages, naming the form's fields
            return [m.replace("`from`", "“From”") for m in messages.get(key, [])]

        form.start.errors = words("from")
        form.end.errors = words("to")
        form.form_errors.extend(words("_schema"))
        return render_template("console/reports/retention.html", **context), 422
    session, source = _figures()
    report = service.retention(session, query["from_"], query["to"])
    context.update(
        **source,
        report=report,
        period=periods.in_words(query["from_"], query["to"]),
        current=(form.start.data, form.end.data),
        currency=report["currency"],
    )
    return render_template("console/reports/retention.html", **context)


# --- cohorts ---------------------------------------------------------------------------------


@bp.get("/cohorts")
@requires("reports.view")
def cohorts():
    sources = hooks().report_cohorts
    session, source = _figures()
    by_month = service.cohorts(session, "first_order_month", sources)
    every_month = request.args.get("months") == "all"
    rows = heatmap.rows(by_month["items"])
    hidden = 0 if every_month else max(0, len(rows) - COHORT_MONTHS_SHOWN)
    if hidden:
        rows = rows[hidden:]  # the newest months
    by_label = {
        by: service.cohorts(session, by, sources)["items"]
        for by in ("referral", "reward")
        if by in sources  # a domain that is switched off registers none
    }
    return render_template(
        "console/reports/cohorts.html",
        rows=rows,
        columns=max((len(row.cells) for row in rows), default=0),
        hidden=hidden,
        every_month=every_month,
        legend=heatmap.legend(),
        by_label=by_label,
        currency=by_month["currency"],
        **source,
    )


# --- segments --------------------------------------------------------------------------------


def _thresholds():
    """Now, and the segment thresholds the API uses when a query sets none."""
    defaults = SegmentQuery().load({})
    as_of = utcnow()
    thresholds = service.segment_thresholds(
        reports_session()[0],
        as_of=as_of,
        active_days=defaults["active_days"],
        frequent_orders=defaults["frequent_orders"],
        high_value_top=defaults["high_value_top"],
        high_value_min=defaults["high_value_min"],
        low_aov_max=defaults["low_aov_max"],
    )
    return as_of, thresholds


def _known(segment: str) -> str:
    if segment not in service.SEGMENTS:
        abort(404)
    return segment


@bp.get("/segments")
@requires("reports.view")
def segments():
    as_of, thresholds = _thresholds()
    session, source = _figures()
    report = service.segments(session, as_of=as_of, thresholds=thresholds, member_ids_limit=0)
    currency = report["currency"]
    total = sum(item["count"] for item in report["items"])
    return render_template(
        "console/reports/segments.html",
        report=report,
        total=total,
        describe=lambda name: words.describe(name, report["thresholds"], currency),
        high_value=words.high_value_words(report["thresholds"], currency),
        currency=currency,
        **source,
    )


@bp.get("/segments/<string:segment>")
@requires("reports.view")
def segment(segment):
    segment = _known(segment)
    as_of, thresholds = _thresholds()
    session, source = _figures()
    [item] = service.segments(
        session, as_of=as_of, thresholds=thresholds, member_ids_limit=0, segment=segment
    )["items"]
    cursor = request.args.get("cursor") or None
    try:
        page = service.segment_members(
            session,
            as_of=as_of,
            thresholds=thresholds,
            segment=segment,
            limit=MEMBERS_PAGE_SIZE,
            cursor=cursor,
        )
    except ValidationFailed:  # a cursor this list never made
        abort(404)
    currency = get_program(session).currency
    may_award = AWARD_ENDPOINT in current_app.view_functions and can("segments.award")
    return render_template(
        "console/reports/segment.html",
        segment=segment,
        count=item["count"],
        description=words.describe(segment, thresholds, currency),
        page=page,
        cursor=cursor,
        currency=currency,
        tz=display.zone(get_program(session).timezone),
        members_linked=can("members.view"),
        award_endpoint=AWARD_ENDPOINT if may_award else None,
        **source,
    )


@bp.get("/segments/<string:segment>/members.csv")
@requires("reports.view")
def segment_csv(segment):
    """Every member of the segment, streamed: the API's `?format=csv&segment=` file."""
    segment = _known(segment)
    as_of, thresholds = _thresholds()
    # The rows are read while the answer streams, after this request's session is gone: on
    # the primary through the session proxy, which makes (and at the stream's end removes) a
    # session of its own; on the replica in its session, closed after the last row.
    session, source = reports_session()
    rows = service.segment_rows(session, as_of=as_of, thresholds=thresholds, segment=segment)
    return csv_download(rows, segment, source, aggregates.data_as_of(session))
