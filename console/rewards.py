"""Rewards: the catalog (with what is left in stock), creating and editing a reward, retiring it.

Through the same schemas, service functions and audit records as the API's `/v1/rewards`
routes: the console accepts exactly what the API accepts and refuses with the same words.
Money is typed in the currency's major units (10.00) and sent on in minor units, as the API
takes it; times are typed in the program's time zone.
"""

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from sqlalchemy import func, select
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from console import display, once
from console.auth import can, requires
from console.forms import show_error
from loyalty.audit import record_change
from loyalty.cursors import MAX_INT32_ROW_ID, cursor_row_id, encode_cursor
from loyalty.errors import DomainError, NotFound
from loyalty.extensions import db
from loyalty.program.service import get_program
from loyalty.tiers.models import Tier
from loyalty.types import utcnow
from rewards.catalog import service
from rewards.catalog.models import USED, Reward, RewardCode
from rewards.catalog.schemas import RewardCreateSchema, RewardUpdateSchema

bp = Blueprint("rewards", __name__, url_prefix="/rewards")

PAGE_SIZE = 50
KIND_LABELS = {
    "amount_off": "Amount off",
    "percent_off": "Percent off",
    "free_shipping": "Free shipping",
    "free_product": "Free product",
}
# What a datetime-local input sends (and the first, what it is given back).
LOCAL_TIMES = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
KIND_FIELD = service.KIND_FIELDS  # the one discount field each kind uses


class RewardForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])
    name = StringField(
        "Name",
        validators=[DataRequired()],
        description="What members see in the catalog, e.g. “$10 off your next order”.",
        render_kw={"maxlength": 200},
    )
    description = TextAreaField("Description", render_kw={"rows": 2, "maxlength": 1000})
    kind = SelectField(
        "Kind",
        choices=[SelectChoice(kind, label) for kind, label in KIND_LABELS.items()],
        validators=[DataRequired()],
    )
    amount = StringField(
        "Amount off",
        description="For “Amount off”: in the program currency, e.g. 10.00.",
        render_kw={"inputmode": "decimal"},
    )
    percent = IntegerField(
        "Percent off",
        validators=[Optional()],
        description="For “Percent off”: 1 to 100.",
        render_kw={"inputmode": "numeric"},
    )
    sku = StringField(
        "Product SKU",
        description="For “Free product”: the SKU the code gives for free.",
        render_kw={"maxlength": 128, "spellcheck": "false"},
    )
    points_cost = IntegerField(
        "Cost in points",
        validators=[InputRequired(message="Enter the points a member pays for it.")],
        render_kw={"inputmode": "numeric"},
    )
    min_order = StringField(
        "Minimum order",
        description="The order subtotal the code needs; leave empty for none.",
        render_kw={"inputmode": "decimal"},
    )
    tier = SelectField("Minimum tier", choices=[])
    stock = IntegerField(
        "Stock",
        validators=[Optional()],
        description="Codes left to give; leave empty for unlimited.",
        render_kw={"inputmode": "numeric"},
    )
    per_member_limit = IntegerField(
        "Per-member limit",
        validators=[Optional()],
        description="How many times one member may redeem it; leave empty for no limit.",
        render_kw={"inputmode": "numeric"},
    )
    starts_at = DateTimeLocalField("Available from", validators=[Optional()], format=LOCAL_TIMES)
    ends_at = DateTimeLocalField("Available until", validators=[Optional()], format=LOCAL_TIMES)
    code_valid_days = IntegerField(
        "Code valid for (days)",
        validators=[InputRequired()],
        default=90,
        description="How long a redeemed code can be used at checkout.",
        render_kw={"inputmode": "numeric"},
    )
    active = BooleanField("Members can redeem it", default=True)


def _tier_names() -> dict[int, str]:
    return dict(db.session.execute(select(Tier.id, Tier.name).order_by(Tier.threshold)).all())


