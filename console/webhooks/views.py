"""Webhooks: the endpoints, an endpoint's deliveries, and what an admin does with them.

Every change goes through the service of its API route, audited as the signed-in admin:
creating (`POST /v1/webhook-endpoints`), rotating the secret (`.../rotate-secret`), disabling
and enabling (`.../disable`, `.../enable`) and sending a failed delivery again
(`POST /v1/webhook-deliveries/{id}/retry`). A signing secret is shown once, on the page that
answers the creation or the rotation (never stored in the clear, never in a redirect): sent
again, the form finds its submission already done and shows where it went, without a secret.
"""

from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import BooleanField, SelectMultipleField, URLField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from console import display, once
from console.auth import requires
from console.forms import show_error
from loyalty.errors import DomainError, NotFound, ValidationFailed
from loyalty.extensions import db
from loyalty.program.service import get_program
from loyalty.types import utcnow
from loyalty.webhooks import service
from loyalty.webhooks.models import EVENT_TYPES, WebhookDelivery, delivery_status, endpoint_status
from loyalty.webhooks.schemas import MAX_URL, EndpointCreateSchema

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

PERMISSION = "webhooks.manage"
DELIVERIES_PAGE = 25
HEALTH_WINDOW = timedelta(hours=24)


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class EndpointForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])
    url = URLField(
        "URL",
        validators=[DataRequired(message="Enter the URL that receives the events.")],
        description="Where each event is POSTed, signed per Standard Webhooks, e.g. "
        "https://shop.example.com/hooks/loyalty.",
        render_kw={"maxlength": MAX_URL, "autocomplete": "off", "spellcheck": "false"},
    )
    events = CheckboxesField(
        "Events",
        choices=[SelectChoice(event_type, event_type) for event_type in EVENT_TYPES],
        validators=[DataRequired(message="Pick at least one event.")],
    )


class RotateForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])
    at_once = BooleanField(
        "Stop signing with the old secret at once",
        description="Tick it if the old secret leaked. Otherwise it keeps signing beside the "
        "new one for a while, so your receiver can switch without refusing a delivery.",
    )


class ActionForm(FlaskForm):
    """Disable, enable, send again: a button and the CSRF token (each is idempotent)."""


def _tz():
    return display.zone(get_program(db.session()).timezone)


def _endpoint_or_404(endpoint_id: int):
    try:
        return service.get_endpoint(db.session(), endpoint_id)
    except NotFound:
        abort(404)


def _overlap_words(seconds: int) -> str:
    hours = seconds / 3600
    if hours >= 1 and hours == int(hours):
        return "1 hour" if hours == 1 else f"{int(hours)} hours"
    return f"{seconds} seconds"


# --- the endpoints ----------------------------------------------------------------------------


@bp.get("")
@requires(PERMISSION)
def index():
    endpoints = service.list_endpoints(db.session())
    health = service.delivery_health(db.session(), utcnow() - HEALTH_WINDOW)
    return render_template(
        "console/webhooks/index.html",
        endpoints=endpoints,
        health=health,
        empty=service.Health(),
        status=endpoint_status,
        tz=_tz(),
        display=display,
    )


def _form_page(form: EndpointForm, status_code: int = 200):
    return render_template("console/webhooks/new.html", form=form), status_code


@bp.get("/new")
@requires(PERMISSION)
def new():
    return _form_page(EndpointForm())


@bp.post("/new")
@requires(PERMISSION)
def create():
    form = EndpointForm()
    if not form.validate_on_submit():
        return _form_page(form, 422)
    location = url_for(".index")
    done = once.already_done(db.session(), form.submission.data)
    if done is not None or not once.claim(db.session(), form.submission.data, location, "hook"):
        flash("That endpoint was already created; its secret was shown then, once.", "info")
        return redirect(done or location, 303)
    try:
        body = {"url": form.url.data.strip(), "events": form.events.data}
        data = EndpointCreateSchema().load(body)
        endpoint, created = service.create_endpoint(  # audited
            db.session(), data["url"], data["events"], current_app.config["SECRET_KEYS"]
        )
    except (DomainError, ValidationError) as error:
        show_error(form, error)
        return _form_page(form, getattr(error, "status", 422))
    return _secret_page(endpoint, created.secret, created=True)


