"""Tiers: which tier a member holds and how far the next one is."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.members.models import Member
from loyalty.tiers.models import Tier


@dataclass(frozen=True)
class Standing:
    tier: Tier
    qualifying_spend: int
    next_tier: Tier | None
    ends_at: datetime | None


def all_tiers(session: Session) -> list[Tier]:
    return list(session.scalars(select(Tier).order_by(Tier.threshold)))


def base_tier(session: Session) -> Tier:
    return session.scalars(select(Tier).where(Tier.threshold == 0)).one()


def current_tier(session: Session, member: Member) -> Tier:
    if member.tier_id is not None:
        tier = session.get(Tier, member.tier_id)
        if tier is not None:
            return tier
    return base_tier(session)


def standing(session: Session, member: Member) -> Standing:
    tier = current_tier(session, member)
    higher = [t for t in all_tiers(session) if t.threshold > tier.threshold]
    return Standing(tier, 0, higher[0] if higher else None, None)
