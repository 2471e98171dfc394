"""Widget HTTP layer: token minting (server side), `/v1/me` (browser side), CORS, `/widget.js`.

`/v1/me` answers browsers on the program's `widget_origins` only (CORS, checked per request);
`/v1/widget-tokens` takes an API key and so is never called from a browser: no CORS there.
"""

from pathlib import Path

from flask import Blueprint as FlaskBlueprint
from flask import (
    Response,
    current_app,
    jsonify,
    make_response,
    render_template,
    request,
)
from flask.views import MethodView

from loyalty.auth import current_member, current_principal, require
from loyalty.cache_control import own_cache_control
from loyalty.errors import NotFound
from loyalty.extensions import Blueprint, db, lazy_session
from loyalty.hooks import hooks
from loyalty.members import service as members
from loyalty.members.schemas import EntryPageSchema
from loyalty.ratelimit import limit
from loyalty.schemas import EmptySchema, PaginationQuery
from loyalty.seed import DEMO_CUSTOMER
from loyalty.widget import service
from loyalty.widget.schemas import (
    GIFT_CARD_BALANCE,
    MY_CHECKOUT_QUOTE,
    MY_REDEMPTION,
    MY_REDEMPTIONS,
    MY_REFERRALS,
    MeSchema,
    MyCheckoutDiscountRequestSchema,
    MyCheckoutQuoteQuery,
    MyGiftCardLookupSchema,
    MyRedemptionRequestSchema,
    MyRewardsSchema,
    WidgetTokenRequestSchema,
    WidgetTokenSchema,
)

tokens = Blueprint(
    "widget-tokens", __name__, url_prefix="/v1/widget-tokens", description="Widget tokens"
)
me = Blueprint("me", __name__, url_prefix="/v1/me", description="The shopper's own view (widget)")
pages = FlaskBlueprint("widget", __name__, template_folder="templates")
STATIC = Path(__file__).parent / "static"

CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
CORS_EXPOSE_HEADERS = "Retry-After, Idempotent-Replayed"
CORS_MAX_AGE = "600"


def _per_member() -> str:
    principal = current_principal()
    return f"widget:{principal.member_id}:{principal.customer_id}"


# Inside `@require(widget=True)`, keyed by the token's member: one allowance covers every /v1/me
# read; redeeming has its own, smaller one.
read_limit = limit("widget-read", _per_member, config_key="WIDGET_RATE_LIMIT")
redeem_limit = limit("widget-redeem", _per_member, config_key="WIDGET_REDEEM_RATE_LIMIT")


@tokens.route("")
class WidgetTokens(MethodView):
    @require("storefront")
    @tokens.arguments(WidgetTokenRequestSchema)
    @tokens.response(201, WidgetTokenSchema)
    def post(self, data):
        """Mint a short-lived token for one member, to hand to that shopper's browser."""
        return service.mint_token(db.session, data["customer_id"])


@me.route("")
class Me(MethodView):
    @require(widget=True, member_checked_by_view=True, config_checked_by_view=True)
    @read_limit
    @me.response(200, MeSchema)
    def get(self):
        """The token's member: points, tier, progress to the next tier, referral link."""
        # The fast path: what MeSchema dumps, written by hand (tests hold them equal).
        return jsonify(service.me(db.session, hooks(), current_principal()))


@me.route("/activity")
class MyActivity(MethodView):
    @require(widget=True)
    @read_limit
    @me.arguments(PaginationQuery, location="query")
    @me.response(200, EntryPageSchema)
    def get(self, query):
        """The token's member's ledger, newest first."""
        return members.activity(db.session, current_member(), query["limit"], query["cursor"])


@me.route("/rewards")
class MyRewards(MethodView):
    @require(widget=True)
    @read_limit
    @me.response(200, MyRewardsSchema)
    def get(self):
        """The live catalog for the token's member, each with `affordable` and `redeemable`."""
        return jsonify(service.rewards(db.session, hooks(), current_member()))


@me.route("/redemptions")
class MyRedemptions(MethodView):
    @require(widget=True)
    @read_limit
    @me.arguments(PaginationQuery, location="query")
    @me.response(200, MY_REDEMPTIONS)
    def get(self, query):
        """The token's member's reward codes, newest first, each with its `status` (issued,
        used, canceled, expired) and `expires_at`."""
        return jsonify(
            service.redemptions(
                db.session, hooks(), current_member(), query["limit"], query["cursor"]
            )
        )

    @require(widget=True)
    @redeem_limit
    @me.arguments(MyRedemptionRequestSchema)
    @me.response(201, MY_REDEMPTION)
    def post(self, data):
        """Spend the token's member's points on a reward; the answer carries the reward `code`."""
        redemption = service.redeem(db.session, hooks(), current_member(), data["reward_id"])
        return jsonify(redemption), 201


@me.route("/redemptions/<int:redemption_id>")
class MyRedemption(MethodView):
    @require(widget=True)
    @read_limit
    @me.response(200, MY_REDEMPTION)
    def get(self, redemption_id):
        """One of the token's member's redemptions: the widget polls it while the store's
        discount code is `pending` (its `platform` field), showing the code once `created`."""
        return jsonify(service.redemption(db.session, hooks(), current_member(), redemption_id))


