"""The reward form: the catalog's fields as a merchant types them (money in major units,
times in the program's zone), and the same fields as the API's body (`/v1/rewards`)."""

from datetime import datetime

from flask import request
from flask_wtf import FlaskForm
from marshmallow import ValidationError
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
from rewards.catalog import service
from rewards.catalog.models import Reward

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


def reward_form(tier_names: dict[int, str], program, obj: Reward | None = None) -> RewardForm:
    """The form (from the request's data when it was sent; else from `obj`, or empty), with
    the tiers (`{id: name}`, lowest first) to choose from."""
    form = RewardForm(obj=obj) if obj is not None else RewardForm()
    names = tier_names
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


def api_body(form: RewardForm, program) -> dict:
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
