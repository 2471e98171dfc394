"""Rewards: the catalog (with what is left in stock), creating and editing a reward, retiring it.

Through the same schemas, service functions and audit records as the API's `/v1/rewards`
routes: the console accepts exactly what the API accepts and refuses with the same words.
Money is typed in the currency's major units (10.00) and sent on in minor units, as the API
takes it; times are typed in the program's time zone (see console.rewards.forms).
"""

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from console import display, once
from console.auth import can, requires
from console.forms import show_error
from console.rewards import queries
from console.rewards.forms import KIND_LABELS, RewardForm, api_body, reward_form
from loyalty.errors import DomainError, NotFound, ValidationFailed
from loyalty.extensions import db
from loyalty.program.service import get_program
from loyalty.types import utcnow
from rewards.catalog import service
from rewards.catalog.models import Reward
from rewards.catalog.schemas import RewardCreateSchema, RewardUpdateSchema

bp = Blueprint("rewards", __name__, url_prefix="/rewards")

PAGE_SIZE = 50


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
    try:
        page = queries.catalog_page(db.session(), retired, cursor, PAGE_SIZE)
    except ValidationFailed:  # a cursor this list never made
        abort(404)
    rows, next_cursor = page.items, page.next_cursor
    program = get_program(db.session())
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
        tiers=queries.tier_names(db.session()),
        retired=retired,
        retired_count=queries.retired_count(db.session()),
        cursor=cursor,
        next_cursor=next_cursor,
        currency=program.currency,
        display=display,
        editable=can("program.edit"),
    )


# --- create, edit, retire --------------------------------------------------------------------


def _form(program, reward: Reward | None = None) -> RewardForm:
    return reward_form(queries.tier_names(db.session()), program, reward)


def _glance(reward: Reward, program) -> dict:
    """The reward's standing and its codes (how many issued, how many used)."""
    issued, used = queries.code_counts(db.session(), reward.id)
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
    program = get_program(db.session())
    return _form_page(_form(program), program)


@bp.post("/new")
@requires("program.edit")
def create():
    program = get_program(db.session())
    form = _form(program)
    if not form.validate_on_submit():
        return _form_page(form, program, status_code=422)
    location = url_for(".index")
    done = once.already_done(db.session(), form.submission.data)
    if done is not None or not once.claim(db.session(), form.submission.data, location, "reward"):
        flash("That reward was already created.", "info")
        return redirect(done or location, 303)
    try:
        data = RewardCreateSchema().load(api_body(form, program))
        reward = service.create_reward(db.session(), data)  # audited
    except (DomainError, ValidationError) as error:
        show_error(form, error)
        return _form_page(form, program, status_code=422)
    flash(f"Reward “{reward.name}” created.", "success")
    return redirect(location, 303)


def _reward_or_404(reward_id: int) -> Reward:
    try:
        return service.get_reward(db.session(), reward_id)
    except NotFound:
        abort(404)


@bp.get("/<int32:reward_id>")
@requires("program.view")
def edit(reward_id):
    program = get_program(db.session())
    reward = _reward_or_404(reward_id)
    return _form_page(_form(program, reward), program, reward)


@bp.post("/<int32:reward_id>")
@requires("program.edit")
def update(reward_id):
    program = get_program(db.session())
    reward = _reward_or_404(reward_id)
    form = _form(program)
    if not form.validate_on_submit():
        return _form_page(form, program, reward, 422)
    try:
        changes = RewardUpdateSchema().load(api_body(form, program))
        reward = service.update_reward(db.session(), reward_id, changes)  # audited
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
    try:
        reward = service.get_reward(db.session(), reward_id, include_deleted=True)
    except NotFound:
        abort(404)
    if reward.deleted_at is not None:  # retired by a request sent just before this one, say
        flash(f"Reward “{reward.name}” is retired already.", "info")
        return redirect(url_for(".index"), 303)
    service.delete_reward(db.session(), reward_id)  # audited
    flash(f"Reward “{reward.name}” retired. Codes already issued for it stay valid.", "success")
    return redirect(url_for(".index"), 303)
