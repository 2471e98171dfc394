"""What the shopper's widget (`/v1/me`) shows from the catalog, as the catalog's schemas dump
it: the core's widget routes send it as it is, documented by these schemas' names."""

from sqlalchemy.orm import Session

from loyalty.errors import Conflict, NotFound
from loyalty.members.models import Member
from rewards.catalog import service
from rewards.catalog.models import RewardCode
from rewards.catalog.schemas import (
    CheckoutQuoteSchema,
    MemberRewardSchema,
    RedemptionPageSchema,
    RedemptionSchema,
)


def member_rewards(session: Session, member: Member) -> list[dict]:
    """`GET /v1/me/rewards`' items (`MemberRewardSchema`)."""
    return MemberRewardSchema(many=True).dump(service.list_rewards_for_member(session, member))


def redeem(session: Session, member: Member, reward_id: int) -> dict:
    """`POST /v1/me/redemptions` (`RedemptionSchema`)."""
    return RedemptionSchema().dump(service.redeem(session, member, reward_id))


def member_redemption(session: Session, member: Member, redemption_id: int) -> dict:
    """`GET /v1/me/redemptions/{id}` (`RedemptionSchema`)."""
    return RedemptionSchema().dump(service.get_member_redemption(session, member, redemption_id))


def member_redemptions(session: Session, member: Member, limit: int, cursor: str | None) -> dict:
    """`GET /v1/me/redemptions` (`RedemptionPageSchema`): the member's codes, newest first."""
    return RedemptionPageSchema().dump(service.list_redemptions(session, member, limit, cursor))


def cancel_member_redemption(session: Session, member: Member, redemption_id: int) -> dict:
    """`POST /v1/me/redemptions/{id}/cancel` (`RedemptionSchema`): one of the member's own
    unused codes bought with points; a code given without points (a referral reward) stays,
    since canceling it would return nothing."""
    code = session.get(RewardCode, redemption_id)
    if code is None or code.member_id != member.id:
        raise NotFound(f"No redemption {redemption_id}.")
    if not code.points_spent:
        raise Conflict("Only a code bought with points can be canceled.", code_status=code.status)
    return RedemptionSchema().dump(service.cancel_redemption(session, code.id, member))


def checkout_quote(session: Session, member: Member, cart_subtotal: int) -> dict:
    """`GET /v1/me/checkout-points` (`CheckoutQuoteSchema`)."""
    return CheckoutQuoteSchema().dump(service.checkout_quote(session, member, cart_subtotal))


def checkout_discount(session: Session, member: Member, points: int, cart_subtotal: int) -> dict:
    """`POST /v1/me/checkout-discounts` (`RedemptionSchema`)."""
    made = service.create_checkout_discount(session, member, points, cart_subtotal)
    return RedemptionSchema().dump(made)
