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
from loyalty.orders.models import Order
from loyalty.orders.service import OrderEventContext
from loyalty.program.service import ProgramSettings, currency_exponent
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
    entry = ledger.post_entry(ctx.session, **_order_entry(ctx, kind, amount, detail, rule_id))
    _awarded(ctx, kind, amount, entry, rule_id)
    return entry


def _order_entry(
    ctx: OrderEventContext, kind: str, amount: int, detail: dict, rule_id: int | None
) -> dict:
    """The ledger entry (`ledger.post_entry`'s arguments) of points a paid order earns."""
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
    return {
        "member_id": ctx.member.id,  # type: ignore[union-attr]
        "kind": kind,
        "points": amount,
        "state": PENDING if pending else ledger.AVAILABLE,
        "source_type": ORDER_SOURCE,
        "source_id": ctx.order.order_id,
        "detail": detail,
        "rule_id": rule_id,
        "occurred_at": ctx.occurred_at,
        "matures_at": ctx.occurred_at + timedelta(days=program.pending_days) if pending else None,
        "activity_at": ctx.occurred_at,  # the paid order is the member's activity
    }


def _awarded(
    ctx: OrderEventContext, kind: str, amount: int, entry: LedgerEntry, rule_id: int | None
) -> None:
    """The entry posted: on the order, and among the event's effects."""
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


def base_earning(program: ProgramSettings, tier: Tier, order: Order) -> tuple[int, dict]:
    """What a paid order earns at the base rate for a member of `tier` (the tier before the
    event): the points, and the numbers used (the order's and the entry's `detail`)."""
    rate = Decimal(program.points_per_unit)
    multiplier = Decimal(tier.multiplier)
    exponent = currency_exponent(order.currency)
    earned = points.base_points(order.eligible_amount, exponent, rate, multiplier)
    detail = {
        "eligible_amount": order.eligible_amount,
        "currency": order.currency,
        "points_per_unit": str(rate.normalize()),
        "tier": tier.name,
        "multiplier": str(multiplier.normalize()),
    }
    return earned, detail


def _earned_matures_at(ctx: OrderEventContext) -> str | None:
    if ctx.program.pending_days <= 0:
        return None
    return webhooks.iso(ctx.occurred_at + timedelta(days=ctx.program.pending_days))


class PointsEarning:
    """Order handler: base points on `order.paid`, proportional reversal on `order.refunded`."""

    def paid(self, ctx: OrderEventContext) -> None:
        if ctx.member is None:
            return
        tier, earned, detail = self._base(ctx)
        award_order_points(ctx, "earn", earned, detail)
        self._rest(ctx, tier)

    def paid_many(self, ctxs: list[OrderEventContext]) -> None:
        """`paid` for the events of a group (`Hooks.dispatch_many`: distinct members): their
        base points posted together (`ledger.post_entries`), their `points.earned` reported
        together; bonus rules and emails as `paid` does them, event by event."""
        if email.enabled():
            for ctx in ctxs:
                self.paid(ctx)
            return
        based = [(ctx, *self._base(ctx)) for ctx in ctxs if ctx.member is not None]
        earning = [(ctx, earned, detail) for ctx, _tier, earned, detail in based if earned > 0]
        if earning:
            planned = [_order_entry(ctx, "earn", earned, detail, None)
                       for ctx, earned, detail in earning]  # fmt: skip
            entries = ledger.post_entries(earning[0][0].session, planned)
            for (ctx, earned, _detail), entry in zip(earning, entries, strict=True):
                _awarded(ctx, "earn", earned, entry, None)
        reports = []
        for ctx, tier, _earned, _detail in based:
            report = self._rest(ctx, tier, report=False)
            if report is not None:
                reports.append(report)
        if reports:
            webhooks.emit_many(ctxs[0].session, "points.earned", reports)

    @staticmethod
    def _base(ctx: OrderEventContext) -> tuple[Tier, int, dict]:
        """The base points (`base_earning`) at the tier before the event, on the order."""
        tier = ctx.tier or tiers.current_tier(ctx.session, ctx.member)  # type: ignore[arg-type]
        earned, detail = base_earning(ctx.program, tier, ctx.order)
        ctx.order.detail = {**(ctx.order.detail or {}), "earn": detail}
        return tier, earned, detail

    def _rest(self, ctx: OrderEventContext, tier: Tier, report: bool = True) -> dict | None:
        """After the base points: the bonus rules, then `points.earned` (reported here, or
        given back for the caller to report with others: `report=False`) and its email."""
        member = ctx.member
        assert member is not None
        rate = Decimal(ctx.program.points_per_unit)
        # Bonus rules see the same tier (the one before this event) and the same rate.
        self._bonuses(ctx, tier, rate, currency_exponent(ctx.order.currency))
        if ctx.order.points_awarded <= 0:
            return None
        event = {
            "customer_id": member.customer_id,
            "order_id": ctx.order.order_id,
            "points": ctx.order.points_awarded,
            "state": PENDING if ctx.program.pending_days > 0 else ledger.AVAILABLE,
            "matures_at": _earned_matures_at(ctx),
            "occurred_at": webhooks.iso(ctx.occurred_at),
        }
        if not report:
            return event
        webhooks.emit(ctx.session, "points.earned", event)
        if email.enabled():
            ctx.session.refresh(member, ["points_available", "points_pending"])
            balances = {"points_available": member.points_available,
                        "points_pending": member.points_pending}  # fmt: skip
            email.queue(ctx.session, member, "points_earned", {**event, **balances})
        return None

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
