"""The reads of the rewards pages that no API route makes: the catalog with its retired
rewards, the tiers to choose from, how many codes a reward has given. Read-only: every change
goes through the API's catalog service."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.cursors import MAX_INT32_ROW_ID
from loyalty.paging import Page, page_by_id
from loyalty.tiers.models import Tier
from rewards.catalog.models import USED, Reward, RewardCode


def tier_names(session: Session) -> dict[int, str]:
    """{tier id: name}, lowest threshold first."""
    return dict(session.execute(select(Tier.id, Tier.name).order_by(Tier.threshold)).all())


def catalog_page(session: Session, retired: bool, cursor: str | None, limit: int) -> Page:
    """A page of the catalog (or of its retired rewards), oldest first. A cursor this list
    never made is refused (`ValidationFailed`)."""
    query = select(Reward).where(
        Reward.deleted_at.is_not(None) if retired else Reward.deleted_at.is_(None)
    )
    return page_by_id(
        session, query, Reward.id, limit, cursor, newest_first=False, max_row_id=MAX_INT32_ROW_ID
    )


def retired_count(session: Session) -> int:
    query = select(func.count(Reward.id)).where(Reward.deleted_at.is_not(None))
    return session.execute(query).scalar_one()


def code_counts(session: Session, reward_id: int) -> tuple[int, int]:
    """(codes issued for the reward, of which used)."""
    issued, used = session.execute(
        select(
            func.count(RewardCode.id), func.count(RewardCode.id).filter(RewardCode.status == USED)
        ).where(RewardCode.reward_id == reward_id)
    ).one()
    return issued, used
