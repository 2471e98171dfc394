"""Members: search and list, the member page, adjusting points, canceling codes, erasure.

Every figure comes from the services the API serves (`GET /v1/members/{id}` is the member
view shown here; activity, codes and referrals are their API listings), and every change goes
through the same service and audit record as its API route: adjustments as
`POST /v1/members/{id}/adjustments`, erasure as `DELETE /v1/members/{id}`, a code's cancel as
`POST /v1/redemptions/{id}/cancel`.
"""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from console import display, once
from console.auth import current_admin, requires
from console.forms import show_error
from console.htmx import is_htmx
from console.members import activity as words
from console.members import queries
from loyalty.audit import record_change
from loyalty.errors import Conflict, DomainError, NotFound, ValidationFailed
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.members import service
from loyalty.members.schemas import AdjustmentSchema
from loyalty.program.service import get_program
from referrals import service as referrals
from rewards.catalog import service as catalog

bp = Blueprint("members", __name__, url_prefix="/members")

PAGE_SIZE = 50
ACTIVITY_PAGE_SIZE = 20
CODES_SHOWN = 20
REFERRALS_SHOWN = 20
CHANGES_SHOWN = 20


class AdjustForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])
    points = IntegerField(
        "Points",
        validators=[InputRequired(message="Enter a whole number of points, e.g. 250 or -100.")],
        description="Positive to give points, negative to take them (e.g. -100). "
        "Points given are available at once.",
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )
    reason = TextAreaField(
        "Reason",
        validators=[DataRequired(message="Say why: the member sees it in their activity.")],
        description="Shown with the entry in the member's activity and kept in the audit log.",
        render_kw={"rows": 3, "maxlength": 500},
    )


