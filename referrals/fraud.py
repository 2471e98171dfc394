"""Fraud rules: each one a stated reason on the referral.

Blocking rules (the referral is refused — 422 on a claim, `rejected` on an order):
`self_referral`, `already_referred`, `not_new_customer`, `limit_reached` (and `missing_ip`, see
below).
Suspicions (the referral waits for an admin in `review`): `same_ip_as_referrer` — the friend
writes from an IP the referrer's own orders came from. A shared office or household IP is
common, so it is a reason to look, not to refuse. `confusable_email`, `confusable_name` — the
friend's address or name mixes Latin with characters made to pass for it, or looks like the
referrer's without being it (`аna@gmail.com` with a Cyrillic `а`): maybe someone else, so not
merged, but not passed either (see `loyalty.lookalikes`). `missing_ip` — a new referral
without the friend's IP cannot be counted against the per-IP cap; the program's `missing_ip`
says whether that is refused (the blocking reason `missing_ip`) or reviewed.

IPs arrive canonical (`loyalty.addresses`); the per-IP cap counts `Friend.ip_key`, the IPv4
address or the IPv6 /64, so another spelling or another address of one /64 is the same client.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from loyalty.addresses import NotAnAddress, client_key
from loyalty.lookalikes import email_skeleton, fold, skeleton, suspicious, suspicious_email
from loyalty.members.models import Member
from loyalty.orders import service as orders
from loyalty.orders.models import Order
from referrals.models import CONVERTED, REFUSE, REJECTED, Referral, ReferralSettings

SELF_REFERRAL = "self_referral"
NOT_NEW_CUSTOMER = "not_new_customer"
ALREADY_REFERRED = "already_referred"
LIMIT_REACHED = "limit_reached"
PROGRAM_DISABLED = "program_disabled"
SAME_IP_AS_REFERRER = "same_ip_as_referrer"
CONFUSABLE_EMAIL = "confusable_email"
CONFUSABLE_NAME = "confusable_name"
MISSING_IP = "missing_ip"  # a suspicion, or the blocking reason under the "refuse" policy

REFERRER_WINDOW = timedelta(days=30)
IP_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Friend:
    """What we know of the friend: from a claim, an order, or both."""

    email: str | None  # normalized (loyalty.members.service.normalize_email)
    customer_id: str | None = None
    name: str | None = None
    ip: str | None = None  # canonical (loyalty.addresses)
    shipping_address_hash: str | None = None
    payment_fingerprint: str | None = None
    order_pk: int | None = None  # the order being paid now: it does not make the friend "not new"

    @property
    def ip_key(self) -> str | None:
        return client_key(self.ip) if self.ip else None


@dataclass
class Verdict:
    reason: str | None = None  # a blocking rule that tripped
    detail: str = ""
    flags: list[str] = field(default_factory=list)  # suspicions: send to review


def _spelled(name: str) -> str:
    return " ".join(fold(name).split())


def same_name(a: str | None, b: str | None) -> bool:
    """Case, spacing and compatibility forms don't make two people: "ana  LOPEZ" and the
    full-width "Ａｎａ Ｌｏｐｅｚ" are "Ana Lopez"."""
    if not a or not b:
        return False
    return _spelled(a) == _spelled(b)


def confusable_email(referrer: Member, friend: Friend) -> bool:
    if not friend.email:
        return False
    if suspicious_email(friend.email):
        return True
    return email_skeleton(friend.email) == email_skeleton(referrer.email_normalized)


def confusable_name(referrer: Member, friend: Friend) -> bool:
    if not friend.name:
        return False
    if suspicious(friend.name):
        return True
    referrer_name = referrer.name or ""
    return bool(referrer_name) and skeleton(_spelled(friend.name)) == skeleton(
        _spelled(referrer_name)
    )


def _referrer_orders(referrer: Member):
    who = [Order.member_id == referrer.id]
    if referrer.customer_id is not None:
        who.append(Order.customer_id == referrer.customer_id)
    return or_(*who)


def _referrer_orders_carry(session: Session, referrer: Member, key: str, value: str) -> bool:
    attribute = Order.attributes[key].as_string()
    return bool(
        session.scalar(select(exists().where(_referrer_orders(referrer), attribute == value)))
    )


def _key_of(text: str | None) -> str | None:
    try:
        return client_key(text)
    except NotAnAddress:  # stored before addresses were checked
        return None


def same_client_as_referrer(session: Session, referrer: Member, ip: str) -> bool:
    """Did the referrer order from this client: this IPv4 address, or this IPv6 /64?"""
    if ":" not in ip:
        return _referrer_orders_carry(session, referrer, "ip", ip)
    attribute = Order.attributes["ip"].as_string()
    seen = session.scalars(
        select(attribute).where(_referrer_orders(referrer), attribute.like("%:%")).distinct()
    )
    key = client_key(ip)
    return any(_key_of(text) == key for text in seen)


def referrer_orders_from(
    session: Session, referrer: Member, ip: str, limit: int = 20
) -> list[Order]:
    """The referrer's orders placed from this client (IPv4 address, or IPv6 /64), newest
    first: the evidence behind `same_ip_as_referrer`."""
    attribute = Order.attributes["ip"].as_string()
    query = select(Order).where(_referrer_orders(referrer), attribute.is_not(None))
    if ":" not in ip:
        query = query.where(attribute == ip)
    key = client_key(ip)
    found = []
    for order in session.scalars(query.order_by(Order.occurred_at.desc(), Order.id.desc())):
        if _key_of(order.attributes.get("ip")) == key:
            found.append(order)
            if len(found) == limit:
                break
    return found


def self_referral(session: Session, referrer: Member, friend: Friend) -> str | None:
    """Why the friend looks like the referrer themselves, or None."""
    if friend.customer_id is not None and friend.customer_id == referrer.customer_id:
        return "The friend has the referrer's customer id."
    if friend.email is not None and friend.email == referrer.email_normalized:
        return "The friend's email is the referrer's mailbox."
    if same_name(friend.name, referrer.name):
        return "The friend has the referrer's name."
    if friend.shipping_address_hash and _referrer_orders_carry(
        session, referrer, "shipping_address_hash", friend.shipping_address_hash
    ):
        return "The friend ships to the referrer's address."
    if friend.payment_fingerprint and _referrer_orders_carry(
        session, referrer, "payment_fingerprint", friend.payment_fingerprint
    ):
        return "The friend pays with the referrer's payment method."
    return None


def same_friend(friend: Friend, customer_column, email_column) -> list:
    """Conditions matching the friend by customer id or by mailbox (empty: nothing to match)."""
    who = []
    if friend.customer_id is not None:
        who.append(customer_column == friend.customer_id)
    if friend.email is not None:
        who.append(email_column == friend.email)
    return who


def already_referred(session: Session, friend: Friend, referral_id: int | None) -> bool:
    who = same_friend(friend, Referral.friend_customer_id, Referral.friend_email)
    if not who:
        return False
    query = exists().where(or_(*who))
    if referral_id is not None:
        query = query.where(Referral.id != referral_id)
    return bool(session.scalar(select(query)))


def has_paid_orders(session: Session, friend: Friend) -> bool:
    """Paid orders by the friend's customer id or mailbox, other than the one being paid."""
    return orders.has_paid_orders(
        session,
        customer_ids=(friend.customer_id,),
        emails=(friend.email,),
        excluding_order_pk=friend.order_pk,
    )


