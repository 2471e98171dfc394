"""Buying a gift card with Stripe Checkout: start a session, issue the card once it is paid."""

import logging
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty import email
from loyalty.dates import iso
from loyalty.errors import Conflict, NotFound
from loyalty.extensions import rowcount
from loyalty.lookalikes import GMAIL_DOMAINS, normalize_email
from loyalty.program.models import Program
from loyalty.program.service import check_currency
from rewards.giftcards import codes, service
from rewards.giftcards.models import GiftCard, GiftCardPurchase
from rewards.giftcards.payments import PaymentGateway
from rewards.giftcards.schemas import PurchaseExportSchema

log = logging.getLogger(__name__)

MARKER = "loyalty_gift_card"  # metadata key that marks a Checkout session as ours
PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


def start_checkout(session: Session, gateway: PaymentGateway, program: Program, data: dict) -> dict:
    check_currency(program, data["currency"])
    metadata = {MARKER: "1", "purchaser_email": data["purchaser_email"]}
    if data.get("recipient_email"):
        metadata["recipient_email"] = data["recipient_email"]
    checkout = gateway.create_checkout_session(
        amount=data["amount"],
        currency=data["currency"],
        purchaser_email=data["purchaser_email"],
        success_url=data["success_url"],
        cancel_url=data["cancel_url"],
        metadata=metadata,
    )
    session.add(
        GiftCardPurchase(
            session_id=checkout.id,
            amount=data["amount"],
            currency=data["currency"],
            purchaser_email=data["purchaser_email"],
            recipient_email=data.get("recipient_email"),
            status="open",
        )
    )
    session.flush()
    return {"session_id": checkout.id, "url": checkout.url}


def _purchase_for(session: Session, checkout: dict) -> GiftCardPurchase | None:
    """Our record of this session; rebuilt from its metadata if our commit was lost."""
    query = select(GiftCardPurchase).where(GiftCardPurchase.session_id == checkout["id"])
    purchase = session.scalar(query)
    metadata = checkout.get("metadata") or {}
    if purchase is not None or metadata.get(MARKER) != "1":
        return purchase
    try:
        with session.begin_nested():
            session.add(
                GiftCardPurchase(
                    session_id=checkout["id"],
                    amount=checkout["amount_total"],
                    currency=checkout["currency"].upper(),
                    purchaser_email=metadata.get("purchaser_email") or "",
                    recipient_email=metadata.get("recipient_email"),
                    status="open",
                )
            )
            session.flush()
    except IntegrityError:
        pass  # a concurrent delivery of the same event recorded it first
    return session.scalar(query)


def handle_stripe_event(
    session: Session, program: Program, event: dict, secrets: list[str], now: datetime
) -> dict:
    """Issue the card of a paid session exactly once, however often Stripe repeats the event."""
    kind = event.get("type")
    if kind not in PAID_EVENTS:
        return {"received": True, "result": "ignored"}
    checkout = event["data"]["object"]
    if kind == "checkout.session.completed" and checkout.get("payment_status") != "paid":
        return {"received": True, "result": "awaiting_payment"}
    purchase = _purchase_for(session, checkout)
    if purchase is None:
        return {"received": True, "result": "ignored"}
    # The one transition open → completed; a repeat (even a concurrent one) finds it done.
    claimed = session.execute(
        update(GiftCardPurchase)
        .where(GiftCardPurchase.id == purchase.id, GiftCardPurchase.status == "open")
        .values(status="completed", completed_at=now),
        execution_options={"synchronize_session": False},
    )
    if rowcount(claimed) != 1:
        return {"received": True, "result": "duplicate"}
    issued = service.issue_card(
        session,
        program,
        # The verified session is authoritative for what was paid.
        amount=checkout["amount_total"],
        currency=checkout["currency"].upper(),
        secrets=secrets,
        actor=f"stripe:{event.get('id')}",
        source="stripe",
        now=now,
        detail={"checkout_session": checkout["id"]},
    )
    session.execute(
        update(GiftCardPurchase)
        .where(GiftCardPurchase.id == purchase.id)
        .values(
            card_id=issued.card.id,
            sealed_code=codes.seal(issued.code, checkout["id"], secrets[-1]),
        ),
        execution_options={"synchronize_session": False},
    )
    session.flush()
    if purchase.recipient_email:
        _deliver_to_recipient(session, purchase, issued, now)
    log.info("gift card %s issued for checkout session %s", issued.card.id, checkout["id"])
    return {"received": True, "result": "issued", "card_id": issued.card.id}


