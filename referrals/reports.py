"""What referrals add to the retention reports (registered in `referrals.init_app`)."""

from sqlalchemy import literal, or_, select

from loyalty.orders.models import Order
from referrals.models import CONVERTED, REWARD_CANCELED, Referral

REFERRED = "referred"


def referral_cohorts():
    """`?by=referral`: customers whose paid order converted a referral are "referred"."""
    return (
        select(Order.customer_id.label("customer_id"), literal(REFERRED).label("cohort"))
        .join(Referral, Referral.order_id == Order.order_id)
        .where(Referral.status == CONVERTED, Order.status == "paid")
        .distinct()
    )


def referral_conversions():
    """The overview's referral conversions: referrals converted by the friend's paid order,
    at the order's time (`at`); one whose order was refunded below the program's minimum (its
    rewards taken back) no longer counts."""
    return select(Referral.converted_at.label("at")).where(
        Referral.status == CONVERTED,
        Referral.converted_at.is_not(None),
        or_(Referral.reward_state.is_(None), Referral.reward_state != REWARD_CANCELED),
    )
