"""What reward codes add to the retention reports (registered in `rewards.catalog.init_app`)."""

from sqlalchemy import case, func, select

from loyalty.orders.models import Order
from rewards.catalog.models import USED, Reward, RewardCode


def reward_cohorts():
    """`?by=reward`: a customer's cohort is the reward of the first code they used on a paid
    order — the catalog reward's name, or the code's source (e.g. "referral" for a friend's
    reward) when it was not bought from the catalog."""
    label = case((Reward.name.is_not(None), Reward.name), else_=RewardCode.source_type)
    first = func.row_number().over(
        partition_by=Order.customer_id, order_by=(RewardCode.used_at, RewardCode.id)
    )
    used = (
        select(
            Order.customer_id.label("customer_id"),
            label.label("cohort"),
            first.label("nth"),
        )
        .join(RewardCode, RewardCode.used_order_id == Order.order_id)
        .outerjoin(Reward, Reward.id == RewardCode.reward_id)
        .where(RewardCode.status == USED, Order.status == "paid")
        .subquery()
    )
    return select(used.c.customer_id, used.c.cohort).where(used.c.nth == 1)
