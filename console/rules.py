"""Earning rules: the list in plain words, create, edit, pause and resume.

Through the same schemas (`EarningRuleSchema`, `EarningRuleUpdateSchema`) and service functions
(`create_rule`, `update_rule`, which write the audit record) as `POST`/`PATCH
/v1/earning-rules`, so the console accepts exactly what the API accepts and shows its
explanations. A rule is read as the API shows it (`EarningRuleSchema`: tiers by name). Dates
are typed and shown in the program's time zone; amounts in major units of its currency.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from console.auth import can, requires
from console.forms import show_error
from console.wording import (
    ACTIONS,
    describe_rule,
    describe_window,
    major_units,
    parse_money,
    rule_status,
)
from loyalty.earning import rules
from loyalty.earning.schemas import (
    ACTION_TYPE_RULE,
    EarningRuleSchema,
    EarningRuleUpdateSchema,
)
from loyalty.errors import DomainError, NotFound
from loyalty.extensions import db
from loyalty.program.service import get_program
from loyalty.tiers import service as tiers
from loyalty.types import utcnow

bp = Blueprint("rules", __name__, url_prefix="/rules")

TRIGGERS = [
    SelectChoice("order", "Paid orders"),
    SelectChoice("first_order", "A member's first paid order"),
    SelectChoice("signup", "Signing up (fixed points)"),
    SelectChoice("birthday", "Birthday, once a year (fixed points)"),
    SelectChoice("action", "A customer action: a review, a follow... (fixed points)"),
    SelectChoice("lapse", "No paid order for some days: win-back (fixed points, once a lapse)"),
]
LIST_LIMIT = 200
MOMENT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]  # what datetime-local inputs send


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class RuleForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired()], description="For you and the ledger.")
    trigger = SelectField("Earned on", choices=TRIGGERS, validators=[DataRequired()])
    multiplier = StringField(
        "Points multiplier",
        validators=[Optional()],
        description="2 = double points on the matching lines. Leave empty for fixed points.",
        render_kw={"inputmode": "decimal"},
    )
    points = IntegerField(
        "Fixed bonus points",
        validators=[Optional()],
        description="Given once per matching order, sign-up, birthday, action or lapse. Leave "
        "empty for a multiplier.",
    )
    categories = StringField(
        "Product categories",
        description="Comma-separated, e.g. skincare, makeup. Empty: every line.",
    )
    skus = StringField("SKUs", description="Comma-separated. Empty: every product.")
    min_spend = StringField(
        "Minimum order", description="The order's eligible amount. Empty: any amount."
    )
    action_type = StringField(
        "Action",
        description=f"Built in: {', '.join(ACTIONS)}; or your own name ({ACTION_TYPE_RULE})",
        render_kw={"list": "action-types", "autocomplete": "off", "spellcheck": "false"},
    )
    per_day = IntegerField("At most a day", validators=[Optional()])
    per_month = IntegerField("At most a month", validators=[Optional()])
    lifetime = IntegerField(
        "At most in all", validators=[Optional()], description="1: once per member."
    )
    days = IntegerField(
        "Days without a paid order",
        validators=[Optional()],
        description="The member gets the points once this many days pass after their last "
        "paid order; again after a new order and as many days without one.",
    )
    tiers = CheckboxesField(
        "Only for members of these tiers",
        validate_choice=False,
        description="None checked: every member.",
    )
    starts_at = DateTimeLocalField("Starts", validators=[Optional()], format=MOMENT_FORMATS)
    ends_at = DateTimeLocalField(
        "Ends",
        validators=[Optional()],
        format=MOMENT_FORMATS,
        description="The rule stops at this moment. Empty: no end.",
    )
    active = BooleanField("Active (uncheck to pause)", default=True)


def _words(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


MOMENTS = ("starts_at", "ends_at", "created_at", "updated_at")


def _as_api(rule) -> dict:
    """The rule as the API shows it (what `GET /v1/earning-rules/<id>` answers)."""
    shown: dict = EarningRuleSchema().dump(rule)
    # Its moments as datetimes, for the pages to show in the program's time zone.
    return shown | {name: getattr(rule, name) for name in MOMENTS}


def _body(form: RuleForm, program) -> dict:
    """The form as the API's body (conditions only where given; dates in the program's zone)."""
    zone = ZoneInfo(program.timezone)
    conditions: dict[str, object] = {}
    for name in ("categories", "skus"):
        if values := _words(getattr(form, name).data):
            conditions[name] = values
    if form.tiers.data:
        conditions["tiers"] = list(form.tiers.data)
    min_spend = parse_money(form.min_spend.data, program.currency, "min_spend")
    if min_spend is not None:
        conditions["min_spend"] = min_spend
    if action_type := (form.action_type.data or "").strip():
        conditions["action_type"] = action_type
    if form.days.data is not None:
        conditions["days"] = form.days.data
    caps = {name: getattr(form, name).data for name in rules.CAP_PERIODS}

    def moment(value: datetime | None) -> str | None:
        return value.replace(tzinfo=zone).isoformat() if value else None

    return {
        "name": (form.name.data or "").strip(),
        "trigger": form.trigger.data,
        "multiplier": (form.multiplier.data or "").strip() or None,
        "points": form.points.data,
        "conditions": conditions,
        "caps": {name: n for name, n in caps.items() if n is not None} or None,
        "starts_at": moment(form.starts_at.data),
        "ends_at": moment(form.ends_at.data),
        "active": bool(form.active.data),
    }


def _lift(error: DomainError | ValidationError) -> DomainError | ValidationError:
    """Errors about one condition or cap ({"conditions": {"skus": [...]}}, {"caps":
    {"per_day": [...]}}) beside that field."""
    errors = error.messages if isinstance(error, ValidationError) else error.errors
    nested = ("conditions", "caps")
    if isinstance(errors, dict) and any(isinstance(errors.get(k), dict) for k in nested):
        lifted = {k: v for k, v in errors.items() if not isinstance(v, dict) or k not in nested}
        for key in nested:
            if isinstance(errors.get(key), dict):
                lifted.update(errors[key])
        if isinstance(error, ValidationError):
            return ValidationError(lifted)
        error.errors = lifted
    return error


def _form_from(rule: dict, program) -> RuleForm:
    zone = ZoneInfo(program.timezone)
    conditions = rule.get("conditions") or {}

    def local(value):
        return value.astimezone(zone).replace(tzinfo=None) if value else None

    return RuleForm(
        data={
            "name": rule["name"],
            "trigger": rule["trigger"],
            "multiplier": rule["multiplier"] or "",
            "points": rule["points"],
            "categories": ", ".join(conditions.get("categories") or []),
            "skus": ", ".join(conditions.get("skus") or []),
            "min_spend": major_units(conditions.get("min_spend"), program.currency),
            "action_type": conditions.get("action_type") or "",
            "days": conditions.get("days"),
            **{name: (rule.get("caps") or {}).get(name) for name in rules.CAP_PERIODS},
            "tiers": list(conditions.get("tiers") or []),
            "starts_at": local(rule["starts_at"]),
            "ends_at": local(rule["ends_at"]),
            "active": rule["active"],
        }
    )


def _form_page(form: RuleForm, rule: dict | None, status: int = 200):
    program = get_program(db.session())
    names = [t.name for t in tiers.all_tiers(db.session())]
    form.tiers.choices = [SelectChoice(n, n) for n in names] + [
        SelectChoice(n, n) for n in (form.tiers.data or []) if n not in names
    ]
    form.min_spend.label.text = f"Minimum order ({program.currency})"
    zone = "UTC" if program.timezone == "UTC" else program.timezone
    form.starts_at.description = f"In the program's time zone ({zone}). Empty: from now on."
    described = describe_rule(rule, program.currency, program.timezone) if rule else None
    return render_template(
        "console/rules/form.html",
        form=form,
        action_types=list(ACTIONS),
        rule=rule,
        described=described,
        status=rule_status(rule, utcnow()) if rule else None,
        editable=can("program.edit"),
    ), status


def _rule_or_404(rule_id: int):
    try:
        return rules.get_rule(db.session(), rule_id)
    except NotFound:
        abort(404)


@bp.get("")
@requires("program.view")
def index():
    program = get_program(db.session())
    try:
        page = rules.list_rules(db.session(), LIST_LIMIT, request.args.get("cursor"))
    except DomainError:
        abort(404)
    now = utcnow()
    rows = [
        {
            "rule": rule,
            "words": describe_rule(rule, program.currency, program.timezone, window=False),
            "window": describe_window(rule["starts_at"], rule["ends_at"], program.timezone),
            "status": rule_status(rule, now),
        }
        for rule in map(_as_api, page.items)
    ]
    return render_template(
        "console/rules/index.html",
        rows=rows,
        next_cursor=page.next_cursor,
        editable=can("program.edit"),
    )


@bp.get("/new")
@requires("program.edit")
def new():
    return _form_page(RuleForm(), None)


@bp.post("")
@requires("program.edit")
def create():
    """`POST /v1/earning-rules` with the form's values."""
    form = RuleForm()
    if not form.validate_on_submit():
        return _form_page(form, None, 422)
    try:
        data = EarningRuleSchema().load(_body(form, get_program(db.session())))
        rule = rules.create_rule(db.session(), data)
    except (DomainError, ValidationError) as error:
        show_error(form, _lift(error))
        return _form_page(form, None, getattr(error, "status", 422))
    flash(f"Earning rule “{rule.name}” created.", "success")
    return redirect(url_for("console.rules.index"), 303)


