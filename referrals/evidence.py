"""Why a referral was held (or refused), in words, with the facts behind each rule.

A held referral stores only the names of its suspicions (`Referral.flags`): the facts behind
them are read again when someone looks — the referrer's orders from the friend's address,
the other referrals from that address, the address or name the friend's resembles. They are
what the database holds now (a referral from the same address made after this one shows up
too, which is what a reviewer wants to see), and nothing is kept twice.
"""

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loyalty.lookalikes import email_skeleton, fold, skeleton, suspicious_email
from loyalty.members.models import Member
from loyalty.orders.models import Order
from referrals import fraud
from referrals.models import Referral, ReferralSettings

NEIGHBOURS_SHOWN = 10

TITLES = {
    fraud.SAME_IP_AS_REFERRER: "Same IP address as the referrer",
    fraud.CONFUSABLE_EMAIL: "Email looks like another address",
    fraud.CONFUSABLE_NAME: "Name looks like another name",
    fraud.MISSING_IP: "No IP address",
}

# Why a referral was refused (`Referral.reason`), in words.
REASONS = {
    fraud.SELF_REFERRAL: "Self-referral",
    fraud.ALREADY_REFERRED: "Friend already referred",
    fraud.NOT_NEW_CUSTOMER: "Friend had ordered before",
    fraud.LIMIT_REACHED: "Limit reached",
    fraud.PROGRAM_DISABLED: "Program off",
    fraud.MISSING_IP: "No IP address",
    "rejected_by_admin": "Rejected by an admin",
    "order_refunded": "Order refunded",
    "referrer_erased": "Referrer erased",
    "order_below_minimum": "Order below the minimum",
}


@dataclass(frozen=True)
class Character:
    """A character that passes for a Latin one: `а` (CYRILLIC SMALL LETTER A) looks like `a`."""

    char: str
    name: str
    looks_like: str


@dataclass(frozen=True)
class Neighbour:
    """Another referral from the same client (IPv4 address or IPv6 /64)."""

    id: int
    status: str
    referrer_customer_id: str | None
    friend_email: str | None
    created_at: datetime


@dataclass(frozen=True)
class Finding:
    """One rule that held (or refused) the referral, and what it saw."""

    rule: str
    title: str
    summary: str
    orders: list[Order] = field(default_factory=list)  # the referrer's, from the same client
    neighbours: list[Neighbour] = field(default_factory=list)
    neighbours_total: int = 0
    characters: list[Character] = field(default_factory=list)
    resembles: str | None = None  # the address or name it looks like
    resembles_member: str | None = None  # the customer id of the member it looks like
    of_referrer: bool = False  # ... who is the referrer


def lookalike_characters(text: str | None) -> list[Character]:
    """The characters of `text` that are not Latin but read as Latin letters, once each."""
    found: dict[str, Character] = {}
    for char in unicodedata.normalize("NFC", text or ""):
        if char.isascii() or char in found:
            continue
        looks = skeleton(char)
        if looks != fold(char) and looks.isascii():
            found[char] = Character(char, unicodedata.name(char, "UNKNOWN"), looks)
    return list(found.values())


def neighbours(session: Session, referral: Referral) -> tuple[list[Neighbour], int]:
    """The other referrals from this referral's client, newest first, and how many there are."""
    if referral.ip_key is None:
        return [], 0
    same = (Referral.ip_key == referral.ip_key, Referral.id != referral.id)
    total = session.scalar(select(func.count(Referral.id)).where(*same)) or 0
    rows = session.execute(
        select(Referral, Member.customer_id)
        .outerjoin(Member, Member.id == Referral.referrer_id)
        .where(*same)
        .order_by(Referral.id.desc())
        .limit(NEIGHBOURS_SHOWN)
    ).all()
    shown = [
        Neighbour(r.id, r.status, customer_id, r.friend_email, r.created_at)
        for r, customer_id in rows
    ]
    return shown, total


def _same_ip(session: Session, referral: Referral, referrer: Member | None) -> Finding:
    orders = fraud.referrer_orders_from(session, referrer, referral.ip) if (
        referrer is not None and referral.ip
    ) else []  # fmt: skip
    others, total = neighbours(session, referral)
    where = referral.ip or "an address"
    summary = f"The friend came from {where}, an address the referrer's own orders came from"
    if orders:
        summary += f" ({len(orders)} order{'s' if len(orders) != 1 else ''} shown below)."
    else:
        summary += " (those orders are no longer on record)."
    summary += " A shared household or office address is common: a reason to look, not proof."
    return Finding(
        fraud.SAME_IP_AS_REFERRER, TITLES[fraud.SAME_IP_AS_REFERRER], summary,
        orders=orders, neighbours=others, neighbours_total=total,
    )  # fmt: skip