@me.route("/redemptions/<int:redemption_id>/cancel")
class CancelMyRedemption(MethodView):
    @require(widget=True)
    @redeem_limit
    @me.arguments(EmptySchema)
    @me.response(200, MY_REDEMPTION)
    def post(self, _data, redemption_id):
        """Cancel one of the token's member's unused codes bought with points: the points
        return. Another member's code is a 404; a used, canceled or expired one a 409."""
        return jsonify(
            service.cancel_redemption(db.session, hooks(), current_member(), redemption_id)
        )


@me.route("/gift-card-lookup")
class MyGiftCardLookup(MethodView):
    @require(widget=True)
    @read_limit
    @me.arguments(MyGiftCardLookupSchema)
    @me.response(200, GIFT_CARD_BALANCE)
    def post(self, data):
        """A gift card's balance by code, as `POST /v1/gift-cards/lookup` answers it: counted
        per shopper (the request's address), per card and across every widget, with the same
        lockout after codes that are not live cards; any of those is the same 404."""
        address = request.remote_addr or "127.0.0.1"
        return jsonify(service.gift_card_balance(db.session, hooks(), data["code"], address))


@me.route("/checkout-points")
class MyCheckoutPoints(MethodView):
    @require(widget=True)
    @read_limit
    @me.arguments(MyCheckoutQuoteQuery, location="query")
    @me.response(200, MY_CHECKOUT_QUOTE)
    def get(self, query):
        """Points at checkout for the token's member: the program's terms and the most points
        (`max_points`) one code may take off a cart of `cart_subtotal` now (the slider's end)."""
        return jsonify(
            service.checkout_quote(db.session, hooks(), current_member(), query["cart_subtotal"])
        )


@me.route("/checkout-discounts")
class MyCheckoutDiscounts(MethodView):
    @require(widget=True)
    @redeem_limit
    @me.arguments(MyCheckoutDiscountRequestSchema)
    @me.response(201, MY_REDEMPTION)
    def post(self, data):
        """Spend the token's member's points on money off this cart: a one-time `amount_off`
        code worth floor(points × value_per_point), returned to points if canceled or unused."""
        discount = service.checkout_discount(
            db.session, hooks(), current_member(), data["points"], data["cart_subtotal"]
        )
        return jsonify(discount), 201


@me.route("/referrals")
class MyReferrals(MethodView):
    @require(widget=True)
    @read_limit
    @me.arguments(PaginationQuery, location="query")
    @me.response(200, MY_REFERRALS)
    def get(self, query):
        """The token's member's share link and referral stats (friends' emails masked)."""
        return jsonify(
            service.referrals(
                db.session, hooks(), current_member(), query["limit"], query["cursor"]
            )
        )


# --- CORS for /v1/me: the program's widget origins, read per request -------------------------


@me.before_request
def _preflight():
    if request.method != "OPTIONS":
        return None
    response = make_response("", 204)
    if _allow_origin(response):
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response


@me.after_request
def _cors(response: Response) -> Response:
    if request.method != "OPTIONS" and _allow_origin(response):
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    return response


def _allow_origin(response: Response) -> bool:
    if "Vary" in response.headers:
        response.vary.add("Origin")
    else:  # the usual case, without parsing a Vary header that is not there
        response.headers.add("Vary", "Origin")
    origin = request.headers.get("Origin")
    if not service.origin_allowed(lazy_session(), origin):
        return False
    response.headers["Access-Control-Allow-Origin"] = origin
    return True


# --- The script and the demo storefront --------------------------------------------------------


@pages.get("/widget.js")
@own_cache_control
def widget_js():
    response = Response((STATIC / "widget.js").read_bytes(), mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = 300
    response.add_etag()
    return response.make_conditional(request)


def _demo_only():
    if current_app.config["LOYALTY_ENV"] == "production":
        raise NotFound()


# The demo's languages (the widget's shipped ones) and writing directions, by query parameter:
# /demo?lang=de, /demo/cart?lang=fr&dir=rtl.
DEMO_LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español"}
DEMO_CART = [("Rose Glow Serum", 2, 4800), ("Silk Lipstick", 1, 2600)]


def _demo_page(template, **context):
    """A demo storefront page with the widget for the seeded shopper, in `?lang=` (default
    English) and `?dir=` (`ltr` or `rtl`)."""
    _demo_only()
    try:
        minted = service.mint_token(db.session, DEMO_CUSTOMER)
    except NotFound:
        return render_template("widget/demo_missing.html"), 404
    api = request.url_root.rstrip("/")  # this server, whatever host and port it was opened on
    lang = request.args.get("lang", "en")
    return render_template(
        template,
        token=minted["token"],
        api=api,
        lang=lang if lang in DEMO_LANGUAGES else "en",
        dir="rtl" if request.args.get("dir") == "rtl" else "ltr",
        languages=DEMO_LANGUAGES,
        **context,
    )


@pages.get("/demo")
def demo():
    """A pretend storefront embedding the widget for the seeded member (not in production)."""
    return _demo_page("widget/demo.html")


@pages.get("/demo/cart")
def demo_cart():
    """The pretend storefront's cart: the widget with its points-at-checkout slider."""
    lines = [
        {"name": name, "quantity": quantity, "total": quantity * price}
        for name, quantity, price in DEMO_CART
    ]
    return _demo_page(
        "widget/demo_cart.html", lines=lines, subtotal=sum(line["total"] for line in lines)
    )


@pages.post("/demo/widget-token")
def demo_token():
    """What a storefront's own server does when the widget's token expires: mint a new one."""
    _demo_only()
    minted = service.mint_token(db.session, DEMO_CUSTOMER)
    return WidgetTokenSchema().dump(minted)
