from flask import current_app, request
from flask.views import MethodView

from loyalty.addresses import NotAnAddress, client_key
from loyalty.auth import current_principal, require
from loyalty.extensions import Blueprint, db
from loyalty.program.service import get_program
from loyalty.schemas import EmptySchema
from loyalty.types import utcnow
from rewards.giftcards import purchases, service, throttle
from rewards.giftcards.payments import PaymentGateway, StripeGateway
from rewards.giftcards.schemas import (
    GiftCardAdjustmentSchema,
    GiftCardCaptureSchema,
    GiftCardCheckoutCreateSchema,
    GiftCardCheckoutSchema,
    GiftCardCodeSchema,
    GiftCardCreateSchema,
    GiftCardDetailSchema,
    GiftCardHoldCreateSchema,
    GiftCardHoldSchema,
    GiftCardListQuery,
    GiftCardLookupResultSchema,
    GiftCardPageSchema,
    GiftCardRefundSchema,
    GiftCardRevealedCodeSchema,
    GiftCardSchema,
    IssuedGiftCardSchema,
    StripeWebhookResultSchema,
)

blp = Blueprint("gift_cards", __name__, url_prefix="/v1/gift-cards", description="Gift cards")
holds_blp = Blueprint(
    "gift_card_holds", __name__, url_prefix="/v1/gift-card-holds", description="Gift card holds"
)
webhooks_blp = Blueprint(
    "stripe_webhooks", __name__, url_prefix="/v1/webhooks", description="Stripe webhooks"
)


def _guard(data: dict) -> throttle.CodeGuard:
    """The counts a request that takes a code runs against: per shopper (the `ip` the
    storefront forwards, else the caller's own address), per card and per API key."""
    address = data.get("ip") or request.remote_addr or "127.0.0.1"
    try:
        shopper = client_key(address)
    except NotAnAddress:  # a peer address the server gave us, in a form we do not read
        shopper = address
    return throttle.CodeGuard(
        current_app.config,
        data["code"],
        _secrets(),
        shopper=shopper,
        api_key=current_principal().id,
    )


def _secrets() -> list[str]:
    return current_app.config["SECRET_KEYS"]


def _actor() -> str:
    return current_principal().audit_name


def gateway() -> PaymentGateway:
    """Stripe, configured from the environment; tests may put another gateway in its place."""
    if "giftcards.gateway" not in current_app.extensions:
        config = current_app.config
        current_app.extensions["giftcards.gateway"] = StripeGateway(
            config["STRIPE_API_KEY"], config["STRIPE_WEBHOOK_SECRETS"], config["STRIPE_API_BASE"]
        )
    return current_app.extensions["giftcards.gateway"]


@blp.route("")
class GiftCards(MethodView):
    @require("admin")
    @blp.arguments(GiftCardCreateSchema)
    @blp.response(201, IssuedGiftCardSchema)
    def post(self, data):
        """Issue a card; the response is the only place its code ever appears."""
        now = utcnow()
        issued = service.issue_card_by_admin(
            db.session, get_program(db.session), secrets=_secrets(), actor=_actor(), now=now,
            **data,
        )  # fmt: skip
        return service.issued_view(issued, now)

    @require("admin")
    @blp.arguments(GiftCardListQuery, location="query")
    @blp.response(200, GiftCardPageSchema)
    def get(self, query):
        return service.list_cards(db.session, utcnow(), **query)


@blp.route("/<int:card_id>")
class GiftCardView(MethodView):
    @require("admin")
    @blp.response(200, GiftCardDetailSchema)
    def get(self, card_id):
        return service.card_detail(db.session, service.get_card(db.session, card_id), utcnow())


@blp.route("/<int:card_id>/disable")
class Disable(MethodView):
    @require("admin")
    @blp.arguments(EmptySchema)
    @blp.response(200, GiftCardSchema)
    def post(self, _data, card_id):
        return service.disable(db.session, card_id, utcnow(), _actor())


