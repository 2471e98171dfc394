from marshmallow import fields, validate

from loyalty.members.schemas import MemberSchema
from loyalty.schemas import AwareDateTime, MemberId, StrictSchema


class WidgetTokenRequestSchema(StrictSchema):
    customer_id = MemberId(required=True)


class WidgetTokenSchema(StrictSchema):
    token = fields.String()
    expires_at = AwareDateTime()


class MeSchema(MemberSchema):
    currency = fields.String()


class MyRewardsSchema(StrictSchema):
    # Each item is the rewards domain's catalog view with `affordable` and `redeemable`.
    items = fields.List(fields.Dict())


class MyRedemptionRequestSchema(StrictSchema):
    reward_id = fields.Integer(required=True, strict=True, validate=validate.Range(1, 2**31 - 1))