def referrer_conversions(session: Session, referrer_id: int, now: datetime) -> int:
    return session.scalars(
        select(func.count(Referral.id)).where(
            Referral.referrer_id == referrer_id,
            Referral.status == CONVERTED,
            Referral.converted_at > now - REFERRER_WINDOW,
        )
    ).one()


def ip_claims(session: Session, ip_key: str | None, now: datetime) -> int:
    return session.scalars(
        select(func.count(Referral.id)).where(
            Referral.ip_key == ip_key,
            Referral.status != REJECTED,
            Referral.created_at > now - IP_WINDOW,
        )
    ).one()


def assess(
    session: Session,
    settings: ReferralSettings,
    referrer: Member,
    friend: Friend,
    *,
    now: datetime,
    count_ip: bool,
    referral_id: int | None = None,
) -> Verdict:
    """Run every rule; the first blocking one wins, suspicions are collected.

    `count_ip`: this is a new referral from `friend.ip` (a claim, or an order that skipped the
    claim); converting an already claimed referral does not count its IP again.
    """
    detail = self_referral(session, referrer, friend)
    if detail:
        return Verdict(SELF_REFERRAL, detail)
    if already_referred(session, friend, referral_id):
        return Verdict(ALREADY_REFERRED, "This friend has already been referred.")
    if has_paid_orders(session, friend):
        return Verdict(NOT_NEW_CUSTOMER, "The friend has ordered before.")
    cap = settings.max_conversions_per_referrer_30d
    if cap is not None and referrer_conversions(session, referrer.id, now) >= cap:
        return Verdict(LIMIT_REACHED, f"The referrer reached {cap} conversions in 30 days.")
    verdict = Verdict()
    if count_ip and friend.ip is None:
        if settings.missing_ip == REFUSE:
            return Verdict(MISSING_IP, "The friend's IP address is required.")
        verdict.flags.append(MISSING_IP)
    cap = settings.max_claims_per_ip_7d
    if count_ip and friend.ip and cap is not None and ip_claims(session, friend.ip_key, now) >= cap:
        return Verdict(LIMIT_REACHED, f"{cap} referrals came from this IP in 7 days.")
    if friend.ip and same_client_as_referrer(session, referrer, friend.ip):
        verdict.flags.append(SAME_IP_AS_REFERRER)
    if confusable_email(referrer, friend):
        verdict.flags.append(CONFUSABLE_EMAIL)
    if confusable_name(referrer, friend):
        verdict.flags.append(CONFUSABLE_NAME)
    return verdict