def _form(obj: Reward | None = None, program=None) -> RewardForm:
    form = RewardForm(obj=obj) if obj is not None else RewardForm()
    names = _tier_names()
    form.tier.choices = [SelectChoice("", "Any tier")] + [
        SelectChoice(name, f"{name} or higher") for name in names.values()
    ]
    if obj is not None and request.method == "GET":
        tz = display.zone(program.timezone)
        form.tier.data = names.get(obj.tier_id, "") if obj.tier_id is not None else ""
        form.amount.data = display.major_units(obj.amount, program.currency)
        form.min_order.data = display.major_units(obj.min_order or None, program.currency)
        for name in ("starts_at", "ends_at"):
            moment = getattr(obj, name)
            getattr(form, name).data = (
                moment.astimezone(tz).replace(tzinfo=None) if moment is not None else None
            )
    return form


def _body(form: RewardForm, program) -> dict:
    """The form as the API's body (money in minor units, times with the program's offset)."""
    currency, tz = program.currency, display.zone(program.timezone)
    errors = {}
    money = {}
    for name in ("amount", "min_order"):
        try:
            money[name] = display.minor_units(getattr(form, name).data, currency)
        except ValueError as error:
            errors[name] = [str(error)]
    if errors:
        raise ValidationError(errors)
    kind = form.kind.data
    needed = KIND_FIELD.get(kind)
    discount = {
        "amount": money["amount"],
        "percent": form.percent.data,
        "sku": (form.sku.data or "").strip() or None,
    }

    def aware(value: datetime | None) -> str | None:
        return value.replace(tzinfo=tz).isoformat() if value is not None else None

    return {
        "name": (form.name.data or "").strip(),
        "description": (form.description.data or "").strip() or None,
        "kind": kind,
        **{name: (value if name == needed else None) for name, value in discount.items()},
        "points_cost": form.points_cost.data,
        "min_order": money["min_order"] or 0,
        "tier": form.tier.data or None,
        "stock": form.stock.data,
        "per_member_limit": form.per_member_limit.data,
        "starts_at": aware(form.starts_at.data),
        "ends_at": aware(form.ends_at.data),
        "code_valid_days": form.code_valid_days.data,
        "active": bool(form.active.data),
    }


# --- the catalog -----------------------------------------------------------------------------


def value_text(reward, currency: str) -> str:
    if reward.kind == "amount_off":
        return f"{display.money(reward.amount, currency)} off"
    if reward.kind == "percent_off":
        return f"{reward.percent}% off"
    if reward.kind == "free_product":
        return f"Free {reward.sku}"
    return "Free shipping"


def window_text(reward, tz) -> str:
    starts, ends = reward.starts_at, reward.ends_at
    if starts is None and ends is None:
        return "Always"
    if ends is None:
        return f"From {display.moment(starts, tz, time=False)}"
    if starts is None:
        return f"Until {display.moment(ends, tz, time=False)}"
    return f"{display.moment(starts, tz, time=False)} – {display.moment(ends, tz, time=False)}"


def status(reward, now: datetime) -> tuple[str, str]:
    """(label, badge class) of where the reward stands."""
    if reward.deleted_at is not None:
        return "Retired", "badge-muted"
    if not reward.active:
        return "Paused", "badge-warn"
    if reward.ends_at is not None and reward.ends_at <= now:
        return "Ended", "badge-muted"
    if reward.starts_at is not None and reward.starts_at > now:
        return "Scheduled", "badge"
    if reward.stock == 0:
        return "Out of stock", "badge-danger"
    return "Active", "badge-ok"


