"""Referral review: the queue of held referrals with why each was held, a referral's page
with approve and reject, the lists by status, and the referral program's settings.

Every decision goes through the API's own services: approve and reject are
`POST /v1/referrals/{id}/approve|reject` (`referrals.service.approve|reject`, which lock the
referral, refuse one that is no longer in review and write the audit row), the settings are
`PUT /v1/referral-program` (`ReferralProgramUpdateSchema`, `update_settings`). The evidence
behind each rule is read when the page is shown (`referrals.evidence`).
"""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from marshmallow import ValidationError
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from console import display, once
from console.auth import can, current_admin, requires
from console.forms import show_error
from console.members import queries as member_queries
from console.referrals.forms import (
    ApproveForm,
    ReferralSettingsForm,
    RejectForm,
    field_errors,
    settings_body,
)
from loyalty.auditlog import service as audit_log
from loyalty.errors import Conflict, DomainError, NotFound, ValidationFailed
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.orders.models import Order
from loyalty.program.service import get_program
from loyalty.types import utcnow
from referrals import evidence
from referrals import service as referrals
from referrals.models import CLAIMED, CONVERTED, REJECTED, REVIEW, REWARDED
from referrals.schemas import ReferralProgramUpdateSchema
from rewards.catalog import service as catalog

bp = Blueprint("referrals", __name__, url_prefix="/referrals")

PAGE_SIZE = 25
HISTORY_SHOWN = 20
STATUSES = [
    (REVIEW, "In review"),
    (CLAIMED, "Claimed"),
    (CONVERTED, "Converted"),
    (REWARDED, "Rewarded"),
    (REJECTED, "Rejected"),
]
LABELS = dict(STATUSES)
BADGES = {
    REVIEW: "badge-warn",
    CLAIMED: "badge-muted",
    CONVERTED: "badge",
    REWARDED: "badge-ok",
    REJECTED: "badge-danger",
}


def marked(text: str | None) -> Markup:
    """`text` with each character that passes for a Latin letter marked (and named)."""
    if not text:
        return Markup("—")
    names = {c.char: c for c in evidence.lookalike_characters(text)}
    if not names:
        return escape(text)
    parts = []
    for char in text:
        found = names.get(char)
        if found is None:
            parts.append(escape(char))
        else:
            title = f"{found.name.title()}, not the Latin {found.looks_like}"
            parts.append(Markup('<mark class="lookalike" title="{}">{}</mark>').format(title, char))
    return Markup("").join(parts)


def marked_in(text: str, *shown: str | None) -> Markup:
    """`text` with each of `shown` (the friend's email, name) in it marked as by `marked`."""
    result = escape(text)
    for part in shown:
        if part:
            result = result.replace(escape(part), marked(part))
    return result


def _common() -> dict:
    program = get_program(db.session())
    return {
        "currency": program.currency,
        "tz": display.zone(program.timezone),
        "display": display,
        "labels": LABELS,
        "badges": BADGES,
        "titles": evidence.TITLES,
        "reasons": evidence.REASONS,
        "marked": marked,
        "marked_in": marked_in,
    }


# --- the queue and the lists ------------------------------------------------------------------


@bp.get("")
@requires("referrals.review")
def index():
    status = request.args.get("status", REVIEW)
    if status not in LABELS:
        abort(404)
    cursor = request.args.get("cursor") or None
    try:  # the queue is worked oldest first; the other lists show the newest first
        page = referrals.list_referrals(
            db.session(), status, PAGE_SIZE, cursor, newest_first=status != REVIEW
        )
    except ValidationFailed:  # a cursor this list never made
        abort(404)
    session = db.session()
    settings = referrals.get_settings(session)
    referrers = _members([view.row.referrer_id for view in page.items])
    findings = {
        view.id: evidence.explain(session, view.row, referrers.get(view.row.referrer_id), settings)
        for view in page.items
        if view.status == REVIEW
    }
    return render_template(
        "console/referrals/index.html",
        status=status,
        statuses=STATUSES,
        page=page,
        cursor=cursor,
        findings=findings,
        settings=settings,
        **_common(),
    )


def _members(ids) -> dict[int, Member]:
    ids = set(ids)
    if not ids:
        return {}
    return {m.id: m for m in db.session().scalars(select(Member).where(Member.id.in_(ids)))}


# --- a referral -------------------------------------------------------------------------------


def _referral_page(referral_id: int, status: int = 200, **forms):
    session = db.session()
    try:
        row = referrals.get_referral(session, referral_id)
    except NotFound:
        abort(404)
    view = referrals.admin_view(session, row)
    referrer = session.get(Member, row.referrer_id)
    settings = referrals.get_settings(session)
    order = None
    if row.order_id is not None:
        order = session.scalar(select(Order).where(Order.order_id == row.order_id))
    friend_member = None
    if row.friend_customer_id is not None:
        friend_member = session.scalar(
            select(Member.customer_id).where(Member.customer_id == row.friend_customer_id)
        )
    history = audit_log.list_entries(
        session,
        audit_log.AuditFilter(target_type="referral", target_id=str(row.id)),
        HISTORY_SHOWN,
        None,
    ).items
    reviewing = view.status == REVIEW and can("referrals.review")
    context = {
        "view": view,
        "referrer": referrer,
        "friend_member": friend_member,
        "order": order,
        "net_spend": referrals.net_spend(order) if order is not None else None,
        "settings": settings,
        "findings": evidence.explain(session, row, referrer, settings),
        "limits": evidence.limits(session, row, settings, utcnow()),
        "history": history,
        "admins": member_queries.admin_emails(
            session, [h.actor for h in history] + [row.decided_by]
        ),
        "approve_form": forms.get("approve_form") or (ApproveForm() if reviewing else None),
        "reject_form": forms.get("reject_form") or (RejectForm() if reviewing else None),
        "decision_error": forms.get("decision_error"),
        **_common(),
    }
    return render_template("console/referrals/show.html", **context), status


