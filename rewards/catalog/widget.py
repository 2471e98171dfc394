"""What the shopper's widget (`/v1/me`) shows from the catalog, as the catalog's schemas dump
it: the core's widget routes send it as it is, documented by these schemas' names."""

from sqlalchemy.orm import Session

from loyalty.members.models import Member
from rewards.catalog import service
from rewards.catalog.schemas import MemberRewardSchema, RedemptionSchema


def member_rewards(session: Session, member: Member) -> list[dict]:
    """`GET /v1/me/rewards`' items (`MemberRewardSchema`)."""
    return MemberRewardSchema(many=True).dump(service.list_rewards_for_member(session, member))


def redeem(session: Session, member: Member, reward_id: int) -> dict:
    """`POST /v1/me/redemptions` (`RedemptionSchema`)."""
    return RedemptionSchema().dump(service.redeem(session, member, reward_id))


def member_redemption(session: Session, member: Member, redemption_id: int) -> dict:
    """`GET /v1/me/redemptions/{id}` (`RedemptionSchema`)."""
    return RedemptionSchema().dump(service.get_member_redemption(session, member, redemption_id))
