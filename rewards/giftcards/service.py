"""Gift cards: issue, look up, hold, capture, void, refund, disable, expire.

Every movement of value is one immutable `GiftCardTransaction` plus a relative UPDATE of the
card's materialized amounts in the same transaction. Spending is conditional (`WHERE balance >=
:amount`); resolving a hold is conditional on the hold still being active, so it happens at most
once. Lock order is always the card row first, then its holds, so concurrent operations queue
instead of deadlocking.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty import webhooks
from loyalty.audit import record_change
from loyalty.codes import UNAMBIGUOUS, normalize_code
from loyalty.errors import Conflict, InsufficientFunds, NotFound, ValidationFailed
from loyalty.extensions import rowcount
from loyalty.jobs import Progress
from loyalty.orders.service import OrderEventContext
from loyalty.paging import Page, page_by_id
from loyalty.program.models import Program
from loyalty.program.service import check_currency
from loyalty.types import MAX_RUNNING_TOTAL, utcnow
from rewards.giftcards import codes
from rewards.giftcards.models import (  # noqa: F401 - MAX_HOLD_SECONDS re-exported
    MAX_HOLD_SECONDS,
    GiftCard,
    GiftCardHold,
    GiftCardTransaction,
)
from rewards.giftcards.schemas import GiftCardSchema
from rewards.giftcards.throttle import CodeGuard

DEFAULT_HOLD_SECONDS = 3600

_NO_SYNC = {"synchronize_session": False}
# UPDATE ... RETURNING the row as an entity: loaded objects take the values as written.
_RETURNED = {"synchronize_session": False, "populate_existing": True}


@dataclass
class Issued:
    card: GiftCard
    code: str  # the only moment the full code exists outside the holder's hands


# --- reading -----------------------------------------------------------------------------------


def is_live(card: GiftCard, now: datetime) -> bool:
    """Spendable: active and not past its expiry."""
    return card.status == "active" and (card.expires_at is None or card.expires_at > now)


def effective_status(card: GiftCard, now: datetime) -> str:
    if card.status == "active" and not is_live(card, now):
        return "expired"  # past expiry; the expire-gift-cards job will write it down
    return card.status


@dataclass(frozen=True)
class CardView:
    """A card as the API shows it (`GiftCardSchema`): its row (whose columns read through)
    and its status at the moment asked (`effective_status`)."""

    row: GiftCard
    status: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


@dataclass(frozen=True)
class IssuedCardView(CardView):
    """A card just issued, with its code as the shopper types it (`IssuedGiftCardSchema`)."""

    code: str


@dataclass(frozen=True)
class CardDetail(CardView):
    """A card with its transactions, oldest first (`GiftCardDetailSchema`)."""

    transactions: list[GiftCardTransaction]


@dataclass(frozen=True)
class HoldView:
    """A hold and its card (`GiftCardHoldSchema`); the hold's columns read through."""

    row: GiftCardHold
    card: GiftCard

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


def card_view(card: GiftCard, now: datetime) -> CardView:
    return CardView(card, effective_status(card, now))


def issued_view(issued: "Issued", now: datetime) -> IssuedCardView:
    card = issued.card
    return IssuedCardView(card, effective_status(card, now), codes.display(issued.code))


def hold_view(hold: GiftCardHold, card: GiftCard) -> HoldView:
    return HoldView(hold, card)


def get_card(session: Session, card_id: int) -> GiftCard:
    card = session.get(GiftCard, card_id)
    if card is None:
        raise NotFound(f"No gift card {card_id}.")
    return card


def card_detail(session: Session, card: GiftCard, now: datetime) -> CardDetail:
    transactions = session.scalars(
        select(GiftCardTransaction)
        .where(GiftCardTransaction.card_id == card.id)
        .order_by(GiftCardTransaction.id)
    )
    return CardDetail(card, effective_status(card, now), list(transactions))


