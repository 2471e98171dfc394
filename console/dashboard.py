"""The dashboard: the program at a glance, the console's home for those who may read reports.

Its figures are `loyalty.reports.overview`'s, the same computation as `GET
/v1/reports/overview` (see docs/console.md, "Dashboard", for what each means). The charts
are drawn by the vendored Chart.js from the figures the page carries as JSON (a
`<script type="application/json">` block: data, never run), started by
`static/dashboard.js`; every chart's numbers are also in a table under it, so the page says
everything with JavaScript off.
"""

from datetime import datetime

from flask import Blueprint, current_app, render_template, url_for

from console import display
from console.auth import requires
from loyalty.hooks import hooks
from loyalty.program.service import get_program
from loyalty.reports import overview
from loyalty.reports.source import reports_session
from loyalty.types import utcnow

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
REPORTS = "console.reports.index"  # linked when that page is there (same permission)


def month_name(label: str, *, short: bool = False) -> str:
    """`2026-03` → `March 2026` (`Mar 2026` when short)."""
    moment = datetime.strptime(label, "%Y-%m")
    return moment.strftime("%b %Y" if short else "%B %Y")


def percent(rate: str | None) -> str:
    """A report's rate ("25.97", percent) as the page writes it: `25.97%`, `—` for none."""
    return "—" if rate is None else f"{rate}%"


@bp.get("")
@requires("reports.view")
def index():
    session, source = reports_session()
    found = hooks()
    figures = overview.overview(
        session,
        utcnow(),
        conversions=found.report_conversions,
        point_value=found.report_point_value,
    )
    program = get_program(session)
    months = figures["months"]
    charts = {
        "labels": [month_name(m["month"], short=True) for m in months],
        "earned": [m["points_earned"] for m in months],
        "redeemed": [m["points_redeemed"] for m in months],
        "expired": [m["points_expired"] for m in months],
        "conversions": [m["referral_conversions"] for m in months],
    }
    return render_template(
        "console/dashboard/index.html",
        o=figures,
        charts=charts,
        currency=figures["currency"],
        tz=display.zone(program.timezone),
        display=display,
        month_name=month_name,
        percent=percent,
        url_for_reports=url_for(REPORTS) if REPORTS in current_app.view_functions else None,
        reports_source=source,
    )
