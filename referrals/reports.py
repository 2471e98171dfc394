"""What referrals add to the retention reports (registered in `referrals.init_app`)."""

from sqlalchemy import literal, select

from loyalty.orders.models import Order
from referrals.models import CONVERTED, Referral

REFERRED = "referred"


def referral_cohorts():
    """`?by=referral`: customers whose paid order converted a referral are "referred"."""
    return (
        select(Order.customer_id.label("customer_id"), literal(REFERRED).label("cohort"))
        .join(Referral, Referral.order_id == Order.order_id)
        .where(Referral.status == CONVERTED, Order.status == "paid")
        .distinct()
    )
