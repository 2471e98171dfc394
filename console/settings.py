"""Program settings: currency, points per unit, pending days, expiry, qualifying period.

Through the same schema, service and audit record as the API's `PUT /v1/program`, so the
console accepts exactly what the API accepts and a change is audited the same way (as the
signed-in admin).
"""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Optional

from console.auth import can, requires
from console.forms import show_error
from loyalty.errors import DomainError
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.program import service
from loyalty.program.schemas import ProgramSchema, ProgramUpdateSchema

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


def _changes(form: SettingsForm) -> dict:
    """The form as the API's body, validated by the API's schema (ValidationError if not)."""
    body = {
        "currency": (form.currency.data or "").strip().upper(),
        "points_per_unit": (form.points_per_unit.data or "").strip(),
        "pending_days": form.pending_days.data,
        "expiry_inactive_days": form.expiry_inactive_days.data,
        "qualifying_period": form.qualifying_period.data,
    }
    return ProgramUpdateSchema().load(body)


@bp.get("")
@requires("program.view")
def index():
    program = service.get_program(db.session())
    form = SettingsForm(obj=program)
    if program.points_per_unit is not None:
        form.points_per_unit.data = ProgramSchema().dump(program)["points_per_unit"]
    return _page(form, program)


def _page(form, program, status=200):
    return render_template(
        "console/settings/index.html",
        form=form,
        program=program,
        editable=can("program.edit"),
        locked_currency=service.money_in_currency(db.session(), hooks()),
    ), status


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
        show_error(form, error)
        return _page(form, program, 422)
    flash("Program settings saved.", "success")
    return redirect(url_for("console.settings.index"), 303)
