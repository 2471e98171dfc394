"""What the card page reads beyond `GET /v1/gift-cards/{id}`: the card's holds and the Stripe
purchase that sold it."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from rewards.giftcards.models import GiftCardHold, GiftCardPurchase


def holds(session: Session, card_id: int, limit: int) -> list[GiftCardHold]:
    """The card's holds, newest first."""
    return list(
        session.scalars(
            select(GiftCardHold)
            .where(GiftCardHold.card_id == card_id)
            .order_by(GiftCardHold.id.desc())
            .limit(limit)
        )
    )


def purchase(session: Session, card_id: int) -> GiftCardPurchase | None:
    """The Stripe Checkout purchase that issued the card (None for a card an admin issued)."""
    return session.scalar(select(GiftCardPurchase).where(GiftCardPurchase.card_id == card_id))