def _secret_page(endpoint, secret: str, *, created: bool, overlap_until=None):
    """The one page that shows a signing secret; never cached, never shown again."""
    response = current_app.make_response(
        render_template(
            "console/webhooks/secret.html",
            endpoint=endpoint,
            secret=secret,
            created=created,
            overlap_until=overlap_until,
            tz=_tz(),
            display=display,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- one endpoint -----------------------------------------------------------------------------


@bp.get("/<int32:endpoint_id>")
@requires(PERMISSION)
def show(endpoint_id):
    endpoint = _endpoint_or_404(endpoint_id)
    failed_only = request.args.get("status") == "failed"
    cursor = request.args.get("cursor") or None
    try:
        page = service.list_deliveries(
            db.session(), endpoint_id, DELIVERIES_PAGE, cursor, "failed" if failed_only else None
        )
    except ValidationFailed:  # a cursor this page never made
        abort(404)
    return render_template(
        "console/webhooks/show.html",
        endpoint=endpoint,
        status=endpoint_status(endpoint),
        rows=page.items,
        cursor=cursor,
        next_cursor=page.next_cursor,
        failed_only=failed_only,
        delivery_status=delivery_status,
        action_form=ActionForm(),
        now=utcnow(),
        tz=_tz(),
        display=display,
    )


def _rotate_page(endpoint, form: RotateForm, status_code: int = 200):
    overlap = current_app.config["WEBHOOK_SECRET_OVERLAP_SECONDS"]
    return render_template(
        "console/webhooks/rotate.html",
        endpoint=endpoint,
        form=form,
        overlap=_overlap_words(overlap) if overlap > 0 else None,
    ), status_code


@bp.get("/<int32:endpoint_id>/rotate")
@requires(PERMISSION)
def rotate_form(endpoint_id):
    return _rotate_page(_endpoint_or_404(endpoint_id), RotateForm())


@bp.post("/<int32:endpoint_id>/rotate")
@requires(PERMISSION)
def rotate(endpoint_id):
    endpoint = _endpoint_or_404(endpoint_id)
    form = RotateForm()
    if not form.validate_on_submit():
        return _rotate_page(endpoint, form, 422)
    location = url_for(".show", endpoint_id=endpoint_id)
    done = once.already_done(db.session(), form.submission.data)
    if done is not None or not once.claim(db.session(), form.submission.data, location, "rotate"):
        flash("That secret was already rotated; the new one was shown then, once.", "info")
        return redirect(done or location, 303)
    config = current_app.config
    overlap = 0 if form.at_once.data else config["WEBHOOK_SECRET_OVERLAP_SECONDS"]
    endpoint, rotated = service.rotate_secret(  # audited
        db.session(), endpoint_id, config["SECRET_KEYS"], utcnow(), timedelta(seconds=overlap)
    )
    return _secret_page(
        endpoint, rotated.secret, created=False, overlap_until=rotated.previous_secret_expires_at
    )


@bp.post("/<int32:endpoint_id>/disable")
@requires(PERMISSION)
def disable(endpoint_id):
    _endpoint_or_404(endpoint_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    service.disable_endpoint(db.session(), endpoint_id, utcnow())  # audited
    flash("Endpoint disabled: nothing is sent to it until you enable it again.", "success")
    return redirect(url_for(".show", endpoint_id=endpoint_id), 303)


@bp.post("/<int32:endpoint_id>/enable")
@requires(PERMISSION)
def enable(endpoint_id):
    _endpoint_or_404(endpoint_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    service.enable_endpoint(db.session(), endpoint_id)  # audited
    flash("Endpoint enabled: new events are sent to it, and those that waited.", "success")
    return redirect(url_for(".show", endpoint_id=endpoint_id), 303)


@bp.post("/<int32:endpoint_id>/deliveries/<int:delivery_id>/retry")
@requires(PERMISSION)
def retry(endpoint_id, delivery_id):
    _endpoint_or_404(endpoint_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint_id:
        abort(404)
    back = url_for(".show", endpoint_id=endpoint_id, status=request.args.get("status") or None)
    try:
        service.retry_delivery(db.session(), delivery_id, utcnow())  # audited
    except DomainError as error:
        flash(error.detail, "error")
        return redirect(back, 303)
    flash(
        f"Delivery {delivery_id} will be sent again by the next delivery run "
        "(same message, same webhook-id).",
        "success",
    )
    return redirect(back, 303)
