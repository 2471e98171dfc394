"""Rewarding a segment: bonus points for every member of an RFM segment, reached from a
segment's report page.

1. The form (`new`, `?segment=<key>`): points and a reason.
2. Preview: how many members the segment holds now and the points that makes in all (the
   service's `preview`, what `POST /v1/segment-awards` would take).
3. Confirm: the award is made by the same service as `POST /v1/segment-awards` (audited as the
   signed-in admin) under the form's submission key, so a double click or a resent confirmation
   makes it once; its members are frozen then. The award runs in a background thread of this
   process (and the `segment-awards` job resumes it), and its page shows a progress bar that
   htmx refreshes every second (without JavaScript: the page reloads itself) until it is done.
"""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp

from console import display, once
from console.auth import can, current_admin, requires
from console.forms import show_error
from console.htmx import is_htmx
from console.members.queries import admin_emails
from console.reports import segments as segment_words
from loyalty.errors import Conflict, DomainError, ValidationFailed
from loyalty.extensions import db
from loyalty.program.service import get_program
from loyalty.reports.service import SEGMENTS
from loyalty.schemas import MAX_POINTS
from loyalty.segment_awards import background, service
from loyalty.segment_awards.models import DONE, FAILED

bp = Blueprint("segment_awards", __name__, url_prefix="/segment-awards")

PAGE_SIZE = 50
SEGMENT_NAMES = segment_words.NAMES  # the segments in words, as the reports show them
SEGMENT_HINTS = {
    "new_subscribers": "Members without a paid order yet.",
    "loyal_high_value": "High spenders who bought recently.",
    "at_risk_high_value": "High spenders who have not bought for a while.",
    "low_value_inactive": "Members who have not bought for a while.",
    "frequent_low_aov": "Frequent buyers of small orders.",
    "other_active": "Recent buyers not in another segment.",
}
STATUS_WORDS = {
    "pending": ("Waiting to start", "badge-muted"),
    "running": ("Awarding", "badge-warn"),
    "done": ("Done", "badge-ok"),
    "failed": ("Stopped by an error", "badge-danger"),
}


class AwardForm(FlaskForm):
    segment = HiddenField(validators=[DataRequired()])
    points = IntegerField(
        "Points per member",
        validators=[InputRequired(message="Enter a whole number of points, e.g. 100.")],
        description="Given to each member of the segment, available at once "
        f"(1 to {MAX_POINTS:,}).",
        render_kw={"inputmode": "numeric", "autocomplete": "off", "min": 1},
    )
    reason = TextAreaField(
        "Reason",
        validators=[DataRequired(message="Say why: members see it in their activity.")],
        description="Members see “Bonus: <reason>” in their activity; kept in the audit log.",
        render_kw={"rows": 3, "maxlength": service.MAX_REASON},
    )


class ConfirmForm(AwardForm):
    submission = once.OnceField(validators=[Length(max=64)])
    members = HiddenField(validators=[DataRequired(), Regexp(r"^\d{1,18}$")])  # as previewed


def _segment_or_404(key: str | None) -> str:
    if key not in SEGMENTS:
        abort(404)
    return key


def _form_page(form: AwardForm, segment: str, status: int = 200, preview=None):
    confirm = None
    if preview is not None:
        confirm = ConfirmForm(
            formdata=None,
            data={
                "segment": segment,
                "points": form.points.data,
                "reason": preview["reason"],
                "members": str(preview["members"]),
            },
        )
    return (
        render_template(
            "console/segment_awards/new.html",
            form=form,
            confirm=confirm,
            segment=segment,
            names=SEGMENT_NAMES,
            hints=SEGMENT_HINTS,
            preview=preview,
            display=display,
        ),
        status,
    )


@bp.get("")
@requires("reports.view")
def index():
    cursor = request.args.get("cursor") or None
    try:
        page = service.list_awards(db.session(), PAGE_SIZE, cursor)
    except ValidationFailed:  # a cursor this list never made
        abort(404)
    program = get_program(db.session())
    return render_template(
        "console/segment_awards/index.html",
        awards=page.items,
        admins=admin_emails(db.session(), [award.created_by for award in page.items]),
        cursor=cursor,
        next_cursor=page.next_cursor,
        names=SEGMENT_NAMES,
        statuses=STATUS_WORDS,
        progress=service.progress,
        tz=display.zone(program.timezone),
        display=display,
    )


