"""Rewards: the catalog, redeeming points for single-use codes, and honouring codes at checkout.

A redemption is one transaction: the member's row is locked (redemptions of one member queue),
the reward's rules are checked, the stock is taken with a conditional UPDATE (`stock > 0`), the
points with the ledger's conditional debit, and the code row is inserted — all or nothing.
A code changes status only with a conditional UPDATE (`WHERE status = 'issued'`), so it is used,
canceled or expired at most once whatever runs concurrently.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from marshmallow import missing
from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement

from loyalty import ledger, webhooks
from loyalty.audit import record_change
from loyalty.codes import normalize_code, random_code
from loyalty.cursors import MAX_INT32_ROW_ID
from loyalty.errors import (
    CodeInvalid,
    Conflict,
    InsufficientPoints,
    NotFound,
    RewardUnavailable,
    ValidationFailed,
)
from loyalty.extensions import rowcount
from loyalty.hooks import hooks
from loyalty.jobs import Progress, in_ranges, lock_members
from loyalty.ledger import AVAILABLE, LedgerEntry
from loyalty.members.models import Member
from loyalty.members.service import normalize_email
from loyalty.orders.service import OrderEventContext, has_paid_orders
from loyalty.paging import Page, page_by_id
from loyalty.program.models import Program
from loyalty.program.service import get_program
from loyalty.tiers import service as tiers
from loyalty.tiers.models import Tier
from loyalty.types import JSONType, utcnow
from rewards.catalog.models import (
    CANCELED,
    EXPIRED,
    ISSUED,
    KINDS,
    USED,
    Reward,
    RewardCode,
    RewardSettings,
)
from rewards.catalog.schemas import (
    ExportedCodeSchema,
    RewardCodeSchema,
    RewardSchema,
    RewardSettingsSchema,
)

CODE_LENGTH = 16  # 80 bits from `secrets`: guessing a live code is hopeless
CODE_SOURCE = "reward_code"  # ledger source of redemptions and their returns
REDEMPTION_SOURCE = "redemption"

# --- settings ---------------------------------------------------------------------------------


def get_settings(session: Session, *, for_update: bool = False) -> RewardSettings:
    settings = session.get(RewardSettings, 1, with_for_update=for_update or None)
    if settings is None:  # the rewards migration inserts it
        raise RuntimeError("reward_settings row missing: run `flask --app wsgi db upgrade`")
    return settings


def update_settings(session: Session, changes: dict) -> RewardSettings:
    """Change the reward settings (audited as the API shows them)."""
    before = RewardSettingsSchema().dump(get_settings(session))
    settings = get_settings(session, for_update=True)
    for name, value in changes.items():
        setattr(settings, name, value)
    session.flush()
    after = RewardSettingsSchema().dump(settings)
    record_change(session, "reward_settings.update", "reward_settings", 1, before, after)
    return settings


# --- catalog ----------------------------------------------------------------------------------

KIND_FIELDS = {"amount_off": "amount", "percent_off": "percent", "free_product": "sku"}
DISCOUNT_FIELDS = ("amount", "percent", "sku")


def _resolve_tier(session: Session, tier: str | int | None) -> int | None:
    """`tier` is a tier's name or id (or None for no requirement)."""
    if tier is None:
        return None
    if isinstance(tier, int):
        row = session.get(Tier, tier)
    else:
        row = session.scalar(select(Tier).where(Tier.name == tier))
    if row is None:
        raise ValidationFailed(errors={"tier": [f"No tier {tier!r}."]})
    return row.id


def _check_kind_fields(values: dict) -> None:
    kind = values["kind"]
    errors = {}
    needed = KIND_FIELDS.get(kind)
    for name in DISCOUNT_FIELDS:
        if name == needed and values.get(name) is None:
            errors[name] = [f"Required for kind {kind}."]
        elif name != needed and values.get(name) is not None:
            errors[name] = [f"Not used by kind {kind}."]
    if kind == "amount_off" and not errors and values["amount"] <= 0:
        errors["amount"] = ["Must be greater than 0."]
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is not None and ends is not None and ends <= starts:
        errors["ends_at"] = ["Must be after starts_at."]
    if errors:
        raise ValidationFailed(errors=errors)


def create_reward(session: Session, data: dict) -> Reward:
    values = dict(data)
    values["tier_id"] = _resolve_tier(session, values.pop("tier", None))
    _check_kind_fields(values)
    reward = Reward(**values)
    session.add(reward)
    session.flush()
    _audit(session, "reward.create", reward.id, None, _snapshot(session, reward))
    return reward


def get_reward(session: Session, reward_id: int, *, include_deleted: bool = False) -> Reward:
    reward = session.get(Reward, reward_id)
    if reward is None or (reward.deleted_at is not None and not include_deleted):
        raise NotFound(f"No reward {reward_id}.")
    return reward


def update_reward(session: Session, reward_id: int, changes: dict) -> Reward:
    before = _snapshot(session, get_reward(session, reward_id))
    reward = session.get(Reward, reward_id, with_for_update=True)
    if reward is None or reward.deleted_at is not None:
        raise NotFound(f"No reward {reward_id}.")
    changes = dict(changes)
    if "tier" in changes:
        changes["tier_id"] = _resolve_tier(session, changes.pop("tier"))
    if "kind" in changes and changes["kind"] != reward.kind:
        # Changing the kind drops the old kind's field unless it is given again.
        for name in DISCOUNT_FIELDS:
            changes.setdefault(name, None)
    merged = {c: getattr(reward, c) for c in ("kind", *DISCOUNT_FIELDS, "starts_at", "ends_at")}
    merged.update({k: v for k, v in changes.items() if k in merged})
    _check_kind_fields(merged)
    for name, value in changes.items():
        setattr(reward, name, value)
    session.flush()
    _audit(session, "reward.update", reward_id, before, _snapshot(session, reward))
    return reward


