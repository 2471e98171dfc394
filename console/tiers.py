"""Tiers: the ladder, and every change to it previewed before it applies.

A change (edit a tier's threshold, multiplier or perks; add a tier; remove one) is two steps:

1. Preview: the whole ladder as it would be, through the API's `POST /v1/tiers/preview`
   (`PreviewSchema`, `service.preview`): how many members would move from which tier to
   which. Nothing changes; the page carries the proposed values in hidden fields, with a
   fingerprint of the ladder it was computed on.
2. Apply: the same values again, validated by the same schemas as `POST`/`PATCH`/`DELETE
   /v1/tiers` and applied by the same service functions (which write the audit record). A
   confirmation made on a ladder that has changed since its preview is refused with the new
   preview, so nobody applies numbers they have not seen.

The tier basis (what thresholds count: spend, points earned or paid orders) is chosen on the
same page, the same way: a preview of who would move (`POST /v1/tiers/preview` with
`tier_basis`), then `PUT /v1/program` through the program's service.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from sqlalchemy import func, select
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from console.auth import can, requires
from console.forms import show_error
from console.htmx import is_htmx
from console.wording import major_units, money, multiplier, parse_money
from loyalty.errors import DomainError, NotFound
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.members.models import Member
from loyalty.program.schemas import ProgramUpdateSchema
from loyalty.program.service import get_program, money_in_currency, update_program
from loyalty.tiers import service
from loyalty.tiers.models import Tier, TierChange
from loyalty.tiers.schemas import PreviewSchema, TierSchema, TierUpdateSchema
from rewards.catalog.models import Reward

bp = Blueprint("tiers", __name__, url_prefix="/tiers")

BASIS_NAMES = {
    "spend": "Spend",
    "points": "Points earned",
    "orders": "Paid orders",
}
BASIS_HINTS = {
    "spend": "Eligible spend in the period, net of refunds.",
    "points": "Points the period's orders earned (with order bonuses), net of refunds.",
    "orders": "Paid orders in the period, except those refunded in full.",
}
_COUNT = re.compile(r"[0-9]{1,15}")


def threshold_text(value: int, basis: str, currency: str) -> str:
    """A threshold in its basis' unit: "$350.00", "350 points", "3 orders"."""
    if basis == "spend":
        return money(value, currency)
    unit = "point" if basis == "points" else "order"
    return f"{value:,} {unit}" + ("" if value == 1 else "s")


@bp.context_processor
def _words():
    def threshold(value: int, basis: str | None = None) -> str:
        return threshold_text(value, basis or _basis(), _currency())

    return {"money": money, "multiplier": multiplier, "threshold": threshold,
            "basis_names": BASIS_NAMES, "basis_hints": BASIS_HINTS}  # fmt: skip


class TierForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired()], description="What members see, e.g. Gold."
    )
    threshold = StringField(
        "Threshold",
        validators=[DataRequired()],
        description="Qualifying spend in a qualifying period that reaches this tier.",
        render_kw={"inputmode": "decimal"},
    )
    multiplier = StringField(
        "Points multiplier",
        validators=[DataRequired()],
        description="Members of this tier earn base points × this, e.g. 1.25.",
        render_kw={"inputmode": "decimal"},
    )
    perks = TextAreaField(
        "Perks", description="One perk per line, shown to members.", render_kw={"rows": 4}
    )
    entry_reward_id = SelectField(
        "Entry reward",
        choices=[SelectChoice("", "None")],
        validate_choice=False,  # the API's own check answers (the reward must exist)
        description="A catalog reward whose code a member gets on reaching this tier: once per"
        " qualifying period, not again after dropping and coming back in the same period.",
    )
    birthday_points = StringField(
        "Birthday points",
        description="Points on a member's birthday while in this tier, instead of the birthday"
        " rule's. Empty: the rule's points; 0: none in this tier.",
        render_kw={"inputmode": "numeric"},
    )
    ladder = HiddenField()


