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
from sqlalchemy import or_, select
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from console import display, once
from console.auth import current_admin, requires
from console.forms import show_error
from console.htmx import is_htmx
from console.models import Admin
from loyalty.audit import AuditLog, record_change
from loyalty.codes import normalize_code
from loyalty.cursors import cursor_row_id, encode_cursor
from loyalty.errors import Conflict, DomainError, NotFound
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.lookalikes import normalize_email
from loyalty.members import service
from loyalty.members.models import Member
from loyalty.members.schemas import AdjustmentSchema
from loyalty.program.service import get_program
from loyalty.tiers.models import Tier
from referrals import service as referrals
from referrals.models import ReferralCode
from rewards.catalog import service as catalog

bp = Blueprint("members", __name__, url_prefix="/members")

PAGE_SIZE = 50
ACTIVITY_PAGE_SIZE = 20
CODES_SHOWN = 20
REFERRALS_SHOWN = 20
CHANGES_SHOWN = 20
ENTRY_KINDS = {
    "earn": "Purchase",
    "bonus": "Bonus",
    "adjust": "Adjustment by an admin",
    "redeem": "Redemption",
    "redeem_cancel": "Redemption canceled",
    "expire": "Expiry",
    "referral": "Referral",
    "reversal": "Refund",
    "clawback": "Refund",
}


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


def _exact(text: str) -> Member | None:
    """The member a customer id or a referral code names exactly."""
    member = service.find_member(db.session, text)
    if member is not None:
        return member
    code = normalize_code(text)
    if not code:
        return None
    return db.session.scalar(
        select(Member)
        .join(ReferralCode, ReferralCode.member_id == Member.id)
        .where(ReferralCode.code == code, Member.erased_at.is_(None))
    )


def _list_query(text: str):
    query = (
        select(Member, Tier.name)
        .outerjoin(Tier, Tier.id == Member.tier_id)
        .where(Member.erased_at.is_(None))
    )
    if not text:
        return query
    who = [Member.customer_id == text]
    mailbox = normalize_email(text)
    if mailbox:
        who.append(Member.email_normalized == mailbox)
    code = normalize_code(text)
    if code:
        who.append(Member.id.in_(select(ReferralCode.member_id).where(ReferralCode.code == code)))
    return query.where(or_(*who))


def _page(query, cursor: str | None, size: int):
    before = cursor_row_id(cursor) if cursor else None
    if cursor and before is None:
        abort(404)
    if before is not None:
        query = query.where(Member.id < before)
    rows = db.session.execute(query.order_by(Member.id.desc()).limit(size + 1)).all()
    more = len(rows) > size
    rows = rows[:size]
    return rows, (encode_cursor(rows[-1][0].id) if more else None)


@bp.get("")
@requires("members.view")
def index():
    text = request.args.get("q", "").strip()[:320]
    cursor = request.args.get("cursor") or None
    if text and not is_htmx() and not cursor:
        found = _exact(text)
        if found is not None:
            return redirect(url_for(".show", customer_id=found.customer_id), 303)
    rows, next_cursor = _page(_list_query(text), cursor, PAGE_SIZE)
    program = get_program(db.session)
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


def _member_or_404(customer_id: str, *, lock: bool = False) -> Member:
    try:
        return service.get_member(db.session, customer_id, lock=lock)
    except NotFound:
        abort(404)


def _field(entry, name):
    return entry[name] if isinstance(entry, dict) else getattr(entry, name)


def _source(entry) -> dict:
    if isinstance(entry, dict):
        return entry.get("source") or {}
    return {"type": entry.source_type, "id": entry.source_id}


def explain(entry, currency: str, admins: dict | None = None) -> str:
    """A ledger entry in words, from the numbers it was computed with (`detail`)."""
    kind, detail, source = _field(entry, "kind"), _field(entry, "detail") or {}, _source(entry)
    cur = detail.get("currency") or currency
    if kind == "earn":
        text = f"Order {source.get('id')}"
        if "eligible_amount" in detail:
            text += (
                f": {display.money(detail['eligible_amount'], cur)} eligible × "
                f"{detail.get('points_per_unit', '1')} point per unit"
            )
            if detail.get("multiplier") not in (None, "1"):
                text += f" × {detail['multiplier']} ({detail.get('tier')} tier)"
        return text
    if kind == "bonus":
        if detail.get("rule"):
            text = f"Bonus rule “{detail['rule']}”"
            if source.get("type") == "order":
                text += f" on order {source.get('id')}"
            if "matching_amount" in detail:
                text += f" ({display.money(detail['matching_amount'], cur)} matching)"
            return text
        return detail.get("reason") or "Bonus"
    if kind == "adjust":
        who = (admins or {}).get(source.get("id"), source.get("id"))
        return f"Adjusted by {who}: {detail.get('reason', '')}".rstrip(": ")
    if kind == "redeem":
        return f"Redeemed “{detail.get('reward', 'a reward')}”"
    if kind == "redeem_cancel":
        return "Reward code canceled: its points returned"
    if kind == "expire":
        days = detail.get("inactive_days")
        return f"Expired after {days} days without activity" if days else "Points expired"
    if kind == "referral":
        return f"Referral reward (friend's order {detail.get('order_id') or '—'})"
    if kind in ("reversal", "clawback"):
        refunded = detail.get("refunded_amount")
        what = "Pending points canceled" if kind == "reversal" else "Points taken back"
        if refunded is not None:
            refund = display.money(refunded, currency)
            return f"{what}: refund of {refund} on order {source.get('id')}"
        return f"{what} (refund on order {source.get('id')})"
    return detail.get("reason") or kind.replace("_", " ").capitalize()