def _deliver_to_recipient(
    session: Session, purchase: GiftCardPurchase, issued: "service.Issued", now: datetime
) -> None:
    """The built-in email channel (when on) sends the card, with its code, to the recipient
    the purchaser named: transactional mail (sent whatever unsubscribe), once per purchase.
    The code waits in the outbox sealed and is forgotten once sent."""
    card = issued.card
    data = {
        "gift_card_id": card.id,
        "last4": card.last4,
        "currency": card.currency,
        "balance": card.balance,
        "expires_at": iso(card.expires_at) if card.expires_at else None,
    }
    email.queue_to(session, purchase.recipient_email or "", "gift_card", data,
                   secret=issued.code, dedupe_key=f"gift_card:{purchase.id}", at=now)  # fmt: skip


def reveal_code(
    session: Session, session_id: str, secrets: list[str], now: datetime
) -> "service.IssuedCardView":
    """The bought card's code, once (`GiftCardRevealedCodeSchema`): the storefront shows or
    sends it; then it is gone."""
    purchase = session.scalar(
        select(GiftCardPurchase)
        .where(GiftCardPurchase.session_id == session_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if purchase is None:
        raise NotFound(f"No gift card checkout session {session_id!r}.")
    if purchase.card_id is None:
        raise Conflict("Stripe has not reported this session paid yet.", reason="awaiting_payment")
    if purchase.sealed_code is None:
        raise Conflict("This card's code was already collected.", reason="already_revealed")
    card = session.get_one(GiftCard, purchase.card_id)
    code = codes.unseal(purchase.sealed_code, session_id, secrets, card.code_hash)
    if code is None:
        raise Conflict("The secret that sealed this code is no longer configured.",
                       reason="secret_retired")  # fmt: skip
    purchase.sealed_code = None
    purchase.code_revealed_at = now
    session.flush()
    return service.IssuedCardView(card, service.effective_status(card, now), codes.display(code))


def _of_mailbox(session: Session, mailbox: str) -> list[GiftCardPurchase]:
    """Purchases by or for `mailbox` (normalized), however the address was spelled."""
    domain = mailbox.rpartition("@")[2]
    domains = GMAIL_DOMAINS if domain in GMAIL_DOMAINS else {domain}
    ends = [
        func.lower(column).endswith("@" + name, autoescape=True)
        for column in (GiftCardPurchase.purchaser_email, GiftCardPurchase.recipient_email)
        for name in domains
    ]
    rows = session.scalars(select(GiftCardPurchase).where(or_(*ends)).order_by(GiftCardPurchase.id))
    return [
        p for p in rows
        if mailbox in (normalize_email(p.purchaser_email), normalize_email(p.recipient_email))
    ]  # fmt: skip


def forget_purchaser(session: Session, member) -> None:
    """`member_erased` hook: purchases by (or for) the member's mailbox lose the address."""
    if not member.email_normalized:
        return
    for purchase in _of_mailbox(session, member.email_normalized):
        if normalize_email(purchase.purchaser_email) == member.email_normalized:
            purchase.purchaser_email = ""  # required: the purchase stays, its buyer is gone
        if normalize_email(purchase.recipient_email) == member.email_normalized:
            purchase.recipient_email = None
    session.flush()


def export_purchases(session: Session, member) -> list[dict]:
    """The member's export: gift card purchases by (or for) their mailbox."""
    if not member.email_normalized:
        return []
    return PurchaseExportSchema(many=True).dump(_of_mailbox(session, member.email_normalized))
