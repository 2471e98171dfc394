"""API keys: the server keys the API takes (`Authorization: Bearer lk_...`), for owners only.

Creating and revoking go through `loyalty.auth` (as `flask api-keys create|revoke` does),
audited as the signed-in admin. Only a key's hash is kept: the key is shown once, on the
page that answers its creation; sent again, the form finds its submission already done and
shows the list instead. A revoked key is refused by every worker as soon as the revoking
request has answered (the keys' cache follows the config stamp, loyalty/cache.py).
"""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from console import display, once
from console.auth import requires
from loyalty.auth import SCOPES, ApiKey, create_api_key, list_api_keys, revoke_api_key
from loyalty.extensions import db
from loyalty.program.service import get_program

bp = Blueprint("keys", __name__, url_prefix="/api-keys")

PERMISSION = "keys.manage"
# What each scope opens, in the API's words (API.md "Auth"); a scope without words here is
# shown by its name alone.
SCOPE_WORDS = {
    "admin": "Everything: configuration, members, adjustments, gift cards, webhooks, reports.",
    "storefront": "What a shop's backend needs: order events, members, redemptions, "
    "reward-code checks, referral claims, gift card checkout, widget tokens.",
    "reports": "Reading reports, nothing else.",
}


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class KeyForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])
    name = StringField(
        "Name",
        validators=[DataRequired(message="Name the key: who or what uses it."),
                    Length(max=128)],
        description="Who or what uses it, e.g. “Shopify backend” — to tell keys apart.",
        render_kw={"maxlength": 128, "autocomplete": "off"},
    )  # fmt: skip
    scopes = CheckboxesField(
        "Scopes",
        choices=[SelectChoice(scope, scope) for scope in SCOPES],
        validators=[DataRequired(message="Pick at least one scope.")],
    )


class RevokeForm(FlaskForm):
    pass


def _tz():
    return display.zone(get_program(db.session()).timezone)


def _key_or_404(key_id: int) -> ApiKey:
    key = db.session.get(ApiKey, key_id)
    if key is None:
        abort(404)
    return key


@bp.get("")
@requires(PERMISSION)
def index():
    return render_template(
        "console/keys/index.html", keys=list_api_keys(db.session()), tz=_tz(), display=display
    )


def _form_page(form: KeyForm, status_code: int = 200):
    return render_template("console/keys/new.html", form=form, scope_words=SCOPE_WORDS), status_code


@bp.get("/new")
@requires(PERMISSION)
def new():
    return _form_page(KeyForm())


@bp.post("/new")
@requires(PERMISSION)
def create():
    form = KeyForm()
    if not form.validate_on_submit():
        return _form_page(form, 422)
    location = url_for(".index")
    done = once.already_done(db.session(), form.submission.data)
    if done is not None or not once.claim(db.session(), form.submission.data, location, "key"):
        flash("That key was already created; it was shown then, once.", "info")
        return redirect(done or location, 303)
    row, key = create_api_key(db.session(), form.name.data.strip(), form.scopes.data)  # audited
    response = current_app.make_response(
        render_template("console/keys/created.html", row=row, key=key)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<int32:key_id>/revoke")
@requires(PERMISSION)
def revoke_form(key_id):
    key = _key_or_404(key_id)
    if key.revoked_at is not None:
        flash(f"“{key.name}” is revoked already.", "info")
        return redirect(url_for(".index"), 303)
    return render_template("console/keys/revoke.html", key=key, form=RevokeForm())


@bp.post("/<int32:key_id>/revoke")
@requires(PERMISSION)
def revoke(key_id):
    key = _key_or_404(key_id)
    if not RevokeForm().validate_on_submit():
        abort(400)
    was_live = key.revoked_at is None
    revoke_api_key(db.session(), key_id)  # audited; a revoked key stays as it was
    if was_live:
        flash(f"“{key.name}” ({key.prefix}…) revoked: the API refuses it from now on.", "success")
    else:
        flash(f"“{key.name}” was revoked already.", "info")
    return redirect(url_for(".index"), 303)