class EraseForm(FlaskForm):
    confirm = StringField(
        "Type the customer id to confirm",
        validators=[DataRequired(message="Type the member's customer id.")],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


# --- search and list -------------------------------------------------------------------------


@bp.get("")
@requires("members.view")
def index():
    text = request.args.get("q", "").strip()[:320]
    cursor = request.args.get("cursor") or None
    if text and not is_htmx() and not cursor:
        found = queries.find_exact(db.session(), text)
        if found is not None:
            return redirect(url_for(".show", customer_id=found.customer_id), 303)
    try:
        page = queries.search(db.session(), text, cursor, PAGE_SIZE)
    except ValidationFailed:  # a cursor this list never made
        abort(404)
    rows, next_cursor = page.items, page.next_cursor
    program = get_program(db.session())
    context = {
        "q": text,
        "rows": rows,
        "cursor": cursor,
        "next_cursor": next_cursor,
        "currency": program.currency,
        "tz": display.zone(program.timezone),
        "display": display,
    }
    if is_htmx():
        return render_template("console/members/_results.html", **context)
    return render_template("console/members/index.html", **context)


# --- the member page -------------------------------------------------------------------------


def _member_or_404(customer_id: str, *, lock: bool = False):
    try:
        return service.get_member(db.session(), customer_id, lock=lock)
    except NotFound:
        abort(404)


def _member_page(customer_id: str, status: int = 200, **forms):
    member = _member_or_404(customer_id)
    view = service.member_view(db.session(), hooks(), member)
    program = get_program(db.session())
    cursor = request.args.get("activity") or None
    try:
        activity = service.activity(db.session(), member, ACTIVITY_PAGE_SIZE, cursor)
    except DomainError:
        abort(404)  # a cursor this page never made
    codes = catalog.list_redemptions(db.session(), member, CODES_SHOWN, None)
    changes = queries.admin_changes(
        db.session(), member, [c.id for c in codes.items], CHANGES_SHOWN
    )
    adjusted_by = [
        words.source_of(e).get("id") for e in activity.items if words.field(e, "kind") == "adjust"
    ]
    admins = queries.admin_emails(db.session(), [c.actor for c in changes] + adjusted_by)
    stats = referrals.member_stats(db.session(), member, REFERRALS_SHOWN)
    context = {
        "member": member,
        "view": view,
        "activity": activity,
        "activity_cursor": cursor,
        "codes": codes,
        "referrals": stats,
        "changes": changes,
        "admins": admins,
        "currency": program.currency,
        "tz": display.zone(program.timezone),
        "display": display,
        "explain": lambda entry: words.explain(entry, program.currency, admins),
        "kinds": words.KINDS,
        "pending_days": program.pending_days,
        "code_error": forms.pop("code_error", None),
        **forms,
    }
    if forms.get("adjust_form") is not None:
        return render_template("console/members/adjust.html", **context), status
    if forms.get("erase_form") is not None:
        return render_template("console/members/erase.html", **context), status
    if is_htmx() and request.headers.get("HX-Target") == "activity":
        return render_template("console/members/_activity.html", **context), status
    return render_template("console/members/show.html", **context), status


@bp.get("/<string:customer_id>/adjust")
@requires("members.adjust")
def adjust_form(customer_id):
    return _member_page(customer_id, adjust_form=AdjustForm())


@bp.post("/<string:customer_id>/adjust")
@requires("members.adjust")
def adjust(customer_id):
    form = AdjustForm()
    if not form.validate_on_submit():
        return _member_page(customer_id, 422, adjust_form=form)
    member = _member_or_404(customer_id)
    location = url_for(".show", customer_id=customer_id)
    done = once.already_done(db.session(), form.submission.data)
    if done is not None or not once.claim(db.session(), form.submission.data, location, "adjust"):
        flash("That adjustment was already made.", "info")
        return redirect(done or location, 303)
    try:
        data = AdjustmentSchema().load(
            {"points": form.points.data, "reason": (form.reason.data or "").strip()}
        )
        entry = service.adjust(  # audited
            db.session(), member, data["points"], data["reason"], current_admin().audit_name
        )
    except (DomainError, ValidationError) as error:
        show_error(form, error)
        return _member_page(customer_id, getattr(error, "status", 422), adjust_form=form)
    flash(f"{display.signed_points(entry.points)} points: {data['reason']}", "success")
    return redirect(location, 303)


@bp.get("/<string:customer_id>/erase")
@requires("members.erase")
def erase_form(customer_id):
    return _member_page(customer_id, erase_form=EraseForm())


@bp.post("/<string:customer_id>/erase")
@requires("members.erase")
def erase(customer_id):
    form = EraseForm()
    if not form.validate_on_submit():
        return _member_page(customer_id, 422, erase_form=form)
    if form.confirm.data.strip() != customer_id:
        form.confirm.errors = [f"That is not {customer_id}: nothing was erased."]
        return _member_page(customer_id, 422, erase_form=form)
    member = service.find_member(db.session(), customer_id, lock=True)
    if member is None:  # erased by a request sent just before this one, say
        flash(f"There is no member {customer_id} any more: nothing to erase.", "info")
        return redirect(url_for(".index"), 303)
    service.erase(db.session(), hooks(), member)  # audited, as the signed-in admin
    flash(f"Member {customer_id} erased: their personal data is gone, the ledger stays.", "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<string:customer_id>/codes/<int:code_id>/cancel")
@requires("codes.cancel")
def cancel_code(customer_id, code_id):
    member = _member_or_404(customer_id)
    try:
        code = catalog.cancel_redemption(db.session(), code_id, member=member)
    except NotFound:
        abort(404)
    except Conflict as error:
        return _member_page(customer_id, error.status, code_error=(code_id, error.detail))
    record_change(
        db.session(), "reward_code.cancel", "reward_code", code_id,
        {"status": "issued"},
        {"status": code.status, "points_returned": code.points_returned},
    )  # fmt: skip
    returned = code.points_returned
    message = f"Code {code.code} canceled"
    flash(f"{message}: {returned:,} points returned." if returned else f"{message}.", "success")
    return redirect(url_for(".show", customer_id=customer_id) + "#codes", 303)


@bp.get("/<string:customer_id>")
@requires("members.view")
def show(customer_id):
    return _member_page(customer_id)
