from flask.views import MethodView

from loyalty.auth import require
from loyalty.extensions import Blueprint, db
from loyalty.members.service import get_member
from loyalty.schemas import EmptySchema, PaginationQuery
from rewards.catalog import service
from rewards.catalog.schemas import (
    CheckoutDiscountRequestSchema,
    CheckoutQuoteQuery,
    CheckoutQuoteSchema,
    RedeemSchema,
    RedemptionPageSchema,
    RedemptionSchema,
    RewardCreateSchema,
    RewardListQuery,
    RewardPageSchema,
    RewardSchema,
    RewardSettingsSchema,
    RewardUpdateSchema,
    ValidateCodeSchema,
    ValidationResultSchema,
)

blp = Blueprint("rewards", __name__, url_prefix="/v1", description="Rewards and reward codes")


@blp.route("/rewards")
class Rewards(MethodView):
    @require("admin")
    @blp.arguments(RewardListQuery, location="query")
    @blp.response(200, RewardPageSchema)
    def get(self, query):
        return service.list_rewards(db.session, query["limit"], query["cursor"], query["active"])

    @require("admin")
    @blp.arguments(RewardCreateSchema)
    @blp.response(201, RewardSchema)
    def post(self, data):
        reward = service.create_reward(db.session, data)
        return service.reward_view(db.session, reward)


@blp.route("/rewards/<int32:reward_id>")
class RewardItem(MethodView):
    @require("admin")
    @blp.response(200, RewardSchema)
    def get(self, reward_id):
        return service.reward_view(db.session, service.get_reward(db.session, reward_id))

    @require("admin")
    @blp.arguments(RewardUpdateSchema)
    @blp.response(200, RewardSchema)
    def patch(self, changes, reward_id):
        reward = service.update_reward(db.session, reward_id, changes)
        return service.reward_view(db.session, reward)

    @require("admin")
    @blp.response(204)
    def delete(self, reward_id):
        service.delete_reward(db.session, reward_id)


@blp.route("/members/<string:customer_id>/redemptions")
class Redemptions(MethodView):
    @require("storefront")
    @blp.arguments(PaginationQuery, location="query")
    @blp.response(200, RedemptionPageSchema)
    def get(self, query, customer_id):
        member = get_member(db.session, customer_id)
        return service.list_redemptions(db.session, member, query["limit"], query["cursor"])

    @require("storefront")
    @blp.arguments(RedeemSchema)
    @blp.response(201, RedemptionSchema)
    def post(self, data, customer_id):
        member = get_member(db.session, customer_id)
        return service.redeem(db.session, member, data["reward_id"])


@blp.route("/members/<string:customer_id>/checkout-points")
class CheckoutPoints(MethodView):
    @require("storefront")
    @blp.arguments(CheckoutQuoteQuery, location="query")
    @blp.response(200, CheckoutQuoteSchema)
    def get(self, query, customer_id):
        """The program's points-at-checkout terms and the most points (`max_points`) one code
        may take off a cart of `cart_subtotal` now."""
        member = get_member(db.session, customer_id)
        return service.checkout_quote(db.session, member, query["cart_subtotal"])


@blp.route("/members/<string:customer_id>/checkout-discounts")
class CheckoutDiscounts(MethodView):
    @require("storefront")
    @blp.arguments(CheckoutDiscountRequestSchema)
    @blp.response(201, RedemptionSchema)
    def post(self, data, customer_id):
        """Spend points on money off this cart: a one-time `amount_off` code worth
        floor(points × value_per_point) minor units, within the program's limits; its points
        return when it is canceled or expires unused."""
        member = get_member(db.session, customer_id)
        return service.create_checkout_discount(
            db.session, member, data["points"], data["cart_subtotal"]
        )


@blp.route("/redemptions/<int:redemption_id>/cancel")
class CancelRedemption(MethodView):
    @require("storefront")
    @blp.arguments(EmptySchema)
    @blp.response(200, RedemptionSchema)
    def post(self, _data, redemption_id):
        return service.cancel_redemption(db.session, redemption_id)


@blp.route("/reward-codes/validate")
class ValidateCode(MethodView):
    @require("storefront")
    @blp.arguments(ValidateCodeSchema)
    @blp.response(200, ValidationResultSchema)
    def post(self, data):
        return service.validate_code(
            db.session,
            data["code"],
            data["customer_id"],
            data["subtotal"],
            email=data["email"],
            order_id=data["order_id"],
        )


@blp.route("/reward-settings")
class Settings(MethodView):
    @require("admin")
    @blp.response(200, RewardSettingsSchema)
    def get(self):
        return service.get_settings(db.session)

    @require("admin")
    @blp.arguments(RewardSettingsSchema)
    @blp.response(200, RewardSettingsSchema)
    def put(self, changes):
        return service.update_settings(db.session, changes)