@bp.get("/<int:referral_id>")
@requires("referrals.review")
def show(referral_id):
    return _referral_page(referral_id)


def _decided(referral_id: int, verb: str, form) -> object | None:
    """Apply a decision once: the redirect when this form was already sent (or is being sent
    by another request), None to go ahead."""
    location = url_for(".show", referral_id=referral_id)
    key = form.submission.data
    done = once.already_done(db.session(), key)
    if done is not None or not once.claim(db.session(), key, location, f"{verb}:{referral_id}"):
        flash("That decision was already made.", "info")
        return redirect(done or location, 303)
    return None


def _approved_message(view, currency: str, tz) -> str:
    reward = view.reward
    if reward is not None and reward.type == "points":
        when = display.moment(reward.matures_at, tz, time=False)
        if reward.state == "pending":
            return (f"Approved. The referrer's reward was issued: {display.points(reward.points)} "
                    f"points, pending until {when}.")  # fmt: skip
        return (f"Approved. The referrer's reward was issued: {display.points(reward.points)} "
                "points, available now.")  # fmt: skip
    if reward is not None:
        if reward.state == "pending":
            when = display.moment(reward.matures_at, tz, time=False)
            return f"Approved. The referrer's reward code will be issued on {when}."
        return "Approved. The referrer's reward code was issued."
    code = (view.friend_reward or {}).get("code")
    return (f"Approved. The friend's reward code {code} was issued; the referrer is rewarded "
            "when the friend's first order is paid.")  # fmt: skip


@bp.post("/<int:referral_id>/approve")
@requires("referrals.review")
def approve(referral_id):
    form = ApproveForm()
    if not form.validate_on_submit():
        return _referral_page(referral_id, 422, approve_form=form)
    done = _decided(referral_id, "approve", form)
    if done is not None:
        return done
    note = (form.note.data or "").strip() or None
    try:
        row = referrals.approve(db.session(), referral_id, note, current_admin().audit_name)
    except NotFound:
        abort(404)
    except Conflict as error:
        return _referral_page(referral_id, error.status, decision_error=error.detail)
    view = referrals.admin_view(db.session(), row)
    common = _common()
    flash(_approved_message(view, common["currency"], common["tz"]), "success")
    return redirect(url_for(".show", referral_id=referral_id), 303)


@bp.post("/<int:referral_id>/reject")
@requires("referrals.review")
def reject(referral_id):
    form = RejectForm()
    if not form.validate_on_submit():
        return _referral_page(referral_id, 422, reject_form=form)
    done = _decided(referral_id, "reject", form)
    if done is not None:
        return done
    try:
        referrals.reject(
            db.session(), referral_id, form.reason.data.strip(), current_admin().audit_name
        )
    except NotFound:
        abort(404)
    except Conflict as error:
        return _referral_page(referral_id, error.status, decision_error=error.detail)
    flash("Rejected. Neither the friend nor the referrer gets a reward for it.", "success")
    return redirect(url_for(".show", referral_id=referral_id), 303)


# --- settings ---------------------------------------------------------------------------------


def _settings_page(form: ReferralSettingsForm, status: int = 200):
    session = db.session()
    currency = get_program(session).currency
    for field in (form.friend_amount, form.friend_min_order, form.min_order_amount):
        field.label.text = f"{field.label.text} ({currency})"
    rewards = catalog.list_rewards(session, 200, None).items
    form.referrer_reward_id.choices = [SelectChoice("", "Choose a reward")] + [
        SelectChoice(str(r.id), f"{r.name} ({display.points(r.points_cost)} points)")
        for r in rewards
    ]
    return render_template(
        "console/referrals/settings.html",
        form=form,
        editable=can("program.edit"),
        **_common(),
    ), status


@bp.get("/settings")
@requires("program.view")
def settings():
    form = ReferralSettingsForm(formdata=None)
    view = referrals.settings_view(referrals.get_settings(db.session()))
    form.fill(view, get_program(db.session()).currency)
    return _settings_page(form)


@bp.post("/settings")
@requires("program.edit")
def update_settings():
    form = ReferralSettingsForm()
    if not form.validate_on_submit():
        return _settings_page(form, 422)
    location = url_for(".settings")
    done = once.already_done(db.session(), form.submission.data)
    if done is not None or not once.claim(
        db.session(), form.submission.data, location, "referral-settings"
    ):
        flash("Those settings were already saved.", "info")
        return redirect(done or location, 303)
    body = settings_body(form, get_program(db.session()).currency)
    if body is None:
        return _settings_page(form, 422)
    try:
        changes = ReferralProgramUpdateSchema().load(body)
        referrals.update_settings(db.session(), changes)  # audited
    except ValidationError as error:
        show_error(form, ValidationError(field_errors(error.messages)))
        return _settings_page(form, 422)
    except DomainError as error:
        error.errors = field_errors(error.errors or {})
        show_error(form, error)
        return _settings_page(form, error.status)
    flash("Referral program settings saved.", "success")
    return redirect(location, 303)
