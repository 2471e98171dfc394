"""What the shopper's widget (`/v1/me/referrals`) shows from referrals, as `MemberReferralsSchema`
dumps it: the core's widget route sends it as it is, documented by that schema's name."""

from sqlalchemy.orm import Session

from loyalty.members.models import Member
from referrals import service
from referrals.schemas import MemberReferralsSchema


def member_referrals(session: Session, member: Member, limit: int, cursor: str | None) -> dict:
    """`GET /v1/me/referrals`: the member's link, referral stats and a page of referrals."""
    return MemberReferralsSchema().dump(service.member_stats(session, member, limit, cursor))
