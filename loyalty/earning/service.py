"""Earning points on paid orders (base rate and bonus rules) and reversing them on refunds.

How many points: loyalty/earning/points.py (the formulas). Which bonus rules an order meets:
loyalty/earning/rules.py. The numbers used are stored on the order and on each entry, so a
refund reverses what was actually awarded even if the rules have changed since.
"""

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from loyalty import email, ledger, webhooks
from loyalty.earning import points, rules
from loyalty.errors import ValidationFailed
from loyalty.ledger import PENDING, LedgerEntry
from loyalty.orders.service import OrderEventContext
from loyalty.program.service import currency_exponent
from loyalty.schemas import MAX_POINTS
from loyalty.tiers import service as tiers
from loyalty.tiers.models import Tier

ORDER_SOURCE = "order"


def award_order_points(
    ctx: OrderEventContext, kind: str, amount: int, detail: dict, rule_id: int | None = None
) -> LedgerEntry | None:
    """Credit `amount` points produced by a paid order; they are reversed with the order's
    refunds. None (nothing credited) for no points or no member."""
    if amount <= 0 or ctx.member is None:
        return None
    if ctx.order.points_awarded + amount > MAX_POINTS:
        # Beyond any real order, and beyond what a refund or a balance is meant to carry:
        # the event is refused whole (nothing of it is kept) rather than half-applied.
        total = ctx.order.points_awarded + amount
        raise ValidationFailed(
            f"This order would earn {total} points; one order earns at most {MAX_POINTS}.",
            errors={"order": [f"Earns more than {MAX_POINTS} points."]},
        )
    program = ctx.program
    pending = program.pending_days > 0
    entry = ledger.post_entry(
        ctx.session,
        ctx.member.id,
        kind,
        amount,
        state=PENDING if pending else ledger.AVAILABLE,
        source_type=ORDER_SOURCE,
        source_id=ctx.order.order_id,
        detail=detail,
        rule_id=rule_id,
        occurred_at=ctx.occurred_at,
        matures_at=ctx.occurred_at + timedelta(days=program.pending_days) if pending else None,
        activity_at=ctx.occurred_at,  # the paid order is the member's activity
    )
    ctx.order.points_awarded += amount
    ctx.effects.append(
        {
            "kind": kind,
            "points": amount,
            "state": entry.state,
            "entry_id": entry.id,
            "matures_at": entry.matures_at.isoformat() if entry.matures_at else None,
            **({"rule_id": rule_id} if rule_id is not None else {}),
        }
    )
    return entry


def _earned_matures_at(ctx: OrderEventContext) -> str | None:
    if ctx.program.pending_days <= 0:
        return None
    return webhooks.iso(ctx.occurred_at + timedelta(days=ctx.program.pending_days))


