"""The gift card forms, and how each becomes the body its API route takes.

Money is typed in the currency's major units (`50`, `12.50`) and sent on in minor units, as the
API takes it; an expiry is a day in the program's time zone (the card stops at its end). The
bodies are then loaded by the API's own schemas, so the console accepts what the API accepts
and refuses with the same words.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import DateField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from console import display, once
from rewards.giftcards.schemas import GiftCardAdjustmentSchema, GiftCardCreateSchema

_MONEY = {"inputmode": "decimal", "autocomplete": "off", "spellcheck": "false"}


class IssueForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])
    amount = StringField(
        "Amount",
        validators=[InputRequired(message="Enter the card's value, e.g. 50 or 25.00.")],
        description="The value the card is issued with, in the currency below.",
        render_kw=_MONEY,
    )
    currency = StringField(
        "Currency",
        validators=[DataRequired(message="Enter the program's currency.")],
        description="Cards are issued in the program's currency.",
        render_kw={"maxlength": 3, "autocomplete": "off", "spellcheck": "false"},
    )
    bonus_amount = StringField(
        "Bonus (optional)",
        description="Promotional value added on top of the amount, e.g. 10.",
        render_kw=_MONEY,
    )
    expires_at = DateField(
        "Expires on (optional)",
        validators=[Optional()],
        description="The card can be spent until the end of this day (program time zone); "
        "empty for no expiry.",
    )
    note = TextAreaField(
        "Note (optional)",
        validators=[Length(max=500)],
        description="For admins only: why the card was issued, for whom.",
        render_kw={"rows": 2, "maxlength": 500},
    )


class AdjustForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])
    amount = StringField(
        "Amount",
        validators=[InputRequired(message="Enter an amount, e.g. 5.00 or -5.00.")],
        description="Positive to add value, negative to take it away (e.g. -5.00). Only what "
        "can be spent now can be taken: never money an order holds.",
        render_kw=_MONEY,
    )
    reason = TextAreaField(
        "Reason",
        validators=[DataRequired(message="Say why: it is kept with the card's transaction.")],
        description="Kept with the transaction on the card and in the audit log.",
        render_kw={"rows": 3, "maxlength": 500},
    )


class DisableForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])


def _minor(form: FlaskForm, name: str, currency: str) -> int | None:
    field = form[name]
    try:
        return display.minor_units(field.data, currency)
    except ValueError as error:
        raise ValidationError({name: [str(error)]}) from None


def end_of_day(day, tz: ZoneInfo) -> datetime:
    """The first moment after `day` in the program's time zone, in UTC."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


def issue_body(form: IssueForm, tz: ZoneInfo) -> dict:
    """The form as `POST /v1/gift-cards` takes it, loaded by its schema (ValidationError)."""
    currency = (form.currency.data or "").strip().upper()
    body = {
        "amount": _minor(form, "amount", currency),
        "currency": currency,
        "bonus_amount": _minor(form, "bonus_amount", currency) or 0,
        "expires_at": end_of_day(form.expires_at.data, tz).isoformat()
        if form.expires_at.data
        else None,
        "note": (form.note.data or "").strip() or None,
    }
    return GiftCardCreateSchema().load(body)


def adjustment_body(form: AdjustForm, currency: str) -> dict:
    """The form as `POST /v1/gift-cards/{id}/adjustments` takes it (ValidationError)."""
    amount = _minor(form, "amount", currency)
    if amount == 0:
        raise ValidationError({"amount": ["Enter an amount other than zero."]})
    return GiftCardAdjustmentSchema().load(
        {"amount": amount, "reason": (form.reason.data or "").strip()}
    )