class BasisForm(FlaskForm):
    tier_basis = SelectField(
        "Qualify members for tiers by",
        choices=[SelectChoice(value, label) for value, label in BASIS_NAMES.items()],
        validate_choice=False,
    )
    ladder = HiddenField()
    basis_before = HiddenField()


def _currency() -> str:
    return get_program(db.session()).currency


def _basis() -> str:
    return get_program(db.session()).tier_basis


def _reward_names() -> dict[int, str]:
    """Live catalog rewards by id (retired ones can't be chosen)."""
    rows = db.session.execute(
        select(Reward.id, Reward.name).where(Reward.deleted_at.is_(None)).order_by(Reward.name)
    )
    return {reward_id: name for reward_id, name in rows}


def _offer_rewards(form: TierForm, tier: Tier | None) -> None:
    names = _reward_names()
    choices = [SelectChoice("", "None"), *(SelectChoice(str(i), n) for i, n in names.items())]
    current = tier.entry_reward_id if tier is not None else None
    if current is not None and current not in names:
        choices.append(SelectChoice(str(current), f"Reward {current} (retired)"))
    form.entry_reward_id.choices = choices


def _tier_or_404(tier_id: int) -> Tier:
    try:
        return service.get_tier(db.session(), tier_id)
    except NotFound:
        abort(404)