def delete_reward(session: Session, reward_id: int) -> Reward:
    """Retire the reward: no longer listed or redeemable; codes already issued stay valid."""
    before = _snapshot(session, get_reward(session, reward_id))
    reward = session.get(Reward, reward_id, with_for_update=True)
    if reward is None or reward.deleted_at is not None:
        raise NotFound(f"No reward {reward_id}.")
    reward.active = False
    reward.deleted_at = utcnow()
    session.flush()
    _audit(session, "reward.delete", reward_id, before, None)
    return reward


def _snapshot(session: Session, reward: Reward) -> dict:
    """The reward as the audit log keeps it: as the API shows it."""
    shown: dict = RewardSchema().dump(reward_view(session, reward))
    return shown


def _audit(
    session: Session, action: str, reward_id: int, before: dict | None, after: dict | None
) -> None:
    record_change(session, action, "reward", reward_id, before, after)


def list_rewards(
    session: Session, limit: int, cursor: str | None, active: bool | None = None
) -> Page:
    """A page of the rewards, oldest first (`RewardPageSchema`)."""
    query = select(Reward).where(Reward.deleted_at.is_(None))
    if active is not None:
        query = query.where(Reward.active.is_(active))
    page = page_by_id(
        session, query, Reward.id, limit, cursor, newest_first=False,
        max_row_id=MAX_INT32_ROW_ID,
    )  # fmt: skip
    names = _tier_names(session)
    return page.map(lambda reward: reward_view(session, reward, names))


def _tier_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Tier.id, Tier.name)).all())


@dataclass(frozen=True)
class RewardView:
    """A reward as the API shows it (`RewardSchema`): its row (whose columns read through),
    with the program's currency and its tier's name."""

    row: Reward
    currency: str
    tier: str | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


@dataclass(frozen=True)
class MemberRewardView(RewardView):
    """A reward of the live catalog as one member sees it (`MemberRewardSchema`)."""

    affordable: bool  # enough points now
    redeemable: bool  # affordable, and nothing else in the way
    unavailable_reason: str | None


def reward_view(session: Session, reward: Reward, tier_names: dict | None = None) -> RewardView:
    names = tier_names if tier_names is not None else _tier_names(session)
    tier = names.get(reward.tier_id) if reward.tier_id is not None else None
    return RewardView(reward, get_program(session).currency, tier)


# --- redemption -------------------------------------------------------------------------------


def _member_tier(session: Session, member: Member) -> Tier:
    return tiers.current_tier(session, member)


def _unavailable_reason(
    session: Session, reward: Reward, member: Member, now: datetime
) -> str | None:
    """Why `member` can't redeem `reward` now (points aside), or None."""
    if (
        not reward.active
        or reward.deleted_at is not None
        or (reward.starts_at is not None and now < reward.starts_at)
        or (reward.ends_at is not None and now >= reward.ends_at)
    ):
        return "inactive"
    if reward.tier_id is not None:
        required = session.get(Tier, reward.tier_id)
        if required is None or _member_tier(session, member).threshold < required.threshold:
            return "tier_required"
    if reward.per_member_limit is not None:
        redeemed = session.scalars(
            select(func.count(RewardCode.id)).where(
                RewardCode.reward_id == reward.id,
                RewardCode.member_id == member.id,
                RewardCode.source_type == REDEMPTION_SOURCE,  # codes given (referrals) don't count
                RewardCode.status != CANCELED,  # a canceled redemption gives its turn back
            )
        ).one()
        if redeemed >= reward.per_member_limit:
            return "limit_reached"
    if reward.stock is not None and reward.stock <= 0:
        return "out_of_stock"
    return None


_REASON_TEXT = {
    "inactive": "This reward is not available now.",
    "tier_required": "This reward needs a higher tier.",
    "limit_reached": "This member has redeemed this reward as often as allowed.",
    "out_of_stock": "This reward is out of stock.",
}


def _new_code(session: Session, **values: Any) -> RewardCode:
    """Insert a code row with a fresh random code (a collision, ~never, just draws again)."""
    for _attempt in range(5):
        row = RewardCode(code=random_code(CODE_LENGTH), **values)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            if row in session:
                session.expunge(row)
            taken = session.scalar(select(exists().where(RewardCode.code == row.code)))
            if not taken:
                raise  # not a collision: a real constraint violation
            continue
        webhooks.emit(session, "reward.issued", reward_issued_event(row))
        for issued in hooks().reward_code_issued:  # e.g. the store's own discount code
            issued(session, row)
        return row
    raise RuntimeError("could not draw a unique reward code")


# What a code is worth and when it ends, as `reward_code_view` shows it.
_CODE_TERMS = ("code", "reward_id", "kind", "amount", "percent", "sku", "min_order",
               "first_order_only", "points_spent", "expires_at")  # fmt: skip


def reward_issued_event(code: RewardCode) -> dict:
    """The `reward.issued` webhook's data: the code, so the merchant's tools can send it."""
    view = reward_code_view(code)
    return {
        "reward_code_id": code.id,
        "customer_id": code.customer_id,
        "email": code.email_normalized,
        "source": code.source_type,
        **{name: view[name] for name in _CODE_TERMS},
    }


def _take_one(session: Session, reward: Reward) -> bool:
    """Take one of a stocked reward's stock, if any is left: one conditional UPDATE, so
    concurrent takers never drive it below zero."""
    taken = session.execute(
        update(Reward)
        .where(Reward.id == reward.id, Reward.stock > 0)
        .values(stock=Reward.stock - 1),
        execution_options={"synchronize_session": False},
    )
    session.expire(reward, ["stock"])
    return rowcount(taken) == 1