def list_cards(
    session: Session,
    now: datetime,
    *,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    source: str | None = None,
    last4_or_id: str | None = None,
) -> Page:
    """A page of cards, newest first (`GiftCardPageSchema`); `last4_or_id` keeps the cards
    whose code ends in those 4 characters (typed as a shopper would) or with that id."""
    query = select(GiftCard)
    if last4_or_id is not None:
        query = query.where(_last4_or_id(last4_or_id))
    not_expired = or_(GiftCard.expires_at.is_(None), GiftCard.expires_at > now)
    if status == "active":
        query = query.where(GiftCard.status == "active", not_expired)
    elif status == "expired":
        query = query.where(
            or_(GiftCard.status == "expired", and_(GiftCard.status == "active", ~not_expired))
        )
    elif status == "disabled":
        query = query.where(GiftCard.status == "disabled")
    if source is not None:
        query = query.where(GiftCard.source == source)
    page = page_by_id(session, query, GiftCard.id, limit, cursor)
    return page.map(lambda card: card_view(card, now))


def _last4_or_id(text: str) -> ColumnElement[bool]:
    text = text.strip()
    matches = []
    last4 = normalize_code(text)
    if len(last4) == 4 and set(last4) <= set(UNAMBIGUOUS):
        matches.append(GiftCard.last4 == last4)
    if text.isdigit() and 0 < int(text) < 2**63:
        matches.append(GiftCard.id == int(text))
    return or_(false(), *matches)


def find_live_card(
    session: Session, code_text: str, secrets: list[str], now: datetime
) -> GiftCard | None:
    """The live card with this code, or None — unknown, malformed, disabled and expired alike."""
    code = codes.parse(code_text)
    if code is None:
        return None
    hashes = codes.candidate_hashes(code, secrets)
    card = session.scalar(select(GiftCard).where(GiftCard.code_hash.in_(hashes)))
    if card is None or not is_live(card, now):
        return None
    if card.code_hash != hashes[0]:
        card.code_hash = hashes[0]  # found under a retired secret: move it to the newest
    return card


def _no_live_card(guard: CodeGuard) -> NotFound:
    """The one answer to any code that is not a live card, wherever a code is taken."""
    guard.failed()
    return NotFound("No live gift card has this code.")


def lookup(
    session: Session, guard: CodeGuard, code_text: str, secrets: list[str], now: datetime
) -> CardView:
    """Balance check by code, within `guard`'s counts (rewards/giftcards/throttle.py); what a
    shopper may see of the card is `GiftCardLookupResultSchema`'s."""
    guard.check()
    card = find_live_card(session, code_text, secrets, now)
    if card is None:
        raise _no_live_card(guard)
    return card_view(card, now)


# --- issuing -----------------------------------------------------------------------------------


def _record(session: Session, card_id: int, kind: str, amount: int, balance_change: int,
            actor: str, *, hold_id: int | None = None, order_id: str | None = None,
            detail: dict | None = None) -> None:  # fmt: skip
    session.add(
        GiftCardTransaction(
            card_id=card_id,
            kind=kind,
            amount=amount,
            balance_change=balance_change,
            hold_id=hold_id,
            order_id=order_id,
            actor=actor,
            detail=detail or {},
        )
    )


