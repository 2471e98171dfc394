"""Program settings: currency, points per unit, pending days, expiry, qualifying period,
points at checkout.

Through the same schema, service and audit record as the API's `PUT /v1/program`, so the
console accepts exactly what the API accepts and a change is audited the same way (as the
signed-in admin).
"""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Optional

from console import display
from console.auth import can, requires
from console.forms import show_error
from loyalty.errors import DomainError
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.program import service
from loyalty.program.schemas import ProgramSchema, ProgramUpdateSchema
from rewards.catalog.service import checkout_amount

bp = Blueprint("settings", __name__, url_prefix="/settings")

QUALIFYING_PERIODS = [
    SelectChoice(
        "calendar_year", "Calendar year (January to December, in the program's time zone)"
    ),
    SelectChoice("rolling_365", "Rolling 365 days"),
]


class SettingsForm(FlaskForm):
    currency = StringField(
        "Currency",
        validators=[DataRequired()],
        description="ISO 4217 code, e.g. USD. It can't change once orders or gift cards exist.",
        render_kw={"maxlength": 3, "autocapitalize": "characters", "spellcheck": "false"},
    )
    points_per_unit = StringField(
        "Points per currency unit",
        validators=[DataRequired()],
        description="Points a member earns per whole unit spent (1 = one point per dollar).",
        render_kw={"inputmode": "decimal"},
    )
    pending_days = IntegerField(
        "Pending days",
        validators=[InputRequired()],
        description="Days earned points stay pending before they can be spent (0 to 3650).",
    )
    expiry_inactive_days = IntegerField(
        "Expire points after days without activity",
        validators=[Optional()],
        description="Leave empty for points that never expire.",
    )
    qualifying_period = SelectField(
        "Qualifying period for tiers", choices=QUALIFYING_PERIODS, validators=[DataRequired()]
    )
    checkout_enabled = BooleanField("Shoppers can spend points at checkout")
    checkout_value_per_point = StringField(
        "Value of one point (in the currency's smallest unit)",
        description="1 = one cent per point in USD; decimals up to 4 places (0.5 = two points "
        "per cent). A code is worth points × this, rounded down.",
        render_kw={"inputmode": "decimal"},
    )
    checkout_min_points = IntegerField(
        "Fewest points per code", description="A multiple of the step."
    )
    checkout_step = IntegerField(
        "Points step", description="Points are spent in multiples of this."
    )
    checkout_max_share_of_cart = IntegerField(
        "Largest share of the cart (%)",
        description="A code takes at most this percent of the cart's subtotal (1 to 100).",
    )
    checkout_code_valid_hours = IntegerField(
        "Code valid for (hours)",
        description="An unused code ends after this; its points go back to the member.",
    )


# `checkout_points` field -> the form's field
CHECKOUT_FIELDS = {
    "enabled": "checkout_enabled",
    "value_per_point": "checkout_value_per_point",
    "min_points": "checkout_min_points",
    "step": "checkout_step",
    "max_share_of_cart": "checkout_max_share_of_cart",
    "code_valid_hours": "checkout_code_valid_hours",
}


def _changes(form: SettingsForm) -> dict:
    """The form as the API's body, validated by the API's schema (ValidationError if not)."""
    body = {
        "currency": (form.currency.data or "").strip().upper(),
        "points_per_unit": (form.points_per_unit.data or "").strip(),
        "pending_days": form.pending_days.data,
        "expiry_inactive_days": form.expiry_inactive_days.data,
        "qualifying_period": form.qualifying_period.data,
        "checkout_points": {
            "enabled": bool(form.checkout_enabled.data),
            "value_per_point": (form.checkout_value_per_point.data or "").strip() or None,
            "min_points": form.checkout_min_points.data,
            "step": form.checkout_step.data,
            "max_share_of_cart": form.checkout_max_share_of_cart.data,
            "code_valid_hours": form.checkout_code_valid_hours.data,
        },
    }
    return ProgramUpdateSchema().load(body)


def _show_error(form: SettingsForm, error: DomainError | ValidationError) -> None:
    """`show_error`, with the refusals inside `checkout_points` put beside their own fields."""
    messages = error.messages if isinstance(error, ValidationError) else error.errors
    if not isinstance(messages, dict) or not isinstance(messages.get("checkout_points"), dict):
        show_error(form, error)
        return
    nested = messages["checkout_points"]
    for name, field_messages in nested.items():
        field = form[CHECKOUT_FIELDS[name]] if name in CHECKOUT_FIELDS else None
        if field is None:
            form.form_errors.extend(field_messages)
        else:
            field.errors = [*field.errors, *field_messages]
    rest = {name: value for name, value in messages.items() if name != "checkout_points"}
    show_error(form, ValidationError(rest))


@bp.get("")
@requires("program.view")
def index():
    program = service.get_program(db.session())
    form = SettingsForm(obj=program)
    shown = ProgramSchema().dump(program)
    form.points_per_unit.data = shown["points_per_unit"]
    for name, field in CHECKOUT_FIELDS.items():
        form[field].data = shown["checkout_points"][name]
    return _page(form, program)


def _page(form, program, status=200):
    return render_template(
        "console/settings/index.html",
        form=form,
        program=program,
        editable=can("program.edit"),
        locked_currency=service.money_in_currency(db.session(), hooks()),
        checkout_example=_checkout_example(program),
    ), status


def _checkout_example(program) -> str:
    """What the saved settings mean for a shopper, in words."""
    terms = program.checkout_points
    worth = checkout_amount(terms.min_points, terms.value_per_point)
    return (
        f"{display.points(terms.min_points)} points take "
        f"{display.money(worth, program.currency)} off; a code takes at most "
        f"{terms.max_share_of_cart}% of the cart and lasts {terms.code_valid_hours} hours."
    )


@bp.post("")
@requires("program.edit")
def update():
    program = service.get_program(db.session())
    form = SettingsForm()
    if not form.validate_on_submit():
        return _page(form, program, 422)
    try:
        changes = _changes(form)
        program = service.update_program(  # audited
            db.session(), changes, lambda: service.money_in_currency(db.session(), hooks())
        )
    except (DomainError, ValidationError) as error:
        _show_error(form, error)
        return _page(form, program, 422)
    flash("Program settings saved.", "success")
    return redirect(url_for("console.settings.index"), 303)
