"""What reward codes add to the retention reports (registered in `rewards.catalog.init_app`)."""

from datetime import datetime
from fractions import Fraction

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from loyalty.hooks import PointValue
from loyalty.orders.models import Order
from loyalty.program.service import get_program
from rewards.catalog.models import USED, Reward, RewardCode

AMOUNT_OFF = "amount_off"
CHECKOUT_NAME = "Points at checkout"


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


def point_value(session: Session, now: datetime) -> PointValue | None:
    """A point's money value for the liability of the points outstanding: the best rate a
    member can turn points into money at `now` — `amount ÷ points_cost` of the amount-off
    rewards (active, not deleted, within their dates, in stock; a tier's own rewards
    included), or the program's points-at-checkout `value_per_point` when that is on — the
    lowest reward id on a tie, a reward before checkout. None when there is none: percent-off,
    free-shipping and free-product rewards have no money value of their own."""
    checkout = get_program(session).checkout_points
    at_checkout = None
    if checkout.enabled and checkout.value_per_point > 0:
        rate = Fraction(checkout.value_per_point)
        at_checkout = PointValue(rate.numerator, rate.denominator, None, CHECKOUT_NAME)
    rewards = session.execute(
        select(Reward.id, Reward.name, Reward.amount, Reward.points_cost)
        .where(
            Reward.kind == AMOUNT_OFF,
            Reward.active.is_(True),
            Reward.deleted_at.is_(None),
            Reward.amount > 0,
            Reward.points_cost > 0,
            or_(Reward.starts_at.is_(None), Reward.starts_at <= now),
            or_(Reward.ends_at.is_(None), Reward.ends_at > now),
            or_(Reward.stock.is_(None), Reward.stock > 0),
        )
        .order_by(Reward.id)
    ).all()  # the catalog: a handful of rows
    if not rewards:
        return at_checkout
    best = max(rewards, key=lambda r: (Fraction(r.amount, r.points_cost), -r.id))
    if at_checkout is not None and Fraction(at_checkout.money, at_checkout.points) > Fraction(
        best.amount, best.points_cost
    ):
        return at_checkout
    return PointValue(best.amount, best.points_cost, best.id, best.name)