class PointsEarning:
    """Order handler: base points on `order.paid`, proportional reversal on `order.refunded`."""

    def paid(self, ctx: OrderEventContext) -> None:
        if ctx.member is None:
            return
        tier = ctx.tier or tiers.current_tier(ctx.session, ctx.member)
        rate = Decimal(ctx.program.points_per_unit)
        multiplier = Decimal(tier.multiplier)
        exponent = currency_exponent(ctx.order.currency)
        earned = points.base_points(ctx.order.eligible_amount, exponent, rate, multiplier)
        detail = {
            "eligible_amount": ctx.order.eligible_amount,
            "currency": ctx.order.currency,
            "points_per_unit": str(rate.normalize()),
            "tier": tier.name,
            "multiplier": str(multiplier.normalize()),
        }
        ctx.order.detail = {**(ctx.order.detail or {}), "earn": detail}
        award_order_points(ctx, "earn", earned, detail)
        # Bonus rules see the same tier (the one before this event) and the same rate.
        self._bonuses(ctx, tier, rate, exponent)
        if ctx.order.points_awarded > 0:
            event = {
                "customer_id": ctx.member.customer_id,
                "order_id": ctx.order.order_id,
                "points": ctx.order.points_awarded,
                "state": PENDING if ctx.program.pending_days > 0 else ledger.AVAILABLE,
                "matures_at": _earned_matures_at(ctx),
                "occurred_at": webhooks.iso(ctx.occurred_at),
            }
            webhooks.emit(ctx.session, "points.earned", event)
            if email.enabled():
                member = ctx.member
                ctx.session.refresh(member, ["points_available", "points_pending"])
                balances = {"points_available": member.points_available,
                            "points_pending": member.points_pending}  # fmt: skip
                email.queue(ctx.session, member, "points_earned", {**event, **balances})

    @staticmethod
    def _bonuses(ctx: OrderEventContext, tier: Tier, rate: Decimal, exponent: int) -> None:
        """Award every live order (and first-order) rule this paid order meets."""
        order = ctx.order
        tier_multiplier = Decimal(tier.multiplier)
        applied = []
        for rule, amount in rules.order_rules(ctx.session, order, tier.id, ctx.occurred_at):
            bonus = points.bonus_points(
                amount,
                exponent,
                rate,
                tier_multiplier,
                rule_multiplier=rule.multiplier,
                fixed_points=rule.points,
            )
            detail: dict = {"rule": rule.name, "trigger": rule.trigger, "matching_amount": amount}
            if rule.multiplier is not None:
                detail |= {
                    "points_per_unit": str(rate.normalize()),
                    "tier_multiplier": str(tier_multiplier.normalize()),
                    "rule_multiplier": str(Decimal(rule.multiplier).normalize()),
                }
            else:
                detail["fixed_points"] = rule.points
            if award_order_points(ctx, "bonus", bonus, detail, rule_id=rule.id) is not None:
                applied.append({"rule_id": rule.id, "points": bonus, **detail})
        if applied:
            order.detail = {**(order.detail or {}), "bonuses": applied}

    def refunded(self, ctx: OrderEventContext) -> None:
        order, refund = ctx.order, ctx.refund
        if order.member_id is None or refund is None or order.points_awarded == 0:
            return
        target = points.reversed_after_refund(
            order.points_awarded, order.refunded_amount, order.eligible_amount
        )
        to_reverse = target - order.points_reversed
        if to_reverse <= 0:
            return
        pending_left, matures_at = ctx.session.execute(
            select(
                func.coalesce(func.sum(LedgerEntry.points), 0), func.min(LedgerEntry.matures_at)
            ).where(
                LedgerEntry.member_id == order.member_id,
                LedgerEntry.source_type == ORDER_SOURCE,
                LedgerEntry.source_id == order.order_id,
                LedgerEntry.state == PENDING,
            )
        ).one()
        detail = {
            "refund_id": refund.refund_id,
            "refunded_amount": ctx.refund_amount,
            "order_refunded_total": order.refunded_amount,
            "eligible_amount": order.eligible_amount,
            "points_awarded": order.points_awarded,
            "reversed_before": order.points_reversed,
        }
        # Pending points of the order are cancelled first; only the rest is clawed back.
        cancel = min(to_reverse, int(pending_left))
        claw = to_reverse - cancel
        for kind, taken, state in (
            ("reversal", cancel, PENDING),
            ("clawback", claw, ledger.AVAILABLE),
        ):
            if taken == 0:
                continue
            entry = ledger.post_entry(
                ctx.session,
                order.member_id,
                kind,
                -taken,
                state=state,
                source_type=ORDER_SOURCE,
                source_id=order.order_id,
                detail=detail,
                occurred_at=ctx.occurred_at,
                matures_at=matures_at if state == PENDING else None,
            )
            ctx.effects.append(
                {"kind": kind, "points": -taken, "state": state, "entry_id": entry.id}
            )
        order.points_reversed += to_reverse
        refund.points_reversed = to_reverse