def _changes(member: Member, code_ids: list[int]):
    """Changes admins made to this member (and to the codes shown), newest first."""
    about = [(AuditLog.object_type == "member") & (AuditLog.object_id == str(member.id))]
    if code_ids:
        about.append(
            (AuditLog.object_type == "reward_code")
            & AuditLog.object_id.in_([str(i) for i in code_ids])
        )
    return list(
        db.session.scalars(
            select(AuditLog).where(or_(*about)).order_by(AuditLog.id.desc()).limit(CHANGES_SHOWN)
        )
    )


def _admin_names(actors) -> dict[str, str]:
    """{"admin:<id>": email} of the console admins among `actors`."""
    ids = {int(a[6:]) for a in actors if a and a.startswith("admin:") and a[6:].isdigit()}
    if not ids:
        return {}
    rows = db.session.execute(select(Admin.id, Admin.email).where(Admin.id.in_(ids)))
    return {f"admin:{admin_id}": email for admin_id, email in rows}


def _member_page(customer_id: str, status: int = 200, **forms):
    member = _member_or_404(customer_id)
    view = service.member_view(db.session, hooks(), member)
    program = get_program(db.session)
    cursor = request.args.get("activity") or None
    try:
        activity = service.activity(db.session, member, ACTIVITY_PAGE_SIZE, cursor)
    except DomainError:
        abort(404)  # a cursor this page never made
    codes = catalog.list_redemptions(db.session, member, CODES_SHOWN, None)
    changes = _changes(member, [c["id"] for c in codes["items"]])
    admins = _admin_names(
        [c.actor for c in changes]
        + [_source(e).get("id") for e in activity["items"] if _field(e, "kind") == "adjust"]
    )
    stats = referrals.member_stats(db.session, member, REFERRALS_SHOWN)
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
        "explain": lambda entry: explain(entry, program.currency, admins),
        "kinds": ENTRY_KINDS,
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
    done = once.already_done(db.session, form.submission.data)
    if done is not None or not once.claim(db.session, form.submission.data, location, "adjust"):
        flash("That adjustment was already made.", "info")
        return redirect(done or location, 303)
    try:
        data = AdjustmentSchema().load(
            {"points": form.points.data, "reason": (form.reason.data or "").strip()}
        )
        entry = service.adjust(
            db.session, member, data["points"], data["reason"], current_admin().audit_name
        )
        record_change(
            db.session, "member.adjust", "member", member.id, None,
            {"points": data["points"], "reason": data["reason"], "entry_id": entry.id},
        )  # fmt: skip
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
    member = _member_or_404(customer_id, lock=True)
    service.erase(db.session, hooks(), member)
    record_change(db.session, "member.erase", "member", member.id, None, None)
    flash(f"Member {customer_id} erased: their personal data is gone, the ledger stays.", "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<string:customer_id>/codes/<int:code_id>/cancel")
@requires("codes.cancel")
def cancel_code(customer_id, code_id):
    member = _member_or_404(customer_id)
    try:
        code = catalog.cancel_redemption(db.session, code_id, member=member)
    except NotFound:
        abort(404)
    except Conflict as error:
        return _member_page(customer_id, error.status, code_error=(code_id, error.detail))
    record_change(
        db.session, "reward_code.cancel", "reward_code", code_id,
        {"status": "issued"},
        {"status": code["status"], "points_returned": code["points_returned"]},
    )  # fmt: skip
    returned = code["points_returned"]
    message = f"Code {code['code']} canceled"
    flash(f"{message}: {returned:,} points returned." if returned else f"{message}.", "success")
    return redirect(url_for(".show", customer_id=customer_id) + "#codes", 303)


@bp.get("/<string:customer_id>")
@requires("members.view")
def show(customer_id):
    return _member_page(customer_id)