def redeem(
    session: Session, member: Member, reward_id: int, now: datetime | None = None
) -> "RedemptionView":
    """Spend the member's points on a reward: one new code, or an error and nothing changed."""
    now = now or utcnow()
    reward = session.get(Reward, reward_id)
    if reward is None or reward.deleted_at is not None:
        raise NotFound(f"No reward {reward_id}.")
    with session.begin_nested():  # all or nothing, even for callers that go on after an error
        member = ledger.lock_member(session, member.id)  # this member's redemptions queue here
        session.refresh(reward)
        reason = _unavailable_reason(session, reward, member, now)
        if reason is not None:
            raise RewardUnavailable(_REASON_TEXT[reason], reason=reason, reward_id=reward.id)
        if member.points_available < reward.points_cost:
            raise InsufficientPoints(
                f"This reward costs {reward.points_cost} points; "
                f"{member.points_available} available.",
                points_cost=reward.points_cost,
                available=member.points_available,
            )
        if reward.stock is not None and not _take_one(session, reward):
            raise RewardUnavailable(
                _REASON_TEXT["out_of_stock"], reason="out_of_stock", reward_id=reward.id
            )
        code = _new_code(
            session,
            kind=reward.kind,
            amount=reward.amount,
            percent=reward.percent,
            sku=reward.sku,
            min_order=reward.min_order,
            first_order_only=False,
            customer_id=member.customer_id,
            member_id=member.id,
            reward_id=reward.id,
            points_spent=reward.points_cost,
            source_type=REDEMPTION_SOURCE,
            source_id=str(member.id),
            status=ISSUED,
            expires_at=now + timedelta(days=reward.code_valid_days),
            created_at=now,
        )
        ledger.post_entry(
            session,
            member.id,
            "redeem",
            -reward.points_cost,
            source_type=CODE_SOURCE,
            source_id=str(code.id),
            detail={"reward_id": reward.id, "reward": reward.name, "code_id": code.id},
            occurred_at=now,
            spend=True,
        )
        # A redemption is activity: inactivity expiry counts from the latest one.
        if member.last_activity_at is None or member.last_activity_at < now:
            member.last_activity_at = now
        session.flush()
        _report_redeemed(session, member, code, now)
    return redemption_view(session, code)


def _report_redeemed(session: Session, member: Member, code: RewardCode, now: datetime) -> None:
    """`reward.redeemed`: points spent on a code (a catalog reward, or money off at checkout)."""
    if not webhooks.subscribed(session, "reward.redeemed"):
        return
    session.refresh(member, ["points_available"])
    webhooks.emit(
        session,
        "reward.redeemed",
        {
            "reward_code_id": code.id,
            "reward_id": code.reward_id,
            "customer_id": member.customer_id,
            "source": code.source_type,
            "amount": code.amount,
            "points_spent": code.points_spent,
            "points_available": member.points_available,
            "expires_at": webhooks.iso(code.expires_at),
            "occurred_at": webhooks.iso(now),
        },
        at=now,
    )


# --- points at checkout -----------------------------------------------------------------------
# A shopper turns points into money off the cart: an `amount_off` code without a catalog reward
# (source "checkout"), so validation, use on an order, cancel, expiry and the store connectors
# treat it like any other code. Its points always return when it is canceled or expires unused.

CHECKOUT_SOURCE = "checkout"
_VALUE_SCALE = 10_000  # value_per_point has at most 4 decimal places (Numeric(12, 4))


@dataclass(frozen=True)
class CheckoutQuote:
    """What the member may take off a cart now (`CheckoutQuoteSchema`)."""

    enabled: bool
    currency: str
    value_per_point: Decimal
    min_points: int
    step: int
    max_share_of_cart: int
    code_valid_hours: int
    cart_subtotal: int
    points_available: int
    max_points: int  # the most points one code may take for this cart now (0: none)
    max_amount: int  # what `max_points` is worth

    @classmethod
    def of(cls, program: Program, member: Member, cart_subtotal: int) -> "CheckoutQuote":
        terms = program.checkout_points
        by_cart = _max_points_for_cart(terms.value_per_point, terms.max_share_of_cart,
                                       cart_subtotal)  # fmt: skip
        most = min(by_cart, max(member.points_available, 0))
        most -= most % terms.step
        if not terms.enabled or most < terms.min_points:
            most = 0
        return cls(
            terms.enabled, program.currency, terms.value_per_point, terms.min_points, terms.step,
            terms.max_share_of_cart, terms.code_valid_hours, cart_subtotal,
            member.points_available, most, checkout_amount(most, terms.value_per_point),
        )  # fmt: skip


def _scaled(value_per_point: Decimal) -> int:
    """value_per_point × 10⁴, exactly (it has at most 4 decimal places)."""
    scaled = value_per_point * _VALUE_SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"value_per_point {value_per_point} has more than 4 decimal places")
    return int(scaled)


def checkout_amount(points: int, value_per_point: Decimal) -> int:
    """What `points` are worth off a cart: floor(points × value_per_point) minor units, in
    integers (never rounded up in the shopper's favour)."""
    return points * _scaled(value_per_point) // _VALUE_SCALE


def _max_amount_for_cart(max_share_of_cart: int, cart_subtotal: int) -> int:
    return cart_subtotal * max_share_of_cart // 100


def _max_points_for_cart(
    value_per_point: Decimal, max_share_of_cart: int, cart_subtotal: int
) -> int:
    """The most points whose amount stays within the cart's share: the largest P with
    floor(P × v) ≤ A, i.e. P × v < A + 1."""
    most_money = _max_amount_for_cart(max_share_of_cart, cart_subtotal)
    return ((most_money + 1) * _VALUE_SCALE - 1) // _scaled(value_per_point)