def issue_card(
    session: Session,
    program: Program,
    *,
    amount: int,
    currency: str,
    secrets: list[str],
    actor: str,
    source: str = "admin",
    bonus_amount: int = 0,
    expires_at: datetime | None = None,
    note: str | None = None,
    now: datetime,
    detail: dict | None = None,
) -> Issued:
    check_currency(program, currency)
    if amount + bonus_amount <= 0:
        raise ValidationFailed(errors={"amount": ["A card needs some value."]})
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed(errors={"expires_at": ["Must be in the future."]})
    # 80 random bits: a collision is astronomically unlikely, but not impossible.
    for _attempt in range(3):
        code = codes.new_code()
        card = GiftCard(
            code_hash=codes.code_hash(code, secrets[-1]),
            last4=code[-4:],
            currency=currency,
            status="active",
            source=source,
            paid_amount=amount,
            bonus_amount=bonus_amount,
            refunded_amount=0,
            adjusted_amount=0,
            captured_amount=0,
            held_amount=0,
            expired_amount=0,
            balance=amount + bonus_amount,
            expires_at=expires_at,
            note=note,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(card)
                session.flush()
            break
        except IntegrityError:
            continue
    else:
        raise RuntimeError("could not draw an unused gift card code")
    _record(
        session, card.id, "issue", card.balance, card.balance, actor,
        detail={"paid": amount, "bonus": bonus_amount, "source": source, **(detail or {})},
    )  # fmt: skip
    session.flush()
    # Never the code: it is shown once, to the issuer, and stored only as a keyed hash.
    webhooks.emit(
        session,
        "gift_card.issued",
        {
            "gift_card_id": card.id,
            "last4": card.last4,
            "currency": card.currency,
            "amount": amount,
            "bonus_amount": bonus_amount,
            "balance": card.balance,
            "source": source,
            "expires_at": webhooks.iso(expires_at),
            **(detail or {}),
        },
        at=now,
    )
    return Issued(card, code)


def issue_card_by_admin(
    session: Session,
    program: Program,
    *,
    secrets: list[str],
    actor: str,
    now: datetime,
    **data: Any,
) -> Issued:
    """`issue_card` for an admin (`POST /v1/gift-cards`), audited; the cards Stripe sells and
    the demo card are issued without an audit row."""
    issued = issue_card(session, program, secrets=secrets, actor=actor, now=now, **data)
    _audit(
        session,
        "gift_card.issue",
        issued.card.id,
        GiftCardSchema().dump(card_view(issued.card, now)),
        actor,
    )
    return issued


def _audit(session: Session, action: str, card_id: int, after: dict, actor: str) -> None:
    record_change(session, action, "gift_card", card_id, None, after, actor=actor)


# --- holds -------------------------------------------------------------------------------------


def _refresh(session: Session, card: GiftCard) -> GiftCard:
    session.refresh(card)
    return card


def create_hold(
    session: Session,
    *,
    guard: CodeGuard,
    code_text: str,
    amount: int,
    order_id: str,
    secrets: list[str],
    now: datetime,
    actor: str,
    expires_in: int = DEFAULT_HOLD_SECONDS,
) -> HoldView:
    guard.check()
    card = find_live_card(session, code_text, secrets, now)
    if card is None:
        raise _no_live_card(guard)
    reserved = session.execute(
        update(GiftCard)
        .where(
            GiftCard.id == card.id,
            GiftCard.status == "active",
            or_(GiftCard.expires_at.is_(None), GiftCard.expires_at > now),
            GiftCard.balance >= amount,
        )
        .values(balance=GiftCard.balance - amount, held_amount=GiftCard.held_amount + amount),
        execution_options=_NO_SYNC,
    )
    _refresh(session, card)
    if rowcount(reserved) != 1:
        if not is_live(card, now):
            raise _no_live_card(guard)
        raise InsufficientFunds(
            f"The card has {card.balance} available; {amount} was asked.",
            available=card.balance,
            currency=card.currency,
        )
    hold = GiftCardHold(
        card_id=card.id,
        amount=amount,
        captured_amount=0,
        order_id=order_id,
        status="active",
        created_at=now,
        expires_at=now + timedelta(seconds=expires_in),
    )
    session.add(hold)
    session.flush()
    _record(session, card.id, "hold", amount, -amount, actor, hold_id=hold.id, order_id=order_id)
    session.flush()
    return hold_view(hold, card)


def get_hold(session: Session, hold_id: int) -> GiftCardHold:
    hold = session.get(GiftCardHold, hold_id)
    if hold is None:
        raise NotFound(f"No gift card hold {hold_id}.")
    return hold


def _lock_card(session: Session, card_id: int) -> None:
    session.execute(select(GiftCard.id).where(GiftCard.id == card_id).with_for_update())


def _resolve(
    session: Session, hold: GiftCardHold, capture: int, now: datetime, actor: str
) -> HoldView:
    """Capture `capture` of the hold (0 = void) and release the rest — once, or Conflict.

    Nothing is written before the Conflict (the card's row lock aside); the UPDATEs return the
    rows they wrote, so neither the hold nor the card is read again."""
    _lock_card(session, hold.card_id)
    resolved = session.execute(
        update(GiftCardHold)
        .where(
            GiftCardHold.id == hold.id,
            GiftCardHold.status == "active",
            GiftCardHold.expires_at > now,
        )
        .values(
            status="captured" if capture else "voided", captured_amount=capture, resolved_at=now
        )
        .returning(GiftCardHold),
        execution_options=_RETURNED,
    ).first()
    if resolved is None:
        session.refresh(hold)
        state = "expired" if hold.status == "active" else hold.status
        raise Conflict(f"Hold {hold.id} is already {state}.", hold_status=state)
    release = hold.amount - capture
    card = session.scalars(
        update(GiftCard)
        .where(GiftCard.id == hold.card_id)
        .values(
            held_amount=GiftCard.held_amount - hold.amount,
            captured_amount=GiftCard.captured_amount + capture,
            balance=GiftCard.balance + release,
        )
        .returning(GiftCard),
        execution_options=_RETURNED,
    ).one()
    if capture:
        _record(session, hold.card_id, "capture", capture, 0, actor,
                hold_id=hold.id, order_id=hold.order_id)  # fmt: skip
    if release:
        _record(session, hold.card_id, "release", release, release, actor,
                hold_id=hold.id, order_id=hold.order_id)  # fmt: skip
    session.flush()
    if capture:
        _report_capture(session, hold, card, capture, now)
    elif release:
        _clear_low_balance(session, card)
    return hold_view(hold, card)


def _low_balance_threshold() -> int:
    threshold: int = current_app.config["GIFT_CARD_LOW_BALANCE"]
    return threshold


def _report_capture(
    session: Session, hold: GiftCardHold, card: GiftCard, capture: int, now: datetime
) -> None:
    """`gift_card.redeemed` for a capture, and `gift_card.low_balance` when it leaves the
    balance below GIFT_CARD_LOW_BALANCE: once per crossing (the card keeps when it was sent,
    `low_balance_at`, until its balance is back at or above the threshold). The card's row
    is locked: concurrent captures of one card report one crossing."""
    webhooks.emit(
        session,
        "gift_card.redeemed",
        {
            "gift_card_id": card.id,
            "last4": card.last4,
            "currency": card.currency,
            "amount": capture,
            "balance": card.balance,
            "hold_id": hold.id,
            "order_id": hold.order_id,
            "captured_at": webhooks.iso(now),
        },
        at=now,
    )
    threshold = _low_balance_threshold()
    if card.balance >= threshold:
        _clear_low_balance(session, card)
        return
    if threshold <= 0 or card.low_balance_at is not None:
        return
    if not webhooks.subscribed(session, "gift_card.low_balance"):
        return
    marked = session.execute(
        update(GiftCard)
        .where(GiftCard.id == card.id, GiftCard.low_balance_at.is_(None))
        .values(low_balance_at=now)
        .returning(GiftCard.id),
        execution_options=_NO_SYNC,
    ).first()
    if marked is None:
        return
    card.low_balance_at = now  # as written (no re-read)
    session.flush()
    webhooks.emit(
        session,
        "gift_card.low_balance",
        {
            "gift_card_id": card.id,
            "last4": card.last4,
            "currency": card.currency,
            "balance": card.balance,
            "threshold": threshold,
            "occurred_at": webhooks.iso(now),
        },
        at=now,
    )


def _clear_low_balance(session: Session, card: GiftCard) -> None:
    """A card back at or above the threshold may cross it again (and be reported again)."""
    if card.low_balance_at is None or card.balance < _low_balance_threshold():
        return
    session.execute(
        update(GiftCard).where(GiftCard.id == card.id).values(low_balance_at=None),
        execution_options=_NO_SYNC,
    )
    session.expire(card, ["low_balance_at"])


def capture_hold(
    session: Session, hold_id: int, amount: int | None, now: datetime, actor: str
) -> HoldView:
    hold = get_hold(session, hold_id)
    capture = hold.amount if amount is None else amount
    if capture > hold.amount:
        raise ValidationFailed(
            errors={"amount": [f"More than the {hold.amount} held."]}, held=hold.amount
        )
    return _resolve(session, hold, capture, now, actor)


def void_hold(session: Session, hold_id: int, now: datetime, actor: str) -> HoldView:
    return _resolve(session, get_hold(session, hold_id), 0, now, actor)


# --- refunds and disabling ---------------------------------------------------------------------


def refund(
    session: Session, card_id: int, amount: int, order_id: str, now: datetime, actor: str
) -> CardView:
    """Credit back what an order captured from this card (never more than it captured)."""
    card = session.get(GiftCard, card_id, with_for_update=True)
    if card is None:
        raise NotFound(f"No gift card {card_id}.")
    if not is_live(card, now):
        raise Conflict(f"Gift card {card_id} is {effective_status(card, now)}.")
    moved = dict(
        session.execute(
            select(GiftCardTransaction.kind, func.sum(GiftCardTransaction.amount))
            .where(
                GiftCardTransaction.card_id == card_id,
                GiftCardTransaction.order_id == order_id,
                GiftCardTransaction.kind.in_(("capture", "refund")),
            )
            .group_by(GiftCardTransaction.kind)
        ).all()
    )
    refundable = int(moved.get("capture") or 0) - int(moved.get("refund") or 0)
    if amount > refundable:
        raise ValidationFailed(
            f"Order {order_id!r} has {refundable} left to refund to this card.",
            errors={"amount": [f"More than the {refundable} left to refund for this order."]},
            refundable=refundable,
        )
    session.execute(
        update(GiftCard)
        .where(GiftCard.id == card_id)
        .values(
            refunded_amount=GiftCard.refunded_amount + amount, balance=GiftCard.balance + amount
        ),
        execution_options=_NO_SYNC,
    )
    _record(session, card_id, "refund", amount, amount, actor, order_id=order_id)
    session.flush()
    _clear_low_balance(session, _refresh(session, card))
    view = card_view(card, now)
    after = {"amount": amount, "order_id": order_id, "balance": view.balance}
    _audit(session, "gift_card.refund", card_id, after, actor)
    return view


def adjust(
    session: Session, card_id: int, amount: int, reason: str, now: datetime, actor: str
) -> CardView:
    """An admin correction, signed, with its reason: an `adjust` transaction. A debit only if
    what can be spent at this instant covers it — `balance` is already net of active holds,
    so a debit never eats into money an order holds. The card's row is locked first, as for
    a refund, so a disable running at the same time comes wholly before or after."""
    card = session.get(GiftCard, card_id, with_for_update=True)
    if card is None:
        raise NotFound(f"No gift card {card_id}.")
    if not is_live(card, now):
        raise Conflict(f"Gift card {card_id} is {effective_status(card, now)}.")
    covered = [GiftCard.balance >= -amount]
    if amount > 0:  # repeated credits stop far below a BIGINT (compared without overflowing)
        headroom = MAX_RUNNING_TOTAL - amount
        covered = [GiftCard.balance <= headroom, GiftCard.adjusted_amount <= headroom]
    changed = session.execute(
        update(GiftCard)
        .where(GiftCard.id == card_id, *covered)
        .values(
            adjusted_amount=GiftCard.adjusted_amount + amount, balance=GiftCard.balance + amount
        ),
        execution_options=_NO_SYNC,
    )
    _refresh(session, card)
    if rowcount(changed) != 1 and amount > 0:
        raise ValidationFailed(
            f"{amount} more would take the card's balance past {MAX_RUNNING_TOTAL}.",
            errors={"amount": [f"Balances stay at or below {MAX_RUNNING_TOTAL}."]},
        )
    if rowcount(changed) != 1:
        raise InsufficientFunds(
            f"The card has {card.balance} available; {-amount} was asked.",
            available=card.balance,
        )
    _record(session, card_id, "adjust", abs(amount), amount, actor, detail={"reason": reason})
    session.flush()
    _clear_low_balance(session, card)
    view = card_view(card, now)
    after = {"amount": amount, "reason": reason, "balance": view.balance}
    _audit(session, "gift_card.adjust", card_id, after, actor)
    return view


def disable(session: Session, card_id: int, now: datetime, actor: str) -> CardView:
    """For good: the card is never spendable again and its active holds are released
    (audited, even when the card was disabled already)."""
    view = _disable(session, card_id, now, actor)
    _audit(session, "gift_card.disable", card_id, GiftCardSchema().dump(view), actor)
    return view


def _disable(session: Session, card_id: int, now: datetime, actor: str) -> CardView:
    card = session.get(GiftCard, card_id, with_for_update=True)
    if card is None:
        raise NotFound(f"No gift card {card_id}.")
    if card.status == "disabled":
        return card_view(card, now)
    released = session.execute(
        update(GiftCardHold)
        .where(GiftCardHold.card_id == card_id, GiftCardHold.status == "active")
        .values(status="voided", resolved_at=now)
        .returning(GiftCardHold.id, GiftCardHold.amount, GiftCardHold.order_id),
        execution_options=_NO_SYNC,
    ).all()
    total = sum(row.amount for row in released)
    session.execute(
        update(GiftCard)
        .where(GiftCard.id == card_id)
        .values(
            status="disabled",
            disabled_at=now,
            held_amount=GiftCard.held_amount - total,
            balance=GiftCard.balance + total,
        ),
        execution_options=_NO_SYNC,
    )
    for row in released:
        _record(session, card_id, "release", row.amount, row.amount, actor,
                hold_id=row.id, order_id=row.order_id, detail={"reason": "disabled"})  # fmt: skip
    session.flush()
    return card_view(_refresh(session, card), now)


# --- order events ------------------------------------------------------------------------------


def _hold_ids(values: list | None) -> list[int]:
    """Hold ids as sent (strings); anything that can't be one becomes -1, reported not found."""
    ids = []
    for value in values or []:
        ids.append(int(value) if str(value).isdigit() and 0 < int(value) < 2**63 else -1)
    return ids


class GiftCardHolds:
    """`order.paid` captures the order's listed holds; `order.canceled` voids its holds."""

    def paid(self, ctx: OrderEventContext) -> None:
        listed = ctx.payload.get("gift_card_holds") or []
        for raw, hold_id in zip(listed, _hold_ids(listed), strict=True):
            ctx.effects.append(self._apply(ctx, raw, hold_id, capture=True))

    def canceled(self, ctx: OrderEventContext) -> None:
        listed = _hold_ids(ctx.payload.get("gift_card_holds"))
        of_order = ctx.session.scalars(
            select(GiftCardHold.id).where(
                GiftCardHold.order_id == ctx.order.order_id, GiftCardHold.status == "active"
            )
        ).all()
        for hold_id in dict.fromkeys([*listed, *of_order]):
            ctx.effects.append(self._apply(ctx, str(hold_id), hold_id, capture=False))

    @staticmethod
    def _apply(ctx: OrderEventContext, raw: str, hold_id: int, *, capture: bool) -> dict:
        kind = "gift_card_capture" if capture else "gift_card_void"
        effect = {"kind": kind, "hold_id": raw}
        hold = ctx.session.get(GiftCardHold, hold_id) if hold_id > 0 else None
        if hold is None:
            return {**effect, "status": "failed", "reason": "not_found"}
        if hold.order_id != ctx.order.order_id:
            return {**effect, "status": "failed", "reason": "other_order"}
        actor = f"event:{ctx.event_id}"
        try:
            # Holds resolve against the clock, not the event's (possibly back-dated) time. No
            # savepoint: a refused hold raises before `_resolve` writes anything.
            amount = hold.amount if capture else 0
            result = _resolve(ctx.session, hold, amount, utcnow(), actor)
        except Conflict as error:
            return {
                **effect,
                "status": "failed",
                "reason": error.extra.get("hold_status", "conflict"),
            }
        return {**effect, "status": result.status, "amount": result.captured_amount}


# --- jobs --------------------------------------------------------------------------------------


def expire_holds(
    session: Session, now: datetime, batch_size: int, progress: Progress | None = None
) -> int:
    """Release holds past their expiry, a batch per transaction; safe to run anywhere at once."""
    changed = 0
    due = and_(GiftCardHold.status == "active", GiftCardHold.expires_at <= now)
    while True:
        hold_ids = session.scalars(
            select(GiftCardHold.id).where(due).order_by(GiftCardHold.id).limit(batch_size)
        ).all()
        if not hold_ids:
            return changed
        card_ids = select(GiftCardHold.card_id).where(GiftCardHold.id.in_(hold_ids))
        session.execute(  # card rows first, as every other operation does
            select(GiftCard.id).where(GiftCard.id.in_(card_ids)).order_by(GiftCard.id)
            .with_for_update()
        )  # fmt: skip
        expired = session.execute(
            update(GiftCardHold)
            .where(GiftCardHold.id.in_(hold_ids), due)
            .values(status="expired", resolved_at=now)
            .returning(
                GiftCardHold.id, GiftCardHold.card_id, GiftCardHold.amount, GiftCardHold.order_id
            ),
            execution_options=_NO_SYNC,
        ).all()
        if expired:
            session.execute(
                insert(GiftCardTransaction),
                [
                    {"card_id": row.card_id, "kind": "release", "amount": row.amount,
                     "balance_change": row.amount, "hold_id": row.id, "order_id": row.order_id,
                     "actor": "job:expire-holds", "detail": {"reason": "expired"},
                     "created_at": now}
                    for row in expired
                ],
            )  # fmt: skip
            totals: dict[int, int] = {}
            for row in expired:
                totals[row.card_id] = totals.get(row.card_id, 0) + row.amount
            for card_id, total in totals.items():
                session.execute(
                    update(GiftCard)
                    .where(GiftCard.id == card_id)
                    .values(
                        held_amount=GiftCard.held_amount - total,
                        balance=GiftCard.balance + total,
                        # back at or above the threshold: it may cross (and be reported) again
                        low_balance_at=case(
                            (GiftCard.balance + total >= _low_balance_threshold(), None),
                            else_=GiftCard.low_balance_at,
                        ),
                    ),
                    execution_options=_NO_SYNC,
                )
        session.commit()
        changed += len(expired)
        if progress:
            progress(0)


def expire_cards(
    session: Session, now: datetime, batch_size: int, progress: Progress | None = None
) -> int:
    """Cards past their expiry lose what is left (an `expire` transaction) once no hold is open."""
    changed = 0
    due = and_(GiftCard.status == "active", GiftCard.expires_at <= now, GiftCard.held_amount == 0)
    while True:
        card_ids = session.scalars(
            select(GiftCard.id).where(due).order_by(GiftCard.id).limit(batch_size)
            .with_for_update(skip_locked=True)
        ).all()  # fmt: skip
        if not card_ids:
            return changed
        in_batch = and_(GiftCard.id.in_(card_ids), due)
        session.execute(
            insert(GiftCardTransaction).from_select(
                ["card_id", "kind", "amount", "balance_change", "actor", "detail", "created_at"],
                select(
                    GiftCard.id,
                    literal("expire"),
                    GiftCard.balance,
                    -GiftCard.balance,
                    literal("job:expire-gift-cards"),
                    literal({"reason": "expired"}, GiftCardTransaction.detail.type),
                    literal(now, GiftCardTransaction.created_at.type),
                ).where(in_batch, GiftCard.balance > 0),
            )
        )
        result = session.execute(
            update(GiftCard)
            .where(in_batch)
            .values(
                status="expired",
                expired_amount=GiftCard.expired_amount + GiftCard.balance,
                balance=0,
            ),
            execution_options=_NO_SYNC,
        )
        session.commit()
        changed += rowcount(result)


def find_card_drift(session: Session) -> list[str]:
    """Every card whose stored `balance` is not the sum of its transactions' `balance_change`,
    or whose `held_amount` is not the sum of its active holds (the database checks the rest:
    balance = issued + bonus + refunds + adjustments − captured − held − expired)."""
    moved = (
        select(
            GiftCardTransaction.card_id,
            func.sum(GiftCardTransaction.balance_change).label("total"),
        )
        .group_by(GiftCardTransaction.card_id)
        .subquery()
    )
    held = (
        select(GiftCardHold.card_id, func.sum(GiftCardHold.amount).label("total"))
        .where(GiftCardHold.status == "active")
        .group_by(GiftCardHold.card_id)
        .subquery()
    )
    from_transactions = func.coalesce(moved.c.total, literal(0))
    from_holds = func.coalesce(held.c.total, literal(0))
    rows = session.execute(
        select(GiftCard.id, GiftCard.balance, from_transactions, GiftCard.held_amount, from_holds)
        .outerjoin(moved, moved.c.card_id == GiftCard.id)
        .outerjoin(held, held.c.card_id == GiftCard.id)
        .where(or_(GiftCard.balance != from_transactions, GiftCard.held_amount != from_holds))
        .order_by(GiftCard.id)
    )
    return [
        f"gift card {card_id}: stored balance/held {balance}/{held_amount} "
        f"!= transactions/active holds {int(total)}/{int(holds)}"
        for card_id, balance, total, held_amount, holds in rows
    ]


def any_cards(session: Session) -> bool:
    """Cards hold money in the program currency: it can't change once one exists."""
    return bool(session.scalar(select(exists().where(GiftCard.id.is_not(None)))))