@blp.route("/<int:card_id>/refunds")
class Refunds(MethodView):
    @require("admin")
    @blp.arguments(GiftCardRefundSchema)
    @blp.response(201, GiftCardSchema)
    def post(self, data, card_id):
        return service.refund(
            db.session, card_id, data["amount"], data["order_id"], utcnow(), _actor()
        )


@blp.route("/<int:card_id>/adjustments")
class Adjustments(MethodView):
    @require("admin")
    @blp.arguments(GiftCardAdjustmentSchema)
    @blp.response(201, GiftCardSchema)
    def post(self, data, card_id):
        """Correct a card's balance by a signed amount, with a reason: an `adjust` transaction.

        A debit is taken only from what can be spent now (never from money an active hold
        reserves): 422 `insufficient-funds` otherwise; a disabled or expired card is 409."""
        return service.adjust(
            db.session, card_id, data["amount"], data["reason"], utcnow(), _actor()
        )


@blp.route("/lookup")
class Lookup(MethodView):
    @require("storefront")
    @blp.arguments(GiftCardCodeSchema)
    @blp.response(200, GiftCardLookupResultSchema)
    def post(self, data):
        """Balance by code. Anything but a live card is the same 404, and counts as a failure."""
        return service.lookup(db.session, _guard(data), data["code"], _secrets(), utcnow())


@blp.route("/holds")
class Holds(MethodView):
    @require("storefront")
    @blp.arguments(GiftCardHoldCreateSchema)
    @blp.response(201, GiftCardHoldSchema)
    def post(self, data):
        """Reserve an amount on a card; its code is counted as a lookup's is."""
        return service.create_hold(
            db.session,
            guard=_guard(data),
            code_text=data["code"],
            amount=data["amount"],
            order_id=data["order_id"],
            expires_in=data.get("expires_in", service.DEFAULT_HOLD_SECONDS),
            secrets=_secrets(),
            now=utcnow(),
            actor=_actor(),
        )


@holds_blp.route("/<int:hold_id>/capture")
class Capture(MethodView):
    @require("storefront")
    @holds_blp.arguments(GiftCardCaptureSchema)
    @holds_blp.response(200, GiftCardHoldSchema)
    def post(self, data, hold_id):
        """Capture all of the hold, or `amount` of it; the rest goes back to the card."""
        return service.capture_hold(db.session, hold_id, data.get("amount"), utcnow(), _actor())


@holds_blp.route("/<int:hold_id>/void")
class Void(MethodView):
    @require("storefront")
    @holds_blp.arguments(EmptySchema)
    @holds_blp.response(200, GiftCardHoldSchema)
    def post(self, _data, hold_id):
        return service.void_hold(db.session, hold_id, utcnow(), _actor())


@blp.route("/checkout-sessions")
class CheckoutSessions(MethodView):
    @require("storefront")
    @blp.arguments(GiftCardCheckoutCreateSchema)
    @blp.response(201, GiftCardCheckoutSchema)
    def post(self, data):
        """Start a Stripe Checkout session selling a card; the card is issued when it is paid."""
        return purchases.start_checkout(db.session, gateway(), get_program(db.session), data)


@blp.route("/checkout-sessions/<string:session_id>/code")
class CheckoutCode(MethodView):
    @require("storefront")
    @blp.arguments(EmptySchema)
    @blp.response(200, GiftCardRevealedCodeSchema)
    def post(self, _data, session_id):
        """The bought card's code, once (409 before payment and after it was collected)."""
        return purchases.reveal_code(db.session, session_id, _secrets(), utcnow())


@webhooks_blp.route("/stripe")
class StripeWebhook(MethodView):
    @webhooks_blp.response(200, StripeWebhookResultSchema)
    def post(self):
        """Stripe-signed events; a paid gift card session issues its card exactly once."""
        payload = request.get_data()
        event = gateway().verify_webhook(payload, request.headers.get("Stripe-Signature"))
        return purchases.handle_stripe_event(
            db.session, get_program(db.session), event, _secrets(), utcnow()
        )
