"""Gift cards: search and list, the card page, issuing, disabling, adjusting.

Every figure comes from the services the API serves (`GET /v1/gift-cards` is the list,
`GET /v1/gift-cards/{id}` the card and its transactions), and every change goes through the
same service and audit record as its API route: issuing as `POST /v1/gift-cards`, disabling
as `POST /v1/gift-cards/{id}/disable`, adjusting as `POST /v1/gift-cards/{id}/adjustments`.

A card's code exists only in the answer to the request that issued it: the result page is
that POST's answer (`Cache-Control: no-store`), the code is in no URL, session or flash
message, and the form's submission key (console.once) makes a second submit of the same form
lead to the card page, without issuing again and without the code.
"""

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from marshmallow import ValidationError

from console import display, once
from console.auth import current_admin, requires
from console.forms import show_error
from console.giftcards import queries, words
from console.giftcards.forms import (
    AdjustForm,
    DisableForm,
    IssueForm,
    adjustment_body,
    issue_body,
)
from console.htmx import is_htmx
from console.members.queries import admin_emails
from loyalty.errors import DomainError, InsufficientFunds, NotFound, ValidationFailed
from loyalty.extensions import db
from loyalty.program.service import get_program
from loyalty.transaction import discard
from loyalty.types import utcnow
from rewards.giftcards import codes, service
from rewards.giftcards.models import CARD_STATUSES, SOURCES

bp = Blueprint("giftcards", __name__, url_prefix="/gift-cards")

PAGE_SIZE = 50
HOLDS_SHOWN = 50
TRANSACTIONS_SHOWN = 100


def _program_context() -> dict:
    program = get_program(db.session())
    return {
        "program": program,
        "tz": display.zone(program.timezone),
        "display": display,
        "words": words,
        "now": utcnow(),
    }


# --- search and list -------------------------------------------------------------------------


@bp.get("")
@requires("giftcards.view")
def index():
    text = request.args.get("q", "").strip()[:32]
    status = request.args.get("status") or None
    source = request.args.get("source") or None
    status = status if status in CARD_STATUSES else None
    source = source if source in SOURCES else None
    cursor = request.args.get("cursor") or None
    now = utcnow()
    try:
        page = service.list_cards(
            db.session(), now, limit=PAGE_SIZE, cursor=cursor, status=status, source=source,
            last4_or_id=text or None,
        )  # fmt: skip
    except ValidationFailed:  # a cursor this list never made
        abort(404)
    if text and len(page.items) == 1 and not cursor and not is_htmx():
        return redirect(url_for(".show", card_id=page.items[0].id), 303)
    filters = {"q": text or None, "status": status, "source": source}
    context = {
        **_program_context(),
        "q": text,
        "status": status,
        "source": source,
        "filters": filters,
        "filtered": any(filters.values()),
        "cards": page.items,
        "cursor": cursor,
        "next_cursor": page.next_cursor,
        "statuses": CARD_STATUSES,
        "sources": SOURCES,
    }
    if is_htmx():
        return render_template("console/giftcards/_results.html", **context)
    return render_template("console/giftcards/index.html", **context)


# --- the card page ---------------------------------------------------------------------------


def _card_or_404(card_id: int):
    try:
        return service.get_card(db.session(), card_id)
    except NotFound:
        abort(404)


def _card_page(card_id: int, status: int = 200, template: str = "show", **forms):
    card = _card_or_404(card_id)
    context = _program_context()
    detail = service.card_detail(db.session(), card, context["now"])
    transactions = list(reversed(detail.transactions))[:TRANSACTIONS_SHOWN]
    admins = admin_emails(db.session(), [t.actor for t in transactions])
    context |= {
        "card": detail,
        "transactions": transactions,
        "transaction_count": len(detail.transactions),
        "holds": queries.holds(db.session(), card.id, HOLDS_SHOWN),
        "purchase": queries.purchase(db.session(), card.id) if card.source == "stripe" else None,
        "admins": admins,
        "live": service.is_live(card, context["now"]),
        **forms,
    }
    return render_template(f"console/giftcards/{template}.html", **context), status


@bp.get("/<int:card_id>")
@requires("giftcards.view")
def show(card_id):
    return _card_page(card_id)


# --- issuing ---------------------------------------------------------------------------------


def _issue_page(form: IssueForm, status: int = 200):
    return render_template("console/giftcards/issue.html", form=form, **_program_context()), status


