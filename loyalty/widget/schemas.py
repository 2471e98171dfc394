from marshmallow import fields, validate

from loyalty.members.schemas import MemberSchema
from loyalty.schemas import (
    MAX_MONEY,
    MAX_POINTS,
    AwareDateTime,
    Id,
    MemberId,
    PositiveMoney,
    StrictSchema,
)


class WidgetTokenRequestSchema(StrictSchema):
    customer_id = MemberId(required=True)


class WidgetTokenSchema(StrictSchema):
    token = fields.String()
    expires_at = AwareDateTime()


class MeSchema(MemberSchema):
    currency = fields.String()


# The domains' own schemas, named (marshmallow's registry): the core imports no domain, and
# `create_app` wires them (`hooks.member_rewards`, `redeem_reward`, `member_referrals`...).
MY_REDEMPTION = "Redemption"  # rewards.catalog.schemas.RedemptionSchema
MY_CHECKOUT_QUOTE = "CheckoutQuote"  # rewards.catalog.schemas.CheckoutQuoteSchema
MY_REFERRALS = "MemberReferrals"  # referrals.schemas.MemberReferralsSchema
MY_REDEMPTIONS = "RedemptionPage"  # rewards.catalog.schemas.RedemptionPageSchema
GIFT_CARD_BALANCE = "GiftCardLookupResult"  # rewards.giftcards.schemas.GiftCardLookupResultSchema


class MyRewardsSchema(StrictSchema):
    """The live catalog for the token's member (`hooks.member_rewards`)."""

    items = fields.List(fields.Nested("MemberRewardSchema"))


class MyRedemptionRequestSchema(StrictSchema):
    reward_id = fields.Integer(required=True, strict=True, validate=validate.Range(1, 2**31 - 1))


class MyGiftCardLookupSchema(StrictSchema):
    """A gift card code typed by the shopper (no `ip`: the request comes from the shopper)."""

    code = Id(required=True)


class MyCheckoutDiscountRequestSchema(StrictSchema):
    points = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_POINTS))
    cart_subtotal = PositiveMoney(
        required=True,
        metadata={"description": "The cart's goods before discounts (minor units)."},
    )


class MyCheckoutQuoteQuery(StrictSchema):
    # a query string's number: not `strict`
    cart_subtotal = fields.Integer(required=True, validate=validate.Range(1, MAX_MONEY))
