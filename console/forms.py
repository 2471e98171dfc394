"""Forms of the console (Flask-WTF), and how a service's refusal is shown in one.

Every form is a `FlaskForm`: it carries the CSRF token (`{{ form.csrf_token }}`, or the
`form_fields` macro) and is read with `form.validate_on_submit()`. A view that calls a service
catches `DomainError` and hands it to `show_error(form, error)`, then answers the page again
with the error's status (4xx: the request's transaction is rolled back).
"""

from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from loyalty.errors import DomainError


def show_error(form: FlaskForm, error: DomainError | ValidationError) -> None:
    """Put a service's refusal on the form: messages about one of the form's fields beside
    it, everything else — the API's explanation, `error.detail` — at the top of the form."""
    if isinstance(error, ValidationError):
        messages, detail = error.messages, None
    else:
        messages, detail = error.errors or {}, error.detail
    unplaced = []
    if isinstance(messages, dict):
        for name, field_messages in messages.items():
            field = form._fields.get(name)
            if field is None or name == "csrf_token":
                unplaced.extend(_flatten(field_messages))
            else:
                field.errors = [*field.errors, *_flatten(field_messages)]
    else:
        unplaced.extend(_flatten(messages))
    if detail and not detail.startswith("See `errors`"):
        form.form_errors.append(detail)
    form.form_errors.extend(unplaced)


def _flatten(messages) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flatten(value)]
    return [m for value in messages for m in _flatten(value)]


class SignInForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[
            DataRequired(),
            Length(max=254),
            Regexp(r"^[^@\s]+@[^@\s]+$", message="Enter an email address."),
        ],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )


class TotpForm(FlaskForm):
    code = StringField(
        "Code from your authenticator app",
        validators=[DataRequired(), Length(min=6, max=8)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class ConfirmTotpForm(TotpForm):
    pass


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(max=1024)],
        description="At least 12 characters.",
        render_kw={"autocomplete": "new-password"},
    )
    confirm_password = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("new_password", message="The two passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class TurnOffTotpForm(FlaskForm):
    password = PasswordField(
        "Your password",
        validators=[DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
