from marshmallow import ValidationError, fields, validate, validates_schema

from loyalty.addresses import IPAddress
from loyalty.schemas import (
    MAX_POINTS,
    AwareDateTime,
    Id,
    Itself,
    MemberId,
    Money,
    PaginationQuery,
    PositiveMoney,
    StrictBoolean,
    StrictSchema,
    Text,
    Whole,
    page_schema,
)
from referrals.models import MISSING_IP_POLICIES, REWARDED, STATUSES

REWARD_KINDS = ("amount_off", "percent_off", "free_shipping", "free_product")


def _cap(**kwargs):
    return fields.Integer(strict=True, allow_none=True, validate=validate.Range(0, 1_000_000),
                          **kwargs)  # fmt: skip


class FriendRewardSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(REWARD_KINDS))
    amount = PositiveMoney()
    percent = fields.Integer(strict=True, validate=validate.Range(1, 100))
    sku = Id()
    min_order = Money(load_default=0)
    valid_days = fields.Integer(strict=True, load_default=30, validate=validate.Range(1, 3650))

    @validates_schema
    def _fields_of_kind(self, data, **_kwargs):
        needed = {"amount_off": "amount", "percent_off": "percent", "free_product": "sku"}
        need = needed.get(data["kind"])
        if need and need not in data:
            raise ValidationError(f"Required for {data['kind']}.", need)
        for name in ("amount", "percent", "sku"):
            if name in data and name != need:
                raise ValidationError(f"Not used by {data['kind']}.", name)


class ReferrerRewardSchema(StrictSchema):
    points = fields.Integer(strict=True, validate=validate.Range(1, MAX_POINTS))
    reward_id = fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1))

    @validates_schema
    def _one_of(self, data, **_kwargs):
        if ("points" in data) == ("reward_id" in data):
            raise ValidationError("Give either `points` or `reward_id`.", "points")


class ReferralProgramSchema(StrictSchema):
    enabled = StrictBoolean(required=True)
    landing_url = fields.Url(
        required=True, allow_none=True, schemes={"http", "https"}, require_tld=False,
        validate=validate.Length(max=2000),
    )  # fmt: skip
    friend_reward = Whole(FriendRewardSchema, required=True)
    referrer_reward = Whole(ReferrerRewardSchema, required=True)
    max_conversions_per_referrer_30d = _cap(required=True)
    max_claims_per_ip_7d = _cap(required=True)
    attribution_days = fields.Integer(strict=True, validate=validate.Range(1, 365))
    # Net eligible spend (minor units) a friend's first order needs to convert, and keep.
    min_order_amount = PositiveMoney()
    # Days the referrer's reward stays pending at least, whatever the program's pending_days.
    reward_hold_days = fields.Integer(strict=True, validate=validate.Range(1, 3650))
    # A new referral without the friend's IP is refused, or waits for review.
    missing_ip = fields.String(validate=validate.OneOf(MISSING_IP_POLICIES))


class ReferralProgramUpdateSchema(ReferralProgramSchema):
    """PUT takes the whole object; fields left out keep their value (null caps = no cap)."""

    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class ClaimSchema(StrictSchema):
    code = Id(required=True)
    email = fields.Email(required=True, validate=validate.Length(max=320))
    customer_id = MemberId()
    name = Text(200)
    ip = IPAddress()
    user_agent = Text(300)
    # The signed `click` parameter the share link put on the landing page URL, if forwarded.
    click = Text(500)


class ClaimResultSchema(StrictSchema):
    """A claimed `Referral`: the reasons for a review stay with the admin, the claimant
    learns only the status."""

    referral_id = fields.Integer(attribute="id")
    status = fields.String()
    friend_reward = fields.Dict(allow_none=True, metadata={"description": "The code as issued."})


class ReferralQuery(PaginationQuery):
    status = fields.String(validate=validate.OneOf([*STATUSES, REWARDED]))


class ApproveSchema(StrictSchema):
    note = Text(500)


class RejectSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class ReferralRewardSchema(StrictSchema):
    """A `service.ReferralReward`: the referrer's reward (`points`, or a catalog reward's
    `reward_id` and `code_id`, by `type`)."""

    state = fields.String(allow_none=True)
    matures_at = AwareDateTime(allow_none=True)
    type = fields.String(metadata={"enum": ["points", "reward"]})
    points = fields.Integer()
    reward_id = fields.Integer(allow_none=True)
    code_id = fields.Integer(allow_none=True)


def mask_email(email: str | None) -> str | None:
    """What a referrer sees of a friend's email: `a***@example.com`."""
    if not email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


class MaskedFriendSchema(StrictSchema):
    """The friend as their referrer sees them: the email masked (`a***@example.com`)."""

    email = fields.Function(
        lambda referral: mask_email(referral.friend_email),
        metadata={"type": ["string", "null"]},
    )
    customer_id = fields.Function(lambda _referral: None, metadata={"type": "null"})


class FriendSchema(StrictSchema):
    """The friend as an admin (or the friend's own export) sees them."""

    email = fields.String(attribute="friend_email", allow_none=True)
    customer_id = fields.String(attribute="friend_customer_id", allow_none=True)
    name = fields.String(attribute="friend_name", allow_none=True)


class ReferralSchema(StrictSchema):
    """A `service.ReferralView`, as its referrer sees it."""

    id = fields.Integer()
    code = fields.String()
    status = fields.String()
    source = fields.String()
    friend = Itself(MaskedFriendSchema)
    order_id = fields.String(allow_none=True)
    converted_at = AwareDateTime(allow_none=True)
    reward = fields.Nested(ReferralRewardSchema, allow_none=True)
    created_at = AwareDateTime()


class FriendReferralSchema(ReferralSchema):
    """A referral naming the member as its friend, in that member's export."""

    friend = Itself(FriendSchema)
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    friend_reward = fields.Dict(allow_none=True, metadata={"description": "The code as issued."})


class AdminReferralSchema(FriendReferralSchema):
    """A `service.ReferralView`, as an admin sees it."""

    referrer_id = fields.String(allow_none=True, metadata={"description": "Customer id."})
    click_id = fields.Integer(allow_none=True)
    flags = fields.List(fields.String())
    reason = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = AwareDateTime(allow_none=True)


ReferralPageSchema = page_schema(AdminReferralSchema, "ReferralPage")


class MemberReferralsSchema(StrictSchema):
    """A `service.ReferrerStats`."""

    items = fields.List(fields.Nested(ReferralSchema))
    next_cursor = fields.String(allow_none=True)
    code = fields.String()
    url = fields.String()
    clicks = fields.Integer()
    claims = fields.Integer()
    conversions = fields.Integer()
    rewards_pending = fields.Integer()
    rewards_earned = fields.Integer()
    points_pending = fields.Integer()
    points_earned = fields.Integer()
