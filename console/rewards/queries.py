"""The reads of the rewards pages that no API route makes: the catalog with its retired
rewards, the tiers to choose from, how many codes a reward has given. Read-only: every change
goes through the API's catalog service."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.cursors import MAX_INT32_ROW_ID, cursor_row_id, encode_cursor
from loyalty.tiers.models import Tier
from rewards.catalog.models import USED, Reward, RewardCode


class BadCursor(ValueError):
    """A page cursor the catalog never made."""


def tier_names(session: Session) -> dict[int, str]:
    """{tier id: name}, lowest threshold first."""
    return dict(session.execute(select(Tier.id, Tier.name).order_by(Tier.threshold)).all())


def catalog_page(session: Session, retired: bool, cursor: str | None, limit: int):
    """([reward], next cursor): the catalog (or its retired rewards), oldest first."""
    query = select(Reward).where(
        Reward.deleted_at.is_not(None) if retired else Reward.deleted_at.is_(None)
    )
    if cursor:
        after = cursor_row_id(cursor, MAX_INT32_ROW_ID)
        if after is None:
            raise BadCursor(cursor)
        query = query.where(Reward.id > after)
    rows = list(session.scalars(query.order_by(Reward.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].id) if more else None)


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