def checkout_min_order(amount: int, max_share_of_cart: int) -> int:
    """The smallest order subtotal on which `amount` is within the cart share: the code's
    minimum, so it can't take more than the share off a smaller order than the one quoted."""
    return -(-amount * 100 // max_share_of_cart)


def checkout_quote(session: Session, member: Member, cart_subtotal: int) -> CheckoutQuote:
    """The program's terms and what this member may take off this cart now."""
    return CheckoutQuote.of(get_program(session), member, cart_subtotal)


def create_checkout_discount(
    session: Session,
    member: Member,
    points: int,
    cart_subtotal: int,
    now: datetime | None = None,
) -> "RedemptionView":
    """Spend `points` on an amount-off code for this cart, worth floor(points ×
    value_per_point): within the program's limits, all or nothing."""
    now = now or utcnow()
    program = get_program(session)
    terms = program.checkout_points
    if not terms.enabled:
        raise RewardUnavailable(
            "Points at checkout are not enabled for this program.", reason="disabled"
        )
    amount = checkout_amount(points, terms.value_per_point)
    most_money = _max_amount_for_cart(terms.max_share_of_cart, cart_subtotal)
    quote = CheckoutQuote.of(program, member, cart_subtotal)
    if points < terms.min_points:
        problem = f"At least {terms.min_points} points."
    elif points % terms.step:
        problem = f"A multiple of {terms.step} points."
    elif amount > most_money:
        problem = (
            f"Worth {amount}, more than {terms.max_share_of_cart}% of the cart ({most_money})."
        )
    elif amount <= 0:
        problem = "Worth less than one minor unit."
    else:
        problem = None
    if problem is not None:
        raise ValidationFailed(
            problem,
            errors={"points": [problem]},
            min_points=terms.min_points,
            step=terms.step,
            max_points=quote.max_points,  # what the shopper may take off this cart now
            max_amount=quote.max_amount,
        )
    with session.begin_nested():  # all or nothing, even for callers that go on after an error
        member = ledger.lock_member(session, member.id)  # this member's spends queue here
        if member.points_available < points:
            raise InsufficientPoints(
                f"{points} points asked; {member.points_available} available.",
                points=points,
                available=member.points_available,
            )
        code = _new_code(
            session,
            kind="amount_off",
            amount=amount,
            min_order=checkout_min_order(amount, terms.max_share_of_cart),
            first_order_only=False,
            customer_id=member.customer_id,
            member_id=member.id,
            reward_id=None,
            points_spent=points,
            source_type=CHECKOUT_SOURCE,
            source_id=str(member.id),
            status=ISSUED,
            expires_at=now + timedelta(hours=terms.code_valid_hours),
            created_at=now,
        )
        ledger.post_entry(
            session,
            member.id,
            "redeem",
            -points,
            source_type=CODE_SOURCE,
            source_id=str(code.id),
            detail={
                "checkout": True,
                "code_id": code.id,
                "amount": amount,
                "value_per_point": format(terms.value_per_point.normalize(), "f"),
                "cart_subtotal": cart_subtotal,
            },
            occurred_at=now,
            spend=True,  # conditional: never below zero, whatever runs concurrently
            activity_at=now,
        )
        session.flush()
        _report_redeemed(session, member, code, now)
    return redemption_view(session, code)


def list_rewards_for_member(session: Session, member: Member) -> list[MemberRewardView]:
    """The live catalog as this member sees it: `affordable` (enough points now) and
    `redeemable` (affordable and nothing else in the way, else `unavailable_reason`)."""
    now = utcnow()
    rewards = session.scalars(
        select(Reward)
        .where(Reward.deleted_at.is_(None), Reward.active.is_(True))
        .order_by(Reward.points_cost, Reward.id)
    )
    names = _tier_names(session)
    currency = get_program(session).currency
    items = []
    for reward in rewards:
        reason = _unavailable_reason(session, reward, member, now)
        if reason == "inactive":  # outside its window: not shown
            continue
        affordable = member.points_available >= reward.points_cost
        tier = names.get(reward.tier_id) if reward.tier_id is not None else None
        items.append(
            MemberRewardView(
                reward, currency, tier, affordable, affordable and reason is None, reason
            )
        )
    return items


def list_redemptions(session: Session, member: Member, limit: int, cursor: str | None) -> Page:
    """The member's codes, newest first (redemptions and codes given to them)."""
    query = select(RewardCode).where(RewardCode.member_id == member.id)
    page = page_by_id(session, query, RewardCode.id, limit, cursor)
    names = _tier_names(session)
    platforms = code_platforms(session, [c.id for c in page.items])
    return page.map(lambda code: redemption_view(session, code, names, platforms))


def get_member_redemption(session: Session, member: Member, code_id: int) -> "RedemptionView":
    """One of the member's redemptions (the widget polls it until the store has the code)."""
    code = session.get(RewardCode, code_id)
    if code is None or code.member_id != member.id:
        raise NotFound(f"No redemption {code_id}.")
    return redemption_view(session, code)


def cancel_redemption(
    session: Session, code_id: int, member: Member | None = None, now: datetime | None = None
) -> "RedemptionView":
    """Cancel an unused code: its points and its stock return. `member` restricts to their own
    codes (the widget); used, canceled, expired or checkout-reserved codes are a 409."""
    now = now or utcnow()
    code = session.get(RewardCode, code_id)
    if code is None or (member is not None and code.member_id != member.id):
        raise NotFound(f"No redemption {code_id}.")
    if code.member_id is not None:
        ledger.lock_member(session, code.member_id)  # lock order: member, then code, then reward
    changed = session.execute(
        update(RewardCode)
        .where(
            RewardCode.id == code.id,
            RewardCode.status == ISSUED,
            or_(
                RewardCode.reserved_order_id.is_(None),
                RewardCode.reserved_until <= now,
            ),
        )
        .values(
            status=CANCELED,
            canceled_at=now,
            points_returned=RewardCode.points_spent,
            reserved_order_id=None,
            reserved_until=None,
        ),
        execution_options={"synchronize_session": False},
    )
    session.refresh(code)
    if rowcount(changed) != 1:
        if code.status == ISSUED:
            raise Conflict(
                "This code is held by a checkout in progress.",
                reason="reserved",
                code_status=ISSUED,
            )
        raise Conflict(f"This code is {code.status}; only an unused code can be canceled.",
                       code_status=code.status)  # fmt: skip
    for hook in hooks().reward_codes_ended:
        hook(session, [code.id])
    if code.points_spent and code.member_id is not None:
        ledger.post_entry(
            session,
            code.member_id,
            "redeem_cancel",
            code.points_spent,
            source_type=CODE_SOURCE,
            source_id=str(code.id),
            detail={"reason": "canceled", "reward_id": code.reward_id, "code_id": code.id},
            occurred_at=now,
        )
    if code.reward_id is not None:
        session.execute(
            update(Reward)
            .where(Reward.id == code.reward_id, Reward.stock.is_not(None))
            .values(stock=Reward.stock + 1),
            execution_options={"synchronize_session": False},
        )
    session.flush()
    return redemption_view(session, code)


# --- codes given without points (referral rewards) ---------------------------------------------


def issue_reward_code(
    session: Session,
    *,
    kind: str,
    amount: int | None = None,
    percent: int | None = None,
    sku: str | None = None,
    min_order: int = 0,
    valid_days: int,
    customer_id: str | None = None,
    email: str | None = None,
    first_order_only: bool = False,
    source_type: str,
    source_id: str,
    member_id: int | None = None,
    reward_id: int | None = None,
    points_spent: int = 0,
) -> RewardCode:
    """Issue a single-use code that is not bought through the catalog (e.g. a referral friend
    reward). The owner is a customer id and/or an email (a friend may not be a member yet);
    `first_order_only` makes it valid only while that customer has no paid order. Takes no
    points: the caller moves points itself if `points_spent` is given."""
    if kind not in KINDS:
        raise ValueError(f"unknown reward kind {kind!r}")
    values = {"kind": kind, "amount": amount, "percent": percent, "sku": sku}
    _check_kind_fields(values)
    if valid_days <= 0:
        raise ValueError("valid_days must be positive")
    if member_id is not None and customer_id is None:
        customer_id = session.scalar(select(Member.customer_id).where(Member.id == member_id))
    if customer_id is None and not normalize_email(email):
        raise ValueError("a reward code needs an owner: customer_id, email or member_id")
    now = utcnow()
    return _new_code(
        session,
        **values,
        min_order=min_order,
        first_order_only=first_order_only,
        customer_id=customer_id,
        email_normalized=normalize_email(email),
        member_id=member_id,
        reward_id=reward_id,
        points_spent=points_spent,
        source_type=source_type,
        source_id=str(source_id),
        status=ISSUED,
        expires_at=now + timedelta(days=valid_days),
        created_at=now,
    )


TIER_ENTRY_SOURCE = "tier_entry"


def issue_tier_entry_code(
    session: Session, member: Member, reward_id: int, entry_id: int
) -> int | None:
    """A tier's entry reward: the reward's code for the member, without points (the core's
    `hooks.tier_reached`; the core records the once-per-period fact). Its stock, if it has
    one, is taken like a redemption's (and returns if the code is canceled or expires). None
    when retired or out of stock."""
    reward = session.get(Reward, reward_id)
    if reward is None or reward.deleted_at is not None:
        return None
    if reward.stock is not None and not _take_one(session, reward):
        return None
    code = issue_reward_code(
        session,
        kind=reward.kind,
        amount=reward.amount,
        percent=reward.percent,
        sku=reward.sku,
        min_order=reward.min_order,
        valid_days=reward.code_valid_days,
        customer_id=member.customer_id,
        member_id=member.id,
        reward_id=reward.id,
        source_type=TIER_ENTRY_SOURCE,
        source_id=str(entry_id),
    )
    return code.id


def live_reward_name(session: Session, reward_id: int) -> str | None:
    """The reward's name, None when there is none or it is retired (`hooks.reward_name`)."""
    reward = session.get(Reward, reward_id)
    return None if reward is None or reward.deleted_at is not None else reward.name


def reward_code_view(code: RewardCode) -> dict:
    """A code as the shopper and the storefront see it, JSON-ready (`RewardCodeSchema`): for
    webhooks and the copies other domains keep."""
    shown: dict = RewardCodeSchema().dump(code)
    return shown


def code_platforms(session: Session, code_ids: list[int]) -> Mapping[int, Any]:
    """Where the store platform is with each code (only codes a connector mirrors there)."""
    find = hooks().reward_code_platform
    return find(session, code_ids) if find is not None and code_ids else {}


@dataclass(frozen=True)
class RedemptionView:
    """A code as a redemption (`RedemptionSchema`): its row (whose columns read through), its
    reward, and where the store platform is with it — `missing` (no field) when no store
    connector mirrors it."""

    row: RewardCode
    reward: RewardView | None
    platform: dict | object = missing

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


def redemption_view(
    session: Session,
    code: RewardCode,
    tier_names: dict | None = None,
    platforms: Mapping[int, Any] | None = None,
) -> "RedemptionView":
    reward = session.get(Reward, code.reward_id) if code.reward_id is not None else None
    states = code_platforms(session, [code.id]) if platforms is None else platforms
    return RedemptionView(
        code,
        reward_view(session, reward, tier_names) if reward is not None else None,
        states.get(code.id, missing),
    )


# --- checkout ---------------------------------------------------------------------------------


def find_code(session: Session, text: str) -> RewardCode | None:
    normalized = normalize_code(text)
    if not normalized:
        return None
    return session.scalar(select(RewardCode).where(RewardCode.code == normalized))


def code_problem(
    session: Session,
    code: RewardCode | None,
    *,
    customer_id: str | None,
    email: str | None,
    subtotal: int,
    at: datetime,
    excluding_order: int | None = None,
) -> str | None:
    """Why this code can't be used by this customer on this subtotal now, or None."""
    if code is None:
        return "unknown"
    email_normalized = normalize_email(email)
    owner = (code.customer_id is not None and code.customer_id == customer_id) or (
        code.email_normalized is not None and code.email_normalized == email_normalized
    )
    if not owner:
        return "wrong_owner"
    if code.status != ISSUED:
        return code.status  # used / canceled / expired
    if code.expires_at <= at:
        return "expired"
    if subtotal < code.min_order:
        return "below_minimum"
    if code.first_order_only and has_paid_orders(
        session,
        customer_ids=(customer_id, code.customer_id),
        emails=(email_normalized, code.email_normalized),
        excluding_order_pk=excluding_order,
    ):
        return "not_first_order"
    return None


_CODE_REASON_TEXT = {
    "unknown": "No such code.",
    "wrong_owner": "This code belongs to another customer.",
    "used": "This code has already been used.",
    "expired": "This code has expired.",
    "canceled": "This code was canceled.",
    "below_minimum": "The order is below this code's minimum.",
    "not_first_order": "This code is valid on a first order only.",
    "reserved": "This code is held by another checkout in progress.",
}


def discount_for(code: RewardCode, subtotal: int) -> dict:
    """What the code takes off this subtotal (minor units; amounts never exceed it)."""
    if code.kind == "amount_off":
        return {"kind": code.kind, "amount": min(code.amount or 0, subtotal)}
    if code.kind == "percent_off":
        return {
            "kind": code.kind,
            "percent": code.percent,
            "amount": subtotal * (code.percent or 0) // 100,
        }
    if code.kind == "free_product":
        return {"kind": code.kind, "sku": code.sku}
    return {"kind": code.kind}


@dataclass(frozen=True)
class CodeCheck:
    """A code found good at checkout (`ValidationResultSchema`)."""

    code: str
    reward: RewardView | None
    discount: dict  # `discount_for`
    expires_at: datetime
    min_order: int
    reserved_until: datetime | None  # held for the checkout's order until then
    valid: bool = True


def validate_code(
    session: Session,
    text: str,
    customer_id: str,
    subtotal: int,
    *,
    email: str | None = None,
    order_id: str | None = None,
    now: datetime | None = None,
) -> CodeCheck:
    """Check a code at checkout; with `order_id`, also hold it for that order for a while."""
    now = now or utcnow()
    code = find_code(session, text)
    if code is None:
        raise CodeInvalid(_CODE_REASON_TEXT["unknown"], reason="unknown")
    if email is None and code.email_normalized is not None:
        # The storefront may send only the customer id: take the email we know for them.
        email = session.scalar(select(Member.email).where(Member.customer_id == customer_id))
    reason = code_problem(
        session, code, customer_id=customer_id, email=email, subtotal=subtotal, at=now
    )
    if reason is None and order_id is not None:
        minutes = get_settings(session).reservation_minutes
        held = session.execute(
            update(RewardCode)
            .where(
                RewardCode.id == code.id,
                RewardCode.status == ISSUED,
                or_(
                    RewardCode.reserved_order_id.is_(None),
                    RewardCode.reserved_order_id == order_id,
                    RewardCode.reserved_until <= now,
                ),
            )
            .values(reserved_order_id=order_id, reserved_until=now + timedelta(minutes=minutes)),
            execution_options={"synchronize_session": False},
        )
        session.refresh(code)
        if rowcount(held) != 1:
            reason = code.status if code.status != ISSUED else "reserved"
    if reason is not None:
        detail = _CODE_REASON_TEXT[reason]
        if reason == "wrong_owner" and code.customer_id is None and email is None:
            detail = "This code belongs to an email address: send the shopper's `email`."
        raise CodeInvalid(detail, reason=reason)
    reward = session.get(Reward, code.reward_id) if code.reward_id is not None else None
    return CodeCheck(
        code.code,
        reward_view(session, reward) if reward is not None else None,
        discount_for(code, subtotal),
        code.expires_at,
        code.min_order,
        code.reserved_until if order_id else None,
    )


def _order_subtotal(lines: list[dict]) -> int:
    """Goods before discounts (gift card purchases excluded): what a code's minimum applies to,
    since line discounts already include the code's own discount by the time the order is paid."""
    return sum(line["quantity"] * line["unit_price"] for line in lines if not line.get("gift_card"))


class RewardCodeConsumption:
    """Order handler: `order.paid` uses each code listed in `reward_codes` exactly once; a code
    that can't be used is recorded as refused with its reason (the order itself stands).
    `order.canceled` releases the codes a checkout held for that order."""

    def paid(self, ctx: OrderEventContext) -> None:
        texts = ctx.payload.get("reward_codes") or []
        if not texts:
            return
        now = utcnow()
        subtotal = _order_subtotal(ctx.order.lines)
        used = []
        for text in texts:
            code = find_code(ctx.session, text)
            reason = code_problem(
                ctx.session,
                code,
                customer_id=ctx.payload["customer_id"],
                email=ctx.payload.get("email"),
                subtotal=subtotal,
                at=ctx.occurred_at,
                excluding_order=ctx.order.id,
            )
            if reason is None and code is not None:  # (no code: reason "unknown")
                discount = discount_for(code, subtotal)
                values = {
                    "status": USED,
                    "used_at": ctx.occurred_at,
                    "used_order_id": ctx.order.order_id,
                    "used_discount": discount.get("amount"),
                    "reserved_order_id": None,
                    "reserved_until": None,
                }
                consumed = ctx.session.execute(
                    update(RewardCode)
                    .where(
                        RewardCode.id == code.id,
                        RewardCode.status == ISSUED,
                        or_(
                            RewardCode.reserved_order_id.is_(None),
                            RewardCode.reserved_order_id == ctx.order.order_id,
                            RewardCode.reserved_until <= now,
                        ),
                    )
                    .values(values)
                    .returning(RewardCode.id),
                    execution_options={"synchronize_session": False},
                ).first()
                if consumed is not None:
                    for name, value in values.items():  # the row as written: no re-read
                        set_committed_value(code, name, value)
                    used.append(code.code)
                    ctx.effects.append(
                        {
                            "kind": "reward_code_used",
                            "code": code.code,
                            "code_id": code.id,
                            "reward_id": code.reward_id,
                            "discount": discount,
                        }
                    )
                    continue
                ctx.session.refresh(code)
                # Someone else got there first (another order), or a checkout holds it.
                reason = code.status if code.status != ISSUED else "reserved"
            ctx.effects.append(
                {
                    "kind": "reward_code_rejected",
                    "code": code.code if code is not None else normalize_code(text),
                    "reason": reason,
                }
            )
        if used:
            ctx.order.detail = {**(ctx.order.detail or {}), "reward_codes": used}
            # A code used here ends for a store that mirrors it (used at the till, it would
            # still be a live discount online).
            used_ids = [e["code_id"] for e in ctx.effects if e["kind"] == "reward_code_used"]
            for hook in hooks().reward_codes_ended:
                hook(ctx.session, used_ids)
            _report_used(ctx, used_ids)

    def canceled(self, ctx: OrderEventContext) -> None:
        released = (
            ctx.session.execute(
                update(RewardCode)
                .where(
                    RewardCode.reserved_order_id == ctx.order.order_id, RewardCode.status == ISSUED
                )
                .values(reserved_order_id=None, reserved_until=None)
                .returning(RewardCode.code),
                execution_options={"synchronize_session": False},
            )
            .scalars()
            .all()
        )
        for code in sorted(released):
            ctx.effects.append({"kind": "reward_code_released", "code": code})


def _report_used(ctx: OrderEventContext, used_ids: list[int]) -> None:
    """`reward.code_used` for each code this order used."""
    if not webhooks.subscribed(ctx.session, "reward.code_used"):
        return
    codes = {e["code_id"]: e for e in ctx.effects if e["kind"] == "reward_code_used"}
    rows = ctx.session.execute(
        select(RewardCode.id, RewardCode.customer_id, RewardCode.reward_id,
               RewardCode.source_type, RewardCode.used_discount)
        .where(RewardCode.id.in_(used_ids)).order_by(RewardCode.id)
    ).all()  # fmt: skip
    webhooks.emit_many(
        ctx.session,
        "reward.code_used",
        [
            {
                "reward_code_id": row.id,
                "code": codes[row.id]["code"],
                "reward_id": row.reward_id,
                "customer_id": row.customer_id,
                "source": row.source_type,
                "order_id": ctx.order.order_id,
                "discount": row.used_discount,
                "used_at": webhooks.iso(ctx.occurred_at),
            }
            for row in rows
        ],
    )


def warn_expiring_codes(session: Session, now: datetime, days: int) -> int:
    """`reward.code_expiring` for issued codes expiring within `days` of `now`: one
    INSERT ... SELECT, once per code (keyed by its id)."""
    if days <= 0 or not webhooks.subscribed(session, "reward.code_expiring"):
        return 0
    dialect = session.get_bind().dialect.name
    rows = select(
        webhooks.json_object(
            dialect,
            reward_code_id=RewardCode.id,
            code=RewardCode.code,
            reward_id=RewardCode.reward_id,
            customer_id=RewardCode.customer_id,
            source=RewardCode.source_type,
            expires_at=webhooks.iso_sql(dialect, RewardCode.__table__.c.expires_at),
        ).label("data"),
        (literal("reward.code_expiring:") + cast(RewardCode.id, String)).label("dedupe_key"),
    ).where(
        RewardCode.status == ISSUED,
        RewardCode.expires_at > now,
        RewardCode.expires_at <= now + timedelta(days=days),
    )
    return webhooks.emit_selected(session, "reward.code_expiring", rows, at=now)


# --- jobs and hooks ---------------------------------------------------------------------------


def _expire_due(
    session: Session, due: ColumnElement[bool], now: datetime, return_points: bool
) -> int:
    """Expire the codes matching `due` (their members already locked): stock back, and points
    back if the program says so, with one ledger entry each — all set-based."""
    # Lock the codes first: a concurrent cancel waits, then finds them expired.
    session.execute(select(RewardCode.id).where(due).order_by(RewardCode.id).with_for_update())
    for hook in hooks().reward_codes_ended:
        hook(session, select(RewardCode.id).where(due))
    reward_counts = (
        select(RewardCode.reward_id, func.count().label("n"))
        .where(due, RewardCode.reward_id.is_not(None))
        .group_by(RewardCode.reward_id)
        .subquery()
    )
    # Lock the touched rewards in id order, so concurrent runs never deadlock on them.
    session.execute(
        select(Reward.id)
        .where(Reward.id.in_(select(reward_counts.c.reward_id)), Reward.stock.is_not(None))
        .order_by(Reward.id)
        .with_for_update()
    )
    session.execute(
        update(Reward)
        .where(Reward.id == reward_counts.c.reward_id, Reward.stock.is_not(None))
        .values(stock=Reward.stock + reward_counts.c.n),
        execution_options={"synchronize_session": False},
    )
    # Checkout discounts were bought for one cart: their points always come back.
    returns: ColumnElement[bool] = (
        true() if return_points else RewardCode.source_type == CHECKOUT_SOURCE
    )
    refundable = and_(due, RewardCode.points_spent > 0, RewardCode.member_id.is_not(None), returns)
    session.execute(
        ledger.insert_entries(
            select(
                RewardCode.member_id,
                literal("redeem_cancel"),
                RewardCode.points_spent,
                literal(AVAILABLE),
                literal(CODE_SOURCE),
                cast(RewardCode.id, LedgerEntry.source_id.type),
                literal({"reason": "expired"}, JSONType),
                literal(now, LedgerEntry.occurred_at.type),
                literal(now, LedgerEntry.created_at.type),
            ).where(refundable),
        )  # fmt: skip
    )
    sums = (
        select(RewardCode.member_id, func.sum(RewardCode.points_spent).label("points"))
        .where(refundable)
        .group_by(RewardCode.member_id)
        .subquery()
    )
    session.execute(
        update(Member)
        .where(Member.id == sums.c.member_id)
        .values(points_available=Member.points_available + sums.c.points),
        execution_options={"synchronize_session": False},
    )
    result = session.execute(
        update(RewardCode)
        .where(due)
        .values(
            status=EXPIRED,
            expired_at=now,
            reserved_order_id=None,
            reserved_until=None,
            points_returned=case((returns, RewardCode.points_spent), else_=0),
        ),
        execution_options={"synchronize_session": False},
    )
    return rowcount(result)


def expire_codes(
    session: Session, now: datetime, batch_size: int, progress: Progress | None = None
) -> int:
    """Issued codes past their expiry become `expired`; their stock returns, and their points
    too when `expired_codes_return_points` is set (a checkout discount's points always do).
    Idempotent: only `issued` codes are touched.
    First, `reward.code_expiring` for the codes expiring within
    REWARD_CODE_EXPIRY_WARNING_DAYS (`warn_expiring_codes`)."""
    return_points = get_settings(session).expired_codes_return_points
    warn_expiring_codes(session, now, current_app.config["REWARD_CODE_EXPIRY_WARNING_DAYS"])
    session.commit()
    base = and_(RewardCode.status == ISSUED, RewardCode.expires_at <= now)
    changed = 0
    for low, high in in_ranges(session, batch_size, progress):
        due = and_(base, RewardCode.member_id.between(low, high))
        lock_members(
            session,
            Member.id.between(low, high),
            exists().where(due, RewardCode.member_id == Member.id),
        )
        changed += _expire_due(session, due, now, return_points)
    # Codes of non-members (referral friends): no points to return.
    changed += _expire_due(session, and_(base, RewardCode.member_id.is_(None)), now, False)
    session.commit()
    return changed


def _codes_of(member: Member) -> ColumnElement[bool]:
    """The member's codes: theirs, or given to their customer id or mailbox (a friend's
    reward, say, issued before they enrolled)."""
    who = [RewardCode.member_id == member.id]
    if member.customer_id:
        who.append(RewardCode.customer_id == member.customer_id)
    if member.email_normalized:
        who.append(RewardCode.email_normalized == member.email_normalized)
    return or_(*who)


def forget_member_codes(session: Session, member: Member) -> None:
    """Erasure: the member's codes keep their numbers but no longer name the customer."""
    session.execute(
        update(RewardCode).where(_codes_of(member)).values(customer_id=None, email_normalized=None),
        execution_options={"synchronize_session": False},
    )


def export_member_codes(session: Session, member: Member) -> list[dict]:
    """The member's export: every code of theirs, with whom it was for."""
    codes = session.scalars(select(RewardCode).where(_codes_of(member)).order_by(RewardCode.id))
    shown: list[dict] = ExportedCodeSchema(many=True).dump(codes)
    return shown


DEMO_REWARDS = [
    {"name": "10.00 off", "kind": "amount_off", "amount": 1000, "points_cost": 500,
     "min_order": 1000, "code_valid_days": 90},
    {"name": "100.00 off — Rouge exclusive", "kind": "amount_off", "amount": 10000,
     "points_cost": 2500, "min_order": 10000, "stock": 100, "per_member_limit": 1,
     "code_valid_days": 30, "tier_name": "Rouge"},
    {"name": "Free shipping", "kind": "free_shipping", "points_cost": 250, "code_valid_days": 60},
    {"name": "Deluxe sample", "kind": "free_product", "sku": "SAMPLE-DELUXE", "points_cost": 100,
     "per_member_limit": 3, "code_valid_days": 60},
]  # fmt: skip


def seed_demo_rewards(session: Session) -> None:
    """The demo catalog. The Rouge-only reward needs the "Rouge" tier: if it does not exist
    (yet), it is created inactive, to be switched on once the tier exists."""
    rouge = session.scalar(select(Tier.id).where(Tier.name == "Rouge"))
    for item in DEMO_REWARDS:
        values = dict(item)
        tier_name = values.pop("tier_name", None)
        if tier_name is not None:
            values["tier_id"] = rouge
            values["active"] = rouge is not None
            if rouge is None:
                values["description"] = f"Needs tier {tier_name}: set `tier` before activating."
        session.add(Reward(**values))
    session.flush()