@bp.get("/<int:rule_id>")
@requires("program.view")
def edit(rule_id: int):
    rule = _as_api(_rule_or_404(rule_id))
    return _form_page(_form_from(rule, get_program(db.session())), rule)


@bp.post("/<int:rule_id>")
@requires("program.edit")
def update(rule_id: int):
    """`PATCH /v1/earning-rules/<id>` with every value of the form."""
    rule = _as_api(_rule_or_404(rule_id))
    form = RuleForm()
    if not form.validate_on_submit():
        return _form_page(form, rule, 422)
    try:
        changes = EarningRuleUpdateSchema().load(_body(form, get_program(db.session())))
        updated = rules.update_rule(db.session(), rule_id, changes)
    except (DomainError, ValidationError) as error:
        show_error(form, _lift(error))
        return _form_page(form, rule, getattr(error, "status", 422))
    flash(f"Earning rule “{updated.name}” saved.", "success")
    return redirect(url_for("console.rules.index"), 303)


def _switch(rule_id: int, active: bool):
    rule = _rule_or_404(rule_id)
    try:
        rule = rules.update_rule(
            db.session(), rule.id, EarningRuleUpdateSchema().load({"active": active})
        )
    except DomainError as error:
        flash(error.detail, "error")
        return redirect(url_for("console.rules.index"), 303)  # nothing changed: rolled back
    flash(f"Earning rule “{rule.name}” {'resumed' if active else 'paused'}.", "success")
    back = request.form.get("next", "")
    if not back.startswith(url_for("console.rules.index")):  # only back to these pages
        back = url_for("console.rules.index")
    return redirect(back, 303)


@bp.post("/<int:rule_id>/pause")
@requires("program.edit")
def pause(rule_id: int):
    return _switch(rule_id, False)


@bp.post("/<int:rule_id>/resume")
@requires("program.edit")
def resume(rule_id: int):
    return _switch(rule_id, True)
