"""The demo program's redemptions: members of the demo history who spent points on the
catalog over the past weeks, through the same service as `POST /v1/members/{id}/redemptions`.
Runs after the demo history (loyalty.demo_history); the same every time."""

import random
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.members.models import Member
from loyalty.types import utcnow
from rewards.catalog import service
from rewards.catalog.models import Reward

SEED = 20261208
SHARE = 0.5  # of the members who can afford something


def seed_demo_redemptions(session: Session) -> None:
    rng = random.Random(SEED)
    now = utcnow()
    rewards = list(
        session.scalars(
            select(Reward)
            .where(Reward.active.is_(True), Reward.deleted_at.is_(None), Reward.tier_id.is_(None))
            .order_by(Reward.points_cost.desc())
        )
    )
    if not rewards:
        return
    cheapest = rewards[-1].points_cost
    members = session.scalars(
        select(Member)
        .where(Member.customer_id.like("demo-c%"), Member.points_available >= cheapest)
        .order_by(Member.id)
    )
    for member in list(members):
        if rng.random() > SHARE:
            continue
        reward = next(r for r in rewards if r.points_cost <= member.points_available)
        service.redeem(session, member, reward.id, now=now - timedelta(days=rng.uniform(0, 28)))
    session.flush()