def fingerprint(tiers: list[Tier]) -> str:
    """The ladder a preview was computed on: any change to any tier changes it."""
    text = json.dumps([service.tier_snapshot(t) for t in tiers], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def members_per_tier() -> dict[int, int]:
    """Members (not erased) holding each tier now, by tier id; no tier yet = the base tier."""
    base = service.base_tier(db.session())
    counts: dict[int, int] = {}
    rows = db.session.execute(
        select(Member.tier_id, func.count())
        .where(Member.erased_at.is_(None))
        .group_by(Member.tier_id)
    )
    for tier_id, n in rows:
        key = base.id if tier_id is None else tier_id
        counts[key] = counts.get(key, 0) + int(n)
    return counts


def _perk_lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _parse_threshold(text: str | None, basis: str, currency: str) -> int | None:
    if basis == "spend":
        return parse_money(text, currency, "threshold")
    text = (text or "").strip().replace(",", "").replace(" ", "")
    if not text:
        return None
    if not _COUNT.fullmatch(text):
        raise ValidationError({"threshold": [f"Enter a whole number of {basis}, e.g. 500."]})
    return int(text)


def _parse_count(text: str | None, field: str) -> int | None:
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    if not _COUNT.fullmatch(text):
        raise ValidationError(
            {field: ["Enter a whole number of points, e.g. 500, or leave empty."]}
        )
    return int(text)


def _threshold_input(value: int, basis: str, currency: str) -> str:
    return major_units(value, currency) if basis == "spend" else str(value)


def _load(form: TierForm, currency: str, *, new: bool) -> dict:
    """The form as the API's body, validated by the API's schema (ValidationError if not)."""
    reward = (form.entry_reward_id.data or "").strip()
    body = {
        "threshold": _parse_threshold(form.threshold.data, _basis(), currency),
        "multiplier": (form.multiplier.data or "").strip(),
        "perks": _perk_lines(form.perks.data),
        "entry_reward_id": int(reward) if reward.isdigit() else (reward or None),
        "birthday_points": _parse_count(form.birthday_points.data, "birthday_points"),
    }
    if new:
        return TierSchema().load({"name": (form.name.data or "").strip(), **body})
    return TierUpdateSchema().load(body)


def _lift(error: DomainError | ValidationError) -> DomainError | ValidationError:
    """The preview's whole-list errors ({"tiers": {"threshold": [...]}}) onto the form's fields."""
    errors = error.messages if isinstance(error, ValidationError) else error.errors
    if isinstance(errors, dict) and isinstance(errors.get("tiers"), dict):
        lifted = {k: v for k, v in errors.items() if k != "tiers"}
        for name, messages in errors["tiers"].items():
            key = name if isinstance(name, str) else "tiers"
            lifted.setdefault(key, [])
            lifted[key] = [*lifted[key], *(messages if isinstance(messages, list) else [messages])]
        if isinstance(error, ValidationError):
            return ValidationError(lifted)
        error.errors = lifted
    return error


class _Undo(Exception):
    """Rolls back a savepoint in which the service was asked what it would say."""


def _refusal(call) -> DomainError | None:
    """The service's refusal of a change, asked in a savepoint that is always rolled back:
    the base tier's 409 ("can't be deleted", "must keep threshold 0") in the API's words."""
    try:
        with db.session.begin_nested():
            call()
            raise _Undo
    except _Undo:
        return None
    except DomainError as error:
        return error


# --- the plan: the ladder before and after, and the preview --------------------------------


@dataclass
class Step:
    """One rung of a ladder as shown: the tier's values and what this change does to it."""

    id: int | None
    name: str
    threshold: int
    multiplier: Decimal
    perks: list
    members: int = 0
    entry_reward_id: int | None = None
    birthday_points: int | None = None
    change: str = ""  # "", "changed", "new", "removed"
    changed: set = field(default_factory=set)  # which values differ


@dataclass
class Plan:
    kind: str  # "edit", "new", "remove"
    tier: Tier | None
    values: dict  # the proposed values (API body), for the confirmation's hidden fields
    before: list
    after: list
    moves: list = field(default_factory=list)
    unchanged: int = 0
    moved: int = 0
    ladder: str = ""


def _plan(kind: str, tier: Tier | None, values: dict) -> Plan:
    """The ladder now and as it would be, and who would move (the API's preview)."""
    tiers = service.all_tiers(db.session())
    counts = members_per_tier()
    before = [
        Step(t.id, t.name, t.threshold, t.multiplier, list(t.perks or []), counts.get(t.id, 0),
             t.entry_reward_id, t.birthday_points)
        for t in tiers
    ]  # fmt: skip
    after = []
    for step in before:
        copy = Step(
            step.id,
            step.name,
            step.threshold,
            step.multiplier,
            step.perks,
            entry_reward_id=step.entry_reward_id,
            birthday_points=step.birthday_points,
        )
        if tier is not None and step.id == tier.id:
            if kind == "remove":
                copy.change = "removed"
            else:
                for key in ("threshold", "multiplier", "perks", "entry_reward_id",
                            "birthday_points"):  # fmt: skip
                    if key in values and values[key] != getattr(step, key):
                        setattr(copy, key, values[key])
                        copy.changed.add(key)
                copy.change = "changed" if copy.changed else ""
        after.append(copy)
    if kind == "new":
        after.append(
            Step(None, values["name"], values["threshold"], values["multiplier"],
                 values.get("perks", []), entry_reward_id=values.get("entry_reward_id"),
                 birthday_points=values.get("birthday_points"), change="new")
        )  # fmt: skip
    after.sort(key=lambda s: s.threshold)
    proposed = PreviewSchema().load(
        {
            "tiers": [
                {"name": s.name, "threshold": s.threshold,
                 "multiplier": format(s.multiplier.normalize(), "f"), "perks": s.perks}
                for s in after
                if s.change != "removed"
            ]
        }
    )  # fmt: skip
    moves = service.preview(db.session(), proposed["tiers"])["moves"]
    by_name = {s.name: s for s in after}
    for s in after:
        s.members = counts.get(s.id, 0) if s.id is not None else 0
    for move in moves:
        if move["from"] in by_name:
            by_name[move["from"]].members -= move["members"]
        if move["to"] in by_name:
            by_name[move["to"]].members += move["members"]
    moved = sum(m["members"] for m in moves)
    return Plan(
        kind, tier, values, before, after, moves,
        unchanged=sum(counts.values()) - moved, moved=moved, ladder=fingerprint(tiers),
    )  # fmt: skip


# --- pages ----------------------------------------------------------------------------------


@bp.get("")
@requires("program.view")
def index():
    tiers = service.all_tiers(db.session())
    basis = _basis()
    form = BasisForm(data={"tier_basis": basis, "ladder": fingerprint(tiers),
                           "basis_before": basis})  # fmt: skip
    return render_template(
        "console/tiers/index.html",
        tiers=tiers,
        counts=members_per_tier(),
        currency=_currency(),
        editable=can("program.edit"),
        basis=basis,
        basis_form=form,
        rewards=_reward_names(),
    )


def _form_page(form: TierForm, tier: Tier | None, status: int = 200):
    currency, basis = _currency(), _basis()
    unit = currency if basis == "spend" else basis
    form.threshold.label.text = f"Threshold ({unit})"
    form.threshold.description = {
        "spend": "Qualifying spend in a qualifying period that reaches this tier.",
        "points": "Points earned by orders in a qualifying period that reach this tier.",
        "orders": "Paid orders in a qualifying period that reach this tier.",
    }[basis]
    _offer_rewards(form, tier)
    template = "console/tiers/_form.html" if is_htmx() else "console/tiers/form.html"
    is_base = tier is not None and tier.threshold == 0
    answer = render_template(template, form=form, tier=tier, currency=currency, is_base=is_base)
    return answer, (200 if is_htmx() else status)  # htmx swaps only successful answers


def _preview_page(plan: Plan, form: TierForm, status: int = 200):
    """The preview, and the confirmation carrying the proposed values as the form sent them."""
    currency = _currency()
    values = plan.values
    confirm = {}
    if plan.kind == "new":
        confirm["name"] = values["name"]
    if plan.kind != "remove":
        confirm["threshold"] = _threshold_input(values["threshold"], _basis(), currency)
        confirm["multiplier"] = format(values["multiplier"].normalize(), "f")
        confirm["perks"] = "\n".join(values.get("perks", []))
        reward, birthday = values.get("entry_reward_id"), values.get("birthday_points")
        confirm["entry_reward_id"] = "" if reward is None else str(reward)
        confirm["birthday_points"] = "" if birthday is None else str(birthday)
    template = "console/tiers/_preview.html" if is_htmx() else "console/tiers/preview.html"
    answer = render_template(template, plan=plan, form=form, confirm=confirm, currency=currency,
                             rewards=_reward_names())  # fmt: skip
    return answer, status


@bp.route("/<int:tier_id>/edit", methods=["GET", "POST"])
@requires("program.edit")
def edit(tier_id: int):
    """The edit form (POST: back from the preview, with the proposed values kept)."""
    tier = _tier_or_404(tier_id)
    if request.method == "GET":
        form = TierForm(
            data={
                "name": tier.name,
                "threshold": _threshold_input(tier.threshold, _basis(), _currency()),
                "multiplier": format(tier.multiplier.normalize(), "f"),
                "perks": "\n".join(tier.perks or []),
                "entry_reward_id": ""
                if tier.entry_reward_id is None
                else str(tier.entry_reward_id),
                "birthday_points": ""
                if tier.birthday_points is None
                else str(tier.birthday_points),
            }
        )
    else:
        form = TierForm()
        form.name.data = tier.name
    return _form_page(form, tier)


@bp.route("/new", methods=["GET", "POST"])
@requires("program.edit")
def new():
    form = TierForm() if request.method == "POST" else TierForm(data={"multiplier": "1"})
    return _form_page(form, None)


def _validated(form: TierForm, tier: Tier | None):
    """(values, None) or (None, the form page answering the refusal)."""
    if tier is not None:
        form.name.data = tier.name
    if not form.validate_on_submit():
        return None, _form_page(form, tier, 422)
    try:
        return _load(form, _currency(), new=tier is None), None
    except ValidationError as error:
        show_error(form, error)
        return None, _form_page(form, tier, 422)


def _planned(form: TierForm, kind: str, tier: Tier | None, values: dict):
    """(plan, None) or (None, the page answering the refusal)."""
    if tier is not None and tier.threshold == 0 and values.get("threshold") != 0:
        # Removing or moving the base tier: the service's own answer (its 409).
        if kind == "remove":
            refusal = _refusal(lambda: service.delete_tier(db.session(), tier.id))
        else:
            refusal = _refusal(lambda: service.update_tier(db.session(), tier.id, values))
        if refusal is not None:
            show_error(form, refusal)
            if kind == "remove":
                return None, _refused_removal(form, tier, refusal.status)
            return None, _form_page(form, tier, refusal.status)
    try:
        return _plan(kind, tier, values), None
    except (DomainError, ValidationError) as error:
        show_error(form, _lift(error))
        if kind == "remove" and tier is not None:
            return None, _refused_removal(form, tier, getattr(error, "status", 422))
        return None, _form_page(form, tier, getattr(error, "status", 422))


def _refused_removal(form: TierForm, tier: Tier, status: int):
    plan = Plan("remove", tier, {}, [], [])
    return render_template(
        "console/tiers/preview.html", plan=plan, form=form, currency=_currency(), refused=True
    ), status


@bp.post("/<int:tier_id>/preview")
@requires("program.edit")
def preview_edit(tier_id: int):
    tier = _tier_or_404(tier_id)
    form = TierForm()
    values, refused = _validated(form, tier)
    if refused:
        return refused
    plan, refused = _planned(form, "edit", tier, values)
    return refused or _preview_page(plan, form)


@bp.post("/new/preview")
@requires("program.edit")
def preview_new():
    form = TierForm()
    values, refused = _validated(form, None)
    if refused:
        return refused
    plan, refused = _planned(form, "new", None, values)
    return refused or _preview_page(plan, form)


@bp.get("/<int:tier_id>/remove")
@requires("program.edit")
def preview_remove(tier_id: int):
    tier = _tier_or_404(tier_id)
    form = TierForm()
    plan, refused = _planned(form, "remove", tier, {})
    return refused or _preview_page(plan, form)


# --- applying a previewed change ------------------------------------------------------------


def _stale(form: TierForm, kind: str, tier: Tier | None, values: dict):
    """The new preview when the ladder changed since the one confirmed (None if it did not)."""
    if form.ladder.data == fingerprint(service.all_tiers(db.session())):
        return None
    plan, refused = _planned(form, kind, tier, values)
    if refused:
        return refused
    form.form_errors.append(
        "The tiers changed after this preview was made, so nothing was applied. Here is the "
        "preview on the tiers as they are now: check it, then apply again."
    )
    return _preview_page(plan, form, 409)


def _moved_since(last_change_id: int, tier_id: int) -> int:
    return db.session.execute(
        select(func.count()).where(
            TierChange.id > last_change_id,
            TierChange.reason == "tier_config",
            TierChange.source_id == f"tier:{tier_id}",
        )
    ).scalar_one()


def _last_change_id() -> int:
    return db.session.scalar(select(func.max(TierChange.id))) or 0


def _applied(what: str, moved: int):
    members = "1 member" if moved == 1 else f"{moved:,} members"
    flash(f"{what} {members} moved to a new tier." if moved else f"{what} Nobody moved.", "success")
    return redirect(url_for("console.tiers.index"), 303)


@bp.post("/<int:tier_id>")
@requires("program.edit")
def update(tier_id: int):
    """Apply a previewed edit: `PATCH /v1/tiers/<id>` with the confirmed values."""
    tier = _tier_or_404(tier_id)
    form = TierForm()
    values, refused = _validated(form, tier)
    if refused:
        return refused
    stale = _stale(form, "edit", tier, values)
    if stale:
        return stale
    last = _last_change_id()
    try:
        tier = service.update_tier(db.session(), tier.id, values)
    except DomainError as error:
        show_error(form, error)
        return _form_page(form, tier, error.status)
    return _applied(f"{tier.name} saved.", _moved_since(last, tier.id))


@bp.post("")
@requires("program.edit")
def create():
    """Apply a previewed new tier: `POST /v1/tiers` with the confirmed values."""
    form = TierForm()
    values, refused = _validated(form, None)
    if refused:
        return refused
    stale = _stale(form, "new", None, values)
    if stale:
        return stale
    last = _last_change_id()
    try:
        tier = service.create_tier(db.session(), values)
    except DomainError as error:
        show_error(form, error)
        return _form_page(form, None, error.status)
    return _applied(f"{tier.name} added.", _moved_since(last, tier.id))


@bp.post("/<int:tier_id>/remove")
@requires("program.edit")
def remove(tier_id: int):
    """Apply a previewed removal: `DELETE /v1/tiers/<id>`."""
    tier = _tier_or_404(tier_id)
    form = TierForm()  # the CSRF token is checked before every console view
    stale = _stale(form, "remove", tier, {})
    if stale:
        return stale
    name, last = tier.name, _last_change_id()
    try:
        service.delete_tier(db.session(), tier.id)
    except DomainError as error:
        show_error(form, error)
        return _refused_removal(form, tier, error.status)
    return _applied(f"{name} removed.", _moved_since(last, tier_id))


# --- the tier basis -------------------------------------------------------------------------


def _basis_page(form: BasisForm, basis: str, moves: list, status: int = 200):
    tiers = service.all_tiers(db.session())
    moved = sum(m["members"] for m in moves)
    answer = render_template(
        "console/tiers/basis.html",
        form=form,
        basis=basis,
        basis_before=_basis(),
        moves=moves,
        moved=moved,
        unchanged=sum(members_per_tier().values()) - moved,
        tiers=tiers,
        currency=_currency(),
        ladder=fingerprint(tiers),
    )
    return answer, status


def _chosen_basis(form: BasisForm) -> str:
    """The basis chosen, validated by the program's schema (ValidationError if not)."""
    basis: str = ProgramUpdateSchema().load({"tier_basis": form.tier_basis.data})["tier_basis"]
    return basis


@bp.post("/basis/preview")
@requires("program.edit")
def preview_basis():
    """Who a change of basis would move: `POST /v1/tiers/preview` with `tier_basis`."""
    form = BasisForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        basis = _chosen_basis(form)
    except ValidationError:
        abort(422)
    moves = service.preview_basis(db.session(), basis)["moves"]
    return _basis_page(form, basis, moves)


@bp.post("/basis")
@requires("program.edit")
def update_basis():
    """Apply a previewed basis: `PUT /v1/program {"tier_basis": ...}` (audited); refused with a
    fresh preview when the tiers or the basis changed since the preview."""
    form = BasisForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        basis = _chosen_basis(form)
    except ValidationError:
        abort(422)
    tiers = service.all_tiers(db.session())
    if form.ladder.data != fingerprint(tiers) or form.basis_before.data != _basis():
        form.form_errors.append(
            "The tiers or their basis changed after this preview was made, so nothing was "
            "applied. Here is the preview as things are now: check it, then apply again."
        )
        moves = service.preview_basis(db.session(), basis)["moves"]
        return _basis_page(form, basis, moves, 409)
    last = _last_change_id()
    session = db.session()
    update_program(session, {"tier_basis": basis}, lambda: money_in_currency(session, hooks()))
    moved = db.session.execute(
        select(func.count()).where(
            TierChange.id > last, TierChange.source_id == "program:tier_basis"
        )
    ).scalar_one()
    return _applied(f"Tiers now count {BASIS_NAMES[basis].lower()}.", moved)