@bp.get("/new")
@requires("segments.award")
def new():
    if not request.args.get("segment"):  # reached without one: pick it here
        return render_template(
            "console/segment_awards/pick.html", names=SEGMENT_NAMES, hints=SEGMENT_HINTS
        )
    segment = _segment_or_404(request.args.get("segment"))
    form = AwardForm(formdata=None, data={"segment": segment})
    return _form_page(form, segment)


@bp.post("/preview")
@requires("segments.award")
def preview():
    form = AwardForm()
    segment = _segment_or_404(form.segment.data)
    if not form.validate_on_submit():
        return _form_page(form, segment, 422)
    return _preview_page(form, segment)


def _preview_page(form: AwardForm, segment: str, status: int = 200):
    try:
        reason = service.check(segment, form.points.data, form.reason.data or "")
        shown = service.preview(db.session(), segment, form.points.data, reason)
    except DomainError as error:
        show_error(form, error)
        return _form_page(form, segment, error.status)
    return _form_page(form, segment, status, preview={**shown, "reason": reason})


@bp.post("")
@requires("segments.award")
def create():
    form = ConfirmForm()
    segment = _segment_or_404(form.segment.data)
    if not form.validate_on_submit():
        return _form_page(form, segment, 422)
    done = once.already_done(db.session(), form.submission.data)
    if done is not None:
        flash("That award was already made: here it is.", "info")
        return redirect(done, 303)
    admin = current_admin().audit_name
    try:
        award, created = service.create(  # audited, as the signed-in admin
            db.session(),
            segment,
            form.points.data,
            form.reason.data or "",
            key=f"console:{admin}:{form.submission.data}",
            actor=admin,
            expected_members=int(form.members.data),
        )
    except Conflict as error:  # the segment changed since the preview: a new one
        form.form_errors.append(error.detail)
        return _preview_page(form, segment, error.status)
    except DomainError as error:
        show_error(form, error)
        return _form_page(form, segment, error.status)
    location = url_for(".show", award_id=award.id)
    once.claim(db.session(), form.submission.data, location, "segment-award")
    if not created:
        flash("That award was already made: here it is.", "info")
        return redirect(location, 303)
    flash(
        f"Award made: {display.points(award.points)} points each to "
        f"{display.points(award.member_count)} members of {SEGMENT_NAMES[segment]}.",
        "success",
    )
    background.run_after_request(award.id)
    return redirect(location, 303)


@bp.post("/<int:award_id>/resume")
@requires("segments.award")
def resume(award_id: int):
    """Run an unfinished award again now (after an error, or a process that stopped): it goes
    on from the first member not yet awarded; a run already going on simply takes turns."""
    try:
        award = service.get(db.session(), award_id)
    except DomainError:
        abort(404)
    location = url_for(".show", award_id=award_id)
    if award.status == DONE:
        return redirect(location, 303)
    flash("Resumed: members already awarded are not awarded again.", "info")
    background.run_after_request(award_id)
    return redirect(location, 303)


@bp.get("/<int:award_id>")
@requires("reports.view")
def show(award_id: int):
    try:
        award = service.get(db.session(), award_id)
    except DomainError:
        abort(404)
    program = get_program(db.session())
    context = {
        "award": award,
        "progress": service.progress(award),
        "finished": award.status == DONE,
        "failed": award.status == FAILED,
        "may_resume": can("segments.award"),
        "names": SEGMENT_NAMES,
        "statuses": STATUS_WORDS,
        "admins": admin_emails(db.session(), [award.created_by]),
        "tz": display.zone(program.timezone),
        "display": display,
    }
    if is_htmx():
        return render_template("console/segment_awards/_progress.html", **context)
    return render_template("console/segment_awards/show.html", **context)