def _member_with_email(session: Session, normalized: str | None) -> str | None:
    if not normalized:
        return None
    return session.scalar(
        select(Member.customer_id)
        .where(Member.email_normalized == normalized, Member.erased_at.is_(None))
        .limit(1)
    )


def _email(session: Session, referral: Referral, referrer: Member | None) -> Finding:
    email = referral.friend_email
    title = TITLES[fraud.CONFUSABLE_EMAIL]
    if not email:
        return Finding(fraud.CONFUSABLE_EMAIL, title, "The friend's email has since been erased.")
    characters = lookalike_characters(email)
    looks_like = email_skeleton(email)
    referrer_email = referrer.email_normalized if referrer is not None else None
    if referrer_email and looks_like == email_skeleton(referrer_email) and email != referrer_email:
        return Finding(
            fraud.CONFUSABLE_EMAIL, title,
            f"{email} reads as the referrer's own address, {referrer_email}, but is spelled "
            "with other characters: it may be the referrer under another address.",
            characters=characters, resembles=referrer_email, of_referrer=True,
            resembles_member=referrer.customer_id if referrer is not None else None,
        )  # fmt: skip
    other = _member_with_email(session, looks_like) if looks_like != email else None
    if other is not None:
        summary = (f"{email} reads as {looks_like}, the address of member {other}, but is "
                   "spelled with other characters.")  # fmt: skip
    elif suspicious_email(email):
        summary = (f"{email} mixes Latin letters with characters of another script made to "
                   f"pass for them; it reads as {looks_like}.")  # fmt: skip
    else:
        summary = f"{email} reads as {looks_like}."
    return Finding(
        fraud.CONFUSABLE_EMAIL, title, summary, characters=characters,
        resembles=looks_like if looks_like != email else None, resembles_member=other,
    )  # fmt: skip


def _name(referral: Referral, referrer: Member | None) -> Finding:
    name = referral.friend_name
    title = TITLES[fraud.CONFUSABLE_NAME]
    if not name:
        return Finding(fraud.CONFUSABLE_NAME, title, "The friend's name has since been erased.")
    characters = lookalike_characters(name)
    referrer_name = referrer.name if referrer is not None else None
    if referrer_name and _reads(name) == _reads(referrer_name):
        return Finding(
            fraud.CONFUSABLE_NAME, title,
            f"“{name}” reads as the referrer's own name, “{referrer_name}”, spelled with "
            "other characters.",
            characters=characters, resembles=referrer_name, of_referrer=True,
        )  # fmt: skip
    summary = (f"“{name}” mixes Latin letters with characters of another script made to pass "
               f"for them; it reads as “{_reads(name)}”.")  # fmt: skip
    return Finding(fraud.CONFUSABLE_NAME, title, summary, characters=characters)


def _reads(name: str) -> str:
    """What a name looks like, as the rule compares names (case and spacing aside)."""
    return skeleton(" ".join(fold(name).split()))


def _missing_ip(settings: ReferralSettings) -> Finding:
    return Finding(
        fraud.MISSING_IP, TITLES[fraud.MISSING_IP],
        "The storefront sent no IP address for the friend, so this referral could not be "
        "counted against the per-address limit. The program sends such referrals to review "
        "(its “without the friend's IP address” setting).",
    )  # fmt: skip


def _unknown(rule: str) -> Finding:
    return Finding(rule, rule.replace("_", " ").capitalize(), "Held by this rule.")


def explain(
    session: Session, referral: Referral, referrer: Member | None, settings: ReferralSettings
) -> list[Finding]:
    """Each rule that sent the referral to review, with its evidence, in the order held."""
    findings = []
    for rule in referral.flags or []:
        if rule == fraud.SAME_IP_AS_REFERRER:
            findings.append(_same_ip(session, referral, referrer))
        elif rule == fraud.CONFUSABLE_EMAIL:
            findings.append(_email(session, referral, referrer))
        elif rule == fraud.CONFUSABLE_NAME:
            findings.append(_name(referral, referrer))
        elif rule == fraud.MISSING_IP:
            findings.append(_missing_ip(settings))
        else:
            findings.append(_unknown(rule))
    return findings


@dataclass(frozen=True)
class Limits:
    """Where the referrer and the friend's address stand against the program's caps now."""

    ip_claims_7d: int | None  # None: no address to count
    ip_cap: int | None
    referrer_conversions_30d: int
    referrer_cap: int | None


def limits(
    session: Session, referral: Referral, settings: ReferralSettings, now: datetime
) -> Limits:
    return Limits(
        fraud.ip_claims(session, referral.ip_key, now) if referral.ip_key else None,
        settings.max_claims_per_ip_7d,
        fraud.referrer_conversions(session, referral.referrer_id, now),
        settings.max_conversions_per_referrer_30d,
    )