@bp.get("/new")
@requires("giftcards.issue")
def issue_form():
    form = IssueForm()
    form.currency.data = get_program(db.session()).currency
    return _issue_page(form)


@bp.post("/new")
@requires("giftcards.issue")
def issue():
    form = IssueForm()
    if not form.validate_on_submit():
        return _issue_page(form, 422)
    done = once.already_done(db.session(), form.submission.data)
    if done is not None:
        return _already_issued(done)
    program = get_program(db.session())
    now = utcnow()
    try:
        data = issue_body(form, display.zone(program.timezone))
        issued = service.issue_card_by_admin(  # audited
            db.session(), program, secrets=current_app.config["SECRET_KEYS"],
            actor=current_admin().audit_name, now=now, **data,
        )  # fmt: skip
    except (DomainError, ValidationError) as error:
        show_error(form, error)
        return _issue_page(form, getattr(error, "status", 422))
    location = url_for(".show", card_id=issued.card.id)
    if not once.claim(db.session(), form.submission.data, location, "issue"):
        # The same form, sent twice at once: the other request issued the card (and has
        # committed its key by now); this one's card is rolled back.
        discard()
        done = once.already_done(db.session(), form.submission.data)
        return _already_issued(done or url_for(".index"))
    page = render_template(
        "console/giftcards/issued.html",
        card=service.card_view(issued.card, now),
        code=codes.display(issued.code),
        **_program_context(),
    )
    response = make_response(page, 201)
    response.headers["Cache-Control"] = "no-store"
    return response


def _already_issued(location: str):
    flash(
        "That form was already sent: the card was issued once, and its code was shown only then.",
        "info",
    )
    return redirect(location, 303)


# --- adjusting and disabling -----------------------------------------------------------------


@bp.get("/<int:card_id>/adjust")
@requires("giftcards.manage")
def adjust_form(card_id):
    return _card_page(card_id, template="adjust", form=AdjustForm())


@bp.post("/<int:card_id>/adjust")
@requires("giftcards.manage")
def adjust(card_id):
    form = AdjustForm()
    if not form.validate_on_submit():
        return _card_page(card_id, 422, template="adjust", form=form)
    card = _card_or_404(card_id)
    location = url_for(".show", card_id=card_id)
    done = once.already_done(db.session(), form.submission.data)
    if done is not None or not once.claim(db.session(), form.submission.data, location, "adjust"):
        flash("That adjustment was already made.", "info")
        return redirect(done or location, 303)
    try:
        data = adjustment_body(form, card.currency)
        view = service.adjust(  # audited
            db.session(), card_id, data["amount"], data["reason"], utcnow(),
            current_admin().audit_name,
        )  # fmt: skip
    except InsufficientFunds as error:  # the API's refusal, its amounts as money
        available = display.money(error.extra["available"], card.currency)
        asked = display.money(-data["amount"], card.currency)
        form.amount.errors = [f"Only {available} can be taken away now; {asked} was asked."]
        return _card_page(card_id, error.status, template="adjust", form=form)
    except (DomainError, ValidationError) as error:
        show_error(form, error)
        return _card_page(card_id, getattr(error, "status", 422), template="adjust", form=form)
    change = display.money(data["amount"], view.currency)
    sign = "+" if data["amount"] > 0 else ""
    flash(
        f"{sign}{change}: {data['reason']}. Balance now "
        f"{display.money(view.balance, view.currency)}.",
        "success",
    )
    return redirect(location, 303)


@bp.get("/<int:card_id>/disable")
@requires("giftcards.manage")
def disable_form(card_id):
    return _card_page(card_id, template="disable", form=DisableForm())


@bp.post("/<int:card_id>/disable")
@requires("giftcards.manage")
def disable(card_id):
    form = DisableForm()
    if not form.validate_on_submit():
        return _card_page(card_id, 422, template="disable", form=form)
    _card_or_404(card_id)
    location = url_for(".show", card_id=card_id)
    done = once.already_done(db.session(), form.submission.data)
    if done is not None or not once.claim(db.session(), form.submission.data, location, "disable"):
        flash("That card was already disabled.", "info")
        return redirect(done or location, 303)
    view = service.disable(db.session(), card_id, utcnow(), current_admin().audit_name)
    flash(f"Gift card ending {view.last4} disabled: it can never be spent again.", "success")
    return redirect(location, 303)