@bp.get("")
@requires("program.view")
def index():
    retired = request.args.get("show") == "retired"
    cursor = request.args.get("cursor") or None
    after = cursor_row_id(cursor, MAX_INT32_ROW_ID) if cursor else None
    if cursor and after is None:
        abort(404)
    query = select(Reward).where(
        Reward.deleted_at.is_not(None) if retired else Reward.deleted_at.is_(None)
    )
    if after is not None:
        query = query.where(Reward.id > after)
    rows = list(db.session.scalars(query.order_by(Reward.id).limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    retired_count = db.session.scalar(
        select(func.count(Reward.id)).where(Reward.deleted_at.is_not(None))
    )
    program = get_program(db.session)
    tz = display.zone(program.timezone)
    now = utcnow()
    return render_template(
        "console/rewards/index.html",
        rewards=[
            {
                "reward": r,
                "kind": KIND_LABELS.get(r.kind, r.kind),
                "value": value_text(r, program.currency),
                "window": window_text(r, tz),
                "status": status(r, now),
            }
            for r in rows
        ],
        tiers=_tier_names(),
        retired=retired,
        retired_count=retired_count,
        cursor=cursor,
        next_cursor=encode_cursor(rows[-1].id) if more else None,
        currency=program.currency,
        display=display,
        editable=can("program.edit"),
    )


# --- create, edit, retire --------------------------------------------------------------------


def _glance(reward: Reward, program) -> dict:
    """The reward's standing and its codes (how many issued, how many used)."""
    issued, used = db.session.execute(
        select(
            func.count(RewardCode.id), func.count(RewardCode.id).filter(RewardCode.status == USED)
        ).where(RewardCode.reward_id == reward.id)
    ).one()
    return {
        "status": status(reward, utcnow()),
        "value": value_text(reward, program.currency),
        "issued": issued,
        "used": used,
    }


def _form_page(form, program, reward=None, status_code=200):
    return render_template(
        "console/rewards/form.html",
        form=form,
        reward=reward,
        glance=_glance(reward, program) if reward is not None else None,
        currency=program.currency,
        timezone=program.timezone,
        editable=can("program.edit"),
        display=display,
    ), status_code


@bp.get("/new")
@requires("program.edit")
def new():
    program = get_program(db.session)
    return _form_page(_form(program=program), program)


@bp.post("/new")
@requires("program.edit")
def create():
    program = get_program(db.session)
    form = _form(program=program)
    if not form.validate_on_submit():
        return _form_page(form, program, status_code=422)
    location = url_for(".index")
    done = once.already_done(db.session, form.submission.data)
    if done is not None or not once.claim(db.session, form.submission.data, location, "reward"):
        flash("That reward was already created.", "info")
        return redirect(done or location, 303)
    try:
        data = RewardCreateSchema().load(_body(form, program))
        reward = service.create_reward(db.session, data)
        view = service.reward_view(db.session, reward)
        record_change(db.session, "reward.create", "reward", reward.id, None, view)
    except (DomainError, ValidationError) as error:
        show_error(form, error)
        return _form_page(form, program, status_code=422)
    flash(f"Reward “{reward.name}” created.", "success")
    return redirect(location, 303)


def _reward_or_404(reward_id: int) -> Reward:
    try:
        return service.get_reward(db.session, reward_id)
    except NotFound:
        abort(404)


@bp.get("/<int32:reward_id>")
@requires("program.view")
def edit(reward_id):
    program = get_program(db.session)
    reward = _reward_or_404(reward_id)
    return _form_page(_form(reward, program), program, reward)


@bp.post("/<int32:reward_id>")
@requires("program.edit")
def update(reward_id):
    program = get_program(db.session)
    reward = _reward_or_404(reward_id)
    form = _form(program=program)
    if not form.validate_on_submit():
        return _form_page(form, program, reward, 422)
    try:
        changes = RewardUpdateSchema().load(_body(form, program))
        before = service.reward_view(db.session, reward)
        reward = service.update_reward(db.session, reward_id, changes)
        after = service.reward_view(db.session, reward)
        record_change(db.session, "reward.update", "reward", reward_id, before, after)
    except (DomainError, ValidationError) as error:
        show_error(form, error)
        return _form_page(form, program, reward, getattr(error, "status", 422))
    flash(f"Reward “{reward.name}” saved.", "success")
    return redirect(url_for(".index"), 303)


@bp.get("/<int32:reward_id>/retire")
@requires("program.edit")
def retire_confirm(reward_id):
    reward = _reward_or_404(reward_id)
    return render_template("console/rewards/retire.html", reward=reward)


@bp.post("/<int32:reward_id>/retire")
@requires("program.edit")
def retire(reward_id):
    reward = _reward_or_404(reward_id)
    before = service.reward_view(db.session, reward)
    service.delete_reward(db.session, reward_id)
    record_change(db.session, "reward.delete", "reward", reward_id, before, None)
    flash(f"Reward “{reward.name}” retired. Codes already issued for it stay valid.", "success")
    return redirect(url_for(".index"), 303)
