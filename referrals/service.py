"""Referrals: share codes, clicks, claims, conversion on the friend's first paid order,
the referrer's pending reward, admin review, and the numbers a member sees.

Plain functions over a session: they flush, the request (or the event intake, or the job)
commits. Rewards for people are reward codes from `rewards.catalog` and points from
`loyalty.ledger`; nothing here mints codes of its own except the share code itself.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from marshmallow import missing
from sqlalchemy import (
    BigInteger,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    exists,
    false,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.selectable import ScalarSelect, Select

from loyalty import email, erasure, ledger, webhooks
from loyalty.addresses import NotAnAddress, canonical_ip, client_key
from loyalty.audit import record_change
from loyalty.codes import normalize_code, random_code
from loyalty.errors import Conflict, NotFound, ReferralRejected, ValidationFailed
from loyalty.fastsql import fast, json_rows
from loyalty.hooks import MemberViewPart
from loyalty.jobs import Progress
from loyalty.ledger import AVAILABLE, PENDING, LedgerEntry
from loyalty.members.models import Member
from loyalty.members.service import normalize_email
from loyalty.orders.models import Order
from loyalty.orders.service import OrderEventContext
from loyalty.paging import Page, page_by_id
from loyalty.program.models import Program
from loyalty.program.service import ProgramSettings, currency_exponent, get_program
from loyalty.types import utcnow
from referrals import fraud, links
from referrals.models import (
    CLAIMED,
    CONVERTED,
    REJECTED,
    REVIEW,
    REWARD_CANCELED,
    REWARD_EARNED,
    REWARD_PENDING,
    REWARDED,
    SETTINGS_ID,
    USER_AGENT_MAX,
    Referral,
    ReferralClick,
    ReferralCode,
    ReferralSettings,
)
from referrals.schemas import AdminReferralSchema, FriendReferralSchema, ReferralSchema
from rewards.catalog import service as catalog
from rewards.catalog.models import Reward

CODE_LENGTH = 8  # 40 bits from the unambiguous alphabet: unguessable enough for a share link
SOURCE = "referral"  # ledger entries and reward codes name the referral that caused them
ADMIN_REJECTED = "rejected_by_admin"
ORDER_REFUNDED = "order_refunded"
REFERRER_ERASED = "referrer_erased"
BELOW_MINIMUM = "order_below_minimum"
UNKNOWN_CLIENT = "unknown"  # clicks whose address the server could not read share one key


# --- settings ---------------------------------------------------------------------------------


def get_settings(session: Session, *, for_update: bool = False) -> ReferralSettings:
    settings = session.get(ReferralSettings, SETTINGS_ID, with_for_update=for_update or None)
    if settings is None:  # the 0005 migration inserts it
        raise RuntimeError("referral settings row missing: run `flask --app wsgi db upgrade`")
    return settings


def settings_view(settings: ReferralSettings) -> dict:
    friend: dict[str, object] = {"kind": settings.friend_reward_kind}
    for name in ("amount", "percent", "sku"):
        value = getattr(settings, f"friend_reward_{name}")
        if value is not None:
            friend[name] = value
    friend["min_order"] = settings.friend_reward_min_order
    friend["valid_days"] = settings.friend_reward_valid_days
    referrer: dict[str, int | None]
    if settings.referrer_reward_points is not None:
        referrer = {"points": settings.referrer_reward_points}
    else:
        referrer = {"reward_id": settings.referrer_reward_id}
    return {
        "enabled": settings.enabled,
        "landing_url": settings.landing_url,
        "friend_reward": friend,
        "referrer_reward": referrer,
        "max_conversions_per_referrer_30d": settings.max_conversions_per_referrer_30d,
        "max_claims_per_ip_7d": settings.max_claims_per_ip_7d,
        "attribution_days": settings.attribution_days,
        "min_order_amount": settings.min_order_amount,
        "reward_hold_days": settings.reward_hold_days,
        "missing_ip": settings.missing_ip,
    }


def update_settings(session: Session, changes: dict) -> ReferralSettings:
    """PUT semantics per field: what is sent replaces, what is left out stays (audited)."""
    before = settings_view(get_settings(session))
    settings = get_settings(session, for_update=True)
    for name in (
        "enabled",
        "landing_url",
        "max_conversions_per_referrer_30d",
        "max_claims_per_ip_7d",
        "attribution_days",
        "min_order_amount",
        "reward_hold_days",
        "missing_ip",
    ):
        if name in changes:
            setattr(settings, name, changes[name])
    if "friend_reward" in changes:
        friend = changes["friend_reward"]
        settings.friend_reward_kind = friend["kind"]
        settings.friend_reward_amount = friend.get("amount")
        settings.friend_reward_percent = friend.get("percent")
        settings.friend_reward_sku = friend.get("sku")
        settings.friend_reward_min_order = friend.get("min_order", 0)
        settings.friend_reward_valid_days = friend.get("valid_days", 30)
    if "referrer_reward" in changes:
        referrer = changes["referrer_reward"]
        if "reward_id" in referrer:
            catalog_reward(session, referrer["reward_id"])
        settings.referrer_reward_points = referrer.get("points")
        settings.referrer_reward_id = referrer.get("reward_id")
    session.flush()
    record_change(session, "referral_program.update", "referral_program", "1", before,
                  settings_view(settings))  # fmt: skip
    return settings


def catalog_reward(session: Session, reward_id: int) -> Reward:
    try:
        return catalog.get_reward(session, reward_id)
    except NotFound as exc:
        raise ValidationFailed(
            errors={"referrer_reward": {"reward_id": [f"No reward {reward_id} in the catalog."]}}
        ) from exc


# --- share codes and clicks -------------------------------------------------------------------


def code_for(session: Session, member_id: int) -> str:
    """The member's share code, created on first need (members enrolled before referrals
    existed get theirs lazily). Concurrent first calls agree on one code."""
    existing = session.scalar(select(ReferralCode.code).where(ReferralCode.member_id == member_id))
    if existing is not None:
        return existing
    return _new_code(session, member_id)


def give_code(session: Session, member: Member) -> None:
    """`member_enrolled` hook: the new member's share code, in one INSERT (a member just
    enrolled has none to look up first)."""
    _new_code(session, member.id)


def _new_code(session: Session, member_id: int) -> str:
    """A new share code for the member, or the one another transaction gave them meanwhile.

    INSERT ... ON CONFLICT DO NOTHING: a conflict — on the member (a concurrent first call,
    which this waits for) or, rarely, on the code (drawn before) — inserts nothing and leaves
    the transaction usable, so no savepoint is needed; then the member's code is read, or
    another one drawn."""
    statement = fast(_insert_code(session.get_bind().dialect.name))
    for _attempt in range(5):
        row = {"member_id": member_id, "code": random_code(CODE_LENGTH), "created_at": utcnow()}
        code: str | None = statement.scalar(session.connection(), row)
        if code is not None:
            return code
        existing = session.scalar(
            select(ReferralCode.code).where(ReferralCode.member_id == member_id)
        )
        if existing is not None:
            return existing
    raise RuntimeError("could not find a free referral code")


@cache
def _insert_code(dialect: str) -> Any:
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    codes = ReferralCode.__table__
    return insert(codes).on_conflict_do_nothing().returning(codes.c.code)


def give_codes(session: Session, new_members: list[Member]) -> None:
    """`give_code` for members enrolled together: a share code each, in one INSERT ... ON
    CONFLICT DO NOTHING for all of them (members just enrolled have none to look up first).
    A member left without one — their code drawn before (rare), or given one meanwhile by a
    concurrent first call, which is then theirs — is drawn again in the next INSERT (five
    tries, as `code_for`)."""
    codes = ReferralCode.__table__
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    insert = postgresql_insert if on_postgresql else sqlite_insert
    waiting = {member.id for member in new_members}
    for _attempt in range(5):
        now = utcnow()
        rows = [{"member_id": member_id, "code": random_code(CODE_LENGTH), "created_at": now}
                for member_id in sorted(waiting)]  # fmt: skip
        if on_postgresql:  # the rows as one JSON parameter (`fastsql.json_rows`)
            session.flush()
            params = {"rows": json_rows(rows)}
            given = set(session.connection().execute(_INSERT_CODE_ROWS, params).scalars())
        else:
            statement = insert(codes).values(rows).on_conflict_do_nothing()
            given = set(session.scalars(statement.returning(codes.c.member_id)))
        waiting -= given
        if not waiting:
            return
        waiting -= set(session.scalars(
            select(ReferralCode.member_id).where(ReferralCode.member_id.in_(waiting))
        ))  # fmt: skip
        if not waiting:
            return
    raise RuntimeError("could not find free referral codes")


_INSERT_CODE_ROWS = text(
    f"INSERT INTO {ReferralCode.__table__.name} (member_id, code, created_at)"  # noqa: S608 - the model's
    " SELECT r.member_id, r.code, r.created_at FROM jsonb_populate_recordset("
    f"NULL::{ReferralCode.__table__.name}, CAST(:rows AS jsonb)) AS r"
    " ON CONFLICT DO NOTHING RETURNING member_id"
)


def share_code_column() -> ScalarSelect[str]:
    """The member's share code, as a subquery correlated to `members` (the member view's)."""
    return select(ReferralCode.code).where(ReferralCode.member_id == Member.id).scalar_subquery()


def referral_fields(session: Session, member: Any, code: str | None) -> dict:
    """`member_view` part: `"referral": {"code", "url"}` (none for an erased member)."""
    if member.erased_at is not None:
        return {"referral": None}
    if code is None:  # enrolled before referrals existed: the code is made on first need
        code = code_for(session, member.id)
    return {"referral": {"code": code, "url": links.share_url(code)}}


MEMBER_VIEW = MemberViewPart(share_code_column, referral_fields)


def find_code(session: Session, text: str) -> ReferralCode:
    row = session.scalar(select(ReferralCode).where(ReferralCode.code == normalize_code(text)))
    if row is None:
        raise NotFound("No such referral code.")
    return row


def follow_link(
    session: Session,
    code_text: str,
    ip: str | None,
    user_agent: str | None,
    *,
    dedup_seconds: int,
    now: datetime | None = None,
) -> str:
    """`GET /r/<code>`: record the click, return where to send the visitor.

    One click per code, client (IPv4 address or IPv6 /64) and `dedup_seconds` window: a
    repeat in the window is the click already recorded (a unique index decides, so there is
    no read-then-write race); `dedup_seconds` 0 records every visit."""
    code = find_code(session, code_text)
    now = now or utcnow()
    try:
        address, key = canonical_ip(ip), client_key(ip)
    except NotAnAddress:
        address, key = None, UNKNOWN_CLIENT
    row = {
        "member_id": code.member_id,
        "ip": address,
        "client_key": key,
        "dedup_window": int(now.timestamp()) // dedup_seconds if dedup_seconds > 0 else None,
        "user_agent": user_agent[:USER_AGENT_MAX] if user_agent else None,
        "created_at": now,
    }
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    clicks = ReferralClick.__table__
    click_id = session.scalar(
        insert(clicks)
        .values(row)
        .on_conflict_do_nothing(index_elements=["member_id", "client_key", "dedup_window"])
        .returning(clicks.c.id)
    )
    if click_id is None:
        click_id = session.scalar(
            select(ReferralClick.id).where(
                ReferralClick.member_id == code.member_id,
                ReferralClick.client_key == key,
                ReferralClick.dedup_window == row["dedup_window"],
            )
        )
    settings = get_settings(session)
    return links.landing_url(settings.landing_url, code.code, links.sign_click(click_id, code.code))


def _money(minor: int, currency: str) -> str:
    exponent = currency_exponent(currency)
    return f"{Decimal(minor).scaleb(-exponent):,.{exponent}f} {currency}"


def describe_friend_reward(settings: ReferralSettings, currency: str) -> str:
    """The friend's offer in words: "10.00 USD off your first order of 40.00 USD or more"."""
    kind = settings.friend_reward_kind
    if kind == "amount_off":
        what = f"{_money(settings.friend_reward_amount or 0, currency)} off"
    elif kind == "percent_off":
        what = f"{settings.friend_reward_percent}% off"
    elif kind == "free_shipping":
        what = "Free shipping on"
    else:
        what = f"A free {settings.friend_reward_sku} with"
    minimum = settings.friend_reward_min_order
    tail = f" of {_money(minimum, currency)} or more" if minimum else ""
    return f"{what} your first order{tail}"


def landing_offer(session: Session, code_text: str) -> dict:
    """What the service's own landing page shows a friend who followed a share link: the
    code (as stored, whatever its spelling in the link) and the friend's offer."""
    code = find_code(session, code_text)
    settings = get_settings(session)
    return {
        "code": code.code,
        "enabled": settings.enabled,
        "offer": describe_friend_reward(settings, get_program(session).currency),
    }


# --- claims -----------------------------------------------------------------------------------


def _insert(session: Session, referral: Referral) -> None:
    """One referral per friend: the unique indexes decide between concurrent claims."""
    try:
        with session.begin_nested():
            session.add(referral)
            session.flush()
    except IntegrityError as exc:
        raise ReferralRejected(
            "This friend has already been referred.", reason=fraud.ALREADY_REFERRED
        ) from exc


def _issue_friend_reward(session: Session, settings: ReferralSettings, referral: Referral) -> None:
    code = catalog.issue_reward_code(
        session,
        kind=settings.friend_reward_kind,
        amount=settings.friend_reward_amount,
        percent=settings.friend_reward_percent,
        sku=settings.friend_reward_sku,
        min_order=settings.friend_reward_min_order,
        valid_days=settings.friend_reward_valid_days,
        customer_id=referral.friend_customer_id,
        email=referral.friend_email,
        first_order_only=True,
        source_type=SOURCE,
        source_id=str(referral.id),
    )
    referral.friend_reward_code_id = code.id
    referral.friend_reward = catalog.reward_code_view(code)


def claim(session: Session, data: dict, *, now: datetime | None = None) -> Referral:
    """A friend claims a referral (email + code) and, unless it needs review, gets the friend
    reward. Claims of one referrer queue on the referrer's row, so its caps hold exactly."""
    now = now or utcnow()
    settings = get_settings(session)
    if not settings.enabled:
        raise ReferralRejected("The referral program is off.", reason=fraud.PROGRAM_DISABLED)
    code = find_code(session, data["code"])
    friend = fraud.Friend(
        email=normalize_email(data["email"]),
        customer_id=data.get("customer_id"),
        name=data.get("name"),
        ip=data.get("ip"),
    )
    _mark_friend_members(session, friend)  # the friend's rows first, as order events lock
    referrer = ledger.lock_member(session, code.member_id)
    click_id = None
    if data.get("click"):
        click_id = links.read_click(data["click"], code.code, settings.attribution_days * 86400)
    verdict = fraud.assess(session, settings, referrer, friend, now=now, count_ip=True)
    if verdict.reason:
        raise ReferralRejected(verdict.detail, reason=verdict.reason)
    referral = Referral(
        referrer_id=referrer.id,
        code=code.code,
        status=REVIEW if verdict.flags else CLAIMED,
        source="claim",
        friend_email=friend.email,
        friend_customer_id=friend.customer_id,
        friend_name=friend.name,
        ip=friend.ip,
        ip_key=friend.ip_key,
        user_agent=data.get("user_agent"),
        click_id=click_id,
        flags=verdict.flags,
        created_at=now,
    )
    _insert(session, referral)
    if referral.status == CLAIMED:
        _issue_friend_reward(session, settings, referral)
    session.flush()
    if referral.status == CLAIMED:
        _emit_claimed(session, referral, referrer)
    else:
        _emit_held(session, referral, referrer)
    return referral


def _emit_claimed(session: Session, referral: Referral, referrer: Member) -> None:
    """`referral.claimed`: a friend claimed a referral and got their reward code (the code
    itself goes in `reward.issued`)."""
    webhooks.emit(
        session,
        "referral.claimed",
        {
            "referral_id": referral.id,
            "referrer_customer_id": referrer.customer_id,
            "friend_customer_id": referral.friend_customer_id,
            "friend_reward_code_id": referral.friend_reward_code_id,
            "claimed_at": webhooks.iso(referral.created_at),
        },
    )


def _emit_held(session: Session, referral: Referral, referrer: Member) -> None:
    """`referral.held_for_review`: a claim or a converting order waits for an admin."""
    webhooks.emit(
        session,
        "referral.held_for_review",
        {
            "referral_id": referral.id,
            "referrer_customer_id": referrer.customer_id,
            "friend_customer_id": referral.friend_customer_id,
            "order_id": referral.order_id,
            "flags": list(referral.flags or []),
            "held_at": webhooks.iso(utcnow()),
        },
    )


# --- conversion (order handler) ---------------------------------------------------------------


def _reward_referrer(
    session: Session,
    program: Program | ProgramSettings,
    settings: ReferralSettings,
    referral: Referral,
    occurred_at: datetime,
) -> None:
    """Converted: the referrer's reward, pending for the program's return window or the
    referral program's own hold, whichever is longer (order points may mature at once, a
    referral reward still waits for refunds)."""
    days = max(program.pending_days, settings.reward_hold_days)
    window = timedelta(days=days)
    pending = days > 0
    referral.status = CONVERTED
    referral.converted_at = occurred_at
    referral.reward_matures_at = occurred_at + window
    referral.reward_state = REWARD_PENDING if pending else REWARD_EARNED
    if settings.referrer_reward_points is not None:
        entry = ledger.post_entry(
            session,
            referral.referrer_id,
            "referral",
            settings.referrer_reward_points,
            state=PENDING if pending else AVAILABLE,
            source_type=SOURCE,
            source_id=str(referral.id),
            detail={"referral_id": referral.id, "order_id": referral.order_id},
            occurred_at=occurred_at,
            matures_at=referral.reward_matures_at if pending else None,
        )
        referral.reward_points = settings.referrer_reward_points
        referral.reward_entry_id = entry.id
    else:
        referral.reward_catalog_id = settings.referrer_reward_id
        if not pending:
            _issue_referrer_code(session, referral)
    session.flush()
    if webhooks.subscribed(session, "referral.converted"):
        _emit_converted(session, referral)
    if email.enabled():
        _email_referrer(session, referral)


def _email_referrer(session: Session, referral: Referral) -> None:
    """The "referral reward" email to the referrer (once per referral)."""
    referrer = session.get_one(Member, referral.referrer_id)
    reward_name = None
    if referral.reward_catalog_id is not None:
        reward = session.get(Reward, referral.reward_catalog_id)
        reward_name = reward.name if reward is not None else None
    session.refresh(referrer, ["points_available", "points_pending"])
    data = {
        "referral_id": referral.id,
        "points": referral.reward_points,
        "reward": reward_name,
        "state": referral.reward_state,
        "matures_at": webhooks.iso(referral.reward_matures_at),
        "points_available": referrer.points_available,
        "points_pending": referrer.points_pending,
    }
    email.queue(session, referrer, "referral_reward", data,
                dedupe_key=f"referral_reward:{referral.id}")  # fmt: skip


def _emit_converted(session: Session, referral: Referral) -> None:
    referrer = session.get_one(Member, referral.referrer_id)  # usually locked and loaded
    webhooks.emit(
        session,
        "referral.converted",
        {
            "referral_id": referral.id,
            "referrer_customer_id": referrer.customer_id,
            "friend_customer_id": referral.friend_customer_id,
            "order_id": referral.order_id,
            "reward": {
                "points": referral.reward_points,
                "reward_id": referral.reward_catalog_id,
                "state": referral.reward_state,
                "matures_at": webhooks.iso(referral.reward_matures_at),
            },
            "converted_at": webhooks.iso(referral.converted_at),
        },
    )


def _issue_referrer_code(session: Session, referral: Referral) -> None:
    if referral.reward_catalog_id is None:
        raise ValueError(f"referral {referral.id} rewards points: it has no code to issue")
    reward = catalog.get_reward(session, referral.reward_catalog_id, include_deleted=True)
    code = catalog.issue_reward_code(
        session,
        kind=reward.kind,
        amount=reward.amount,
        percent=reward.percent,
        sku=reward.sku,
        min_order=reward.min_order,
        valid_days=reward.code_valid_days,
        member_id=referral.referrer_id,
        reward_id=reward.id,
        points_spent=0,
        source_type=SOURCE,
        source_id=str(referral.id),
    )
    referral.reward_code_id = code.id
    referral.reward_state = REWARD_EARNED


def _friend_referrals(session: Session, friend: fraud.Friend) -> list[Referral]:
    """The referrals naming this friend (at most one by customer id, one by mailbox), oldest
    first, locked: orders of one friend convert them one by one."""
    who = fraud.same_friend(friend, Referral.friend_customer_id, Referral.friend_email)
    if not who:
        return []
    return list(
        session.scalars(
            select(Referral)
            .where(or_(*who))
            .order_by(Referral.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def _sole_buyer(member: Member | None, order: Order) -> Member | None:
    """The member, if this order's buyer (customer id, mailbox) names no one but them."""
    if member is not None and order.email_normalized in (None, member.email_normalized):
        return member
    return None


def _clearing(ctx: OrderEventContext, buyer: Member | None) -> Member | None:
    """The buyer whose mark this order may clear: marked, and the order in their mailbox."""
    if (
        buyer is not None
        and buyer.referral_check
        and ctx.order.email_normalized == buyer.email_normalized
    ):
        return buyer
    return None


def _none_names_params(ctx: OrderEventContext, buyer: Member | None) -> dict:
    return {
        "friend_customer_id": ctx.order.customer_id,
        "friend_email": ctx.order.email_normalized,
        "buyer_id": buyer.id if buyer is not None else None,
    }


def _none_names(ctx: OrderEventContext, buyer: Member | None) -> bool:
    """On PostgreSQL, the usual case of a paid order in one statement: do no referrals name
    this order's friend (customer id or mailbox)? Then `buyer`'s mark is cleared in the same
    statement, as `paid` clears it when nothing waits. The referrals found are locked (as
    `_friend_referrals` locks them, which `paid` goes on to do). False elsewhere: `paid`
    looks as it always does."""
    session = ctx.session
    if session.get_bind().dialect.name != "postgresql":
        return False
    params = _none_names_params(ctx, buyer)
    if fast(_NONE_NAMES).first(session.connection(), params) is not None:
        return False
    if buyer is not None:
        set_committed_value(buyer, "referral_check", False)
    return True


def _none_names_statement(many: bool = False) -> Select:
    """`_none_names`'s statement; `many`: for the orders of a group (distinct buyers and
    mailboxes) at once, their parameters the JSON rows `rows` (each numbered `n`), the numbers
    of those a referral names coming back (the same conditions, built once for both)."""
    referrals = Referral.__table__
    members = Member.__table__
    if many:
        asked = (
            func.jsonb_to_recordset(cast(bindparam("rows", type_=Text()), JSONB))
            .table_valued(
                column("n", Integer), column("friend_customer_id", Text),
                column("friend_email", Text), column("buyer_id", BigInteger),
            )
            .render_derived(with_types=True)
            .alias("asked")
        )  # fmt: skip
        customer, mailbox, buyer = (
            asked.c.friend_customer_id,
            asked.c.friend_email,
            asked.c.buyer_id,
        )
    else:
        customer, mailbox, buyer = (
            bindparam("friend_customer_id"), bindparam("friend_email"), bindparam("buyer_id")
        )  # fmt: skip
    names = or_(referrals.c.friend_customer_id == customer, referrals.c.friend_email == mailbox)
    if many:
        found = select(asked.c.n).where(names).with_for_update(of=referrals).cte("found")
        none = ~exists(select(found.c.n).where(found.c.n == asked.c.n))
    else:
        found = select(referrals.c.id).where(names).with_for_update().cte("found")
        none = ~exists(select(found.c.id))
    cleared = (
        update(members)
        .where(members.c.id == buyer, none)
        .values(referral_check=false())
        .cte("cleared")
    )
    if many:
        return select(found.c.n).distinct().add_cte(cleared)
    return select(found.c.id).add_cte(cleared)


_NONE_NAMES = _none_names_statement()
_NONE_NAME_ROWS = _none_names_statement(many=True)


def _waits_for_order(referral: Referral) -> bool:
    """Would the friend's next paid order convert (or reject) this referral?"""
    return referral.status in (CLAIMED, REVIEW) and referral.order_id is None


def _mark_friend_members(session: Session, friend: fraud.Friend) -> None:
    """A claim names this friend: their member rows (if any) must look on the next order.

    Taken first, before the referrer's row: an order event locks its buyer, then the
    referrer, and so does a claim — so the two queue instead of deadlocking. An order holding
    the friend's row finishes first (the claim then sees its paid order, or its referral);
    an order after the claim sees the mark and the committed claim. A refused claim rolls
    the mark back with everything else. Rows are locked in id order."""
    who = fraud.same_friend(friend, Member.customer_id, Member.email_normalized)
    if not who:
        return
    named = select(Member.id).where(or_(*who)).order_by(Member.id).with_for_update()
    session.execute(
        update(Member).where(Member.id.in_(named)).values(referral_check=True),
        execution_options={"synchronize_session": False},
    )


def _effect(
    ctx: OrderEventContext, referral: Referral | None, status: str, **extra: object
) -> None:
    ctx.effects.append(
        {"kind": "referral", "referral_id": referral.id if referral else None, "status": status}
        | extra
    )


class ReferralConversion:
    """Order handler: the friend's first paid order converts the referral (creating it first
    when the order carries a `referral_code` and the friend never claimed) if its net eligible
    spend reaches the program's minimum; a refund taking it below that before the reward
    matures reverses the rewards."""

    def paid(self, ctx: OrderEventContext) -> None:
        member, order = ctx.member, ctx.order
        # Does this order's buyer (customer id, mailbox) name no one but the member?
        buyer = _sole_buyer(member, order)
        if buyer is not None and not buyer.referral_check and not ctx.payload.get("referral_code"):
            return  # no referral waits for this member's order: nothing to look up
        if not ctx.payload.get("referral_code") and _none_names(ctx, _clearing(ctx, buyer)):
            return  # nothing to convert (and the buyer's mark cleared, as below)
        found = _friend_referrals(
            ctx.session,
            fraud.Friend(email=order.email_normalized, customer_id=order.customer_id),
        )
        self._convert(ctx, found[0] if found else None)
        if (
            buyer is not None
            and buyer.referral_check
            and order.email_normalized == buyer.email_normalized
            and not any(_waits_for_order(r) for r in found)
        ):
            # Everything naming the member was looked at, and nothing waits any more; a
            # later claim naming them sets the mark again (under this row's lock).
            buyer.referral_check = False

    def paid_many(self, ctxs: list[OrderEventContext]) -> None:
        """`paid` for the events of a group (`Hooks.dispatch_many`: distinct buyers). On
        PostgreSQL, the orders whose buyer no referral may name, as `paid` skips them; those
        that must look, `_none_names` for all of them in one statement (`_NONE_NAME_ROWS`);
        `paid` for the rest (a referral names them, or they carry a code)."""
        looking = []
        for ctx in ctxs:
            buyer = _sole_buyer(ctx.member, ctx.order)
            code = ctx.payload.get("referral_code")
            if buyer is not None and not buyer.referral_check and not code:
                continue
            looking.append((ctx, buyer))
        if not looking:
            return
        session = ctxs[0].session
        asks = [(ctx, buyer) for ctx, buyer in looking if not ctx.payload.get("referral_code")]
        if session.get_bind().dialect.name != "postgresql" or not asks:
            for ctx, _buyer in looking:
                self.paid(ctx)
            return
        rows = [{"n": n, **_none_names_params(ctx, _clearing(ctx, buyer))}
                for n, (ctx, buyer) in enumerate(asks)]  # fmt: skip
        found = set(
            session.connection().execute(_NONE_NAME_ROWS, {"rows": json_rows(rows)}).scalars()
        )
        named = set()
        for n, (ctx, buyer) in enumerate(asks):
            if n in found:
                named.add(id(ctx))
            elif (cleared := _clearing(ctx, buyer)) is not None:
                set_committed_value(cleared, "referral_check", False)
        for ctx, _buyer in looking:
            if ctx.payload.get("referral_code") or id(ctx) in named:
                self.paid(ctx)

    def _convert(self, ctx: OrderEventContext, referral: Referral | None) -> None:
        session, order, payload = ctx.session, ctx.order, ctx.payload
        fresh = referral is None
        if referral is None:
            if not payload.get("referral_code"):
                return
            settings = get_settings(session)
            if not settings.enabled:
                return _effect(ctx, None, "ignored", reason=fraud.PROGRAM_DISABLED)
            code = session.scalar(
                select(ReferralCode).where(
                    ReferralCode.code == normalize_code(payload["referral_code"])
                )
            )
            if code is None:
                return _effect(ctx, None, "ignored", reason="unknown_code")
            referral = Referral(
                referrer_id=code.member_id, code=code.code, status=CLAIMED, source="order",
                friend_email=order.email_normalized, friend_customer_id=order.customer_id,
                friend_name=payload.get("name"), ip=payload.get("ip"), flags=[],
                created_at=ctx.occurred_at,
            )  # fmt: skip
            referral.ip_key = client_key(referral.ip) if referral.ip else None
        elif referral.status not in (CLAIMED, REVIEW) or referral.order_id is not None:
            return  # converted, rejected, or waiting for review with its order already
        else:
            settings = get_settings(session)
        referrer = ledger.lock_member(session, referral.referrer_id)
        friend = fraud.Friend(
            email=order.email_normalized,
            customer_id=order.customer_id,
            name=payload.get("name")
            or referral.friend_name
            or (ctx.member.name if ctx.member is not None else None),
            ip=payload.get("ip") or referral.ip,
            shipping_address_hash=payload.get("shipping_address_hash"),
            payment_fingerprint=payload.get("payment_fingerprint"),
            order_pk=order.id,
        )
        verdict = fraud.assess(
            session, settings, referrer, friend, now=ctx.occurred_at, count_ip=fresh,
            referral_id=referral.id,
        )  # fmt: skip
        if not verdict.reason and net_spend(order) < settings.min_order_amount:
            verdict = fraud.Verdict(
                BELOW_MINIMUM,
                f"The order's net eligible spend is below {settings.min_order_amount}.",
            )
        if fresh:
            if verdict.reason == fraud.ALREADY_REFERRED:
                return _effect(ctx, None, "ignored", reason=verdict.reason)
            try:
                _insert(session, referral)
            except ReferralRejected:  # the same friend was referred concurrently
                return _effect(ctx, None, "ignored", reason=fraud.ALREADY_REFERRED)
        else:
            if referral.friend_customer_id is None and not fraud.already_referred(
                session, fraud.Friend(email=None, customer_id=order.customer_id), referral.id
            ):  # a claim by email alone: now we know the customer id too
                referral.friend_customer_id = order.customer_id
        referral.order_id = order.order_id
        if referrer.erased_at is not None:  # nobody left to reward
            verdict = fraud.Verdict(REFERRER_ERASED, "The referrer's account was erased.")
        if verdict.reason:
            referral.status, referral.reason = REJECTED, verdict.reason
            referral.note = verdict.detail
            return _effect(ctx, referral, REJECTED, reason=verdict.reason)
        if verdict.flags or referral.status == REVIEW:
            referral.status = REVIEW
            referral.flags = sorted(set(referral.flags or []) | set(verdict.flags))
            session.flush()
            _emit_held(session, referral, referrer)
            return _effect(ctx, referral, REVIEW)
        _reward_referrer(session, ctx.program, settings, referral, ctx.occurred_at)
        _effect(
            ctx, referral, CONVERTED, referrer_id=referrer.customer_id,
            reward=reward_effect(session, referral),
        )  # fmt: skip

    def refunded(self, ctx: OrderEventContext) -> None:
        """A refund that takes the order's net eligible spend below the program's minimum
        before the referrer's reward matures takes both rewards back; a referral still in
        review is rejected."""
        order = ctx.order
        referral = ctx.session.scalars(
            select(Referral)
            .where(Referral.order_id == order.order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if referral is None or ctx.refund is None or referral.status not in (REVIEW, CONVERTED):
            return
        if net_spend(order) >= get_settings(ctx.session).min_order_amount:
            return  # what is left of the order still qualifies
        if referral.status == REVIEW:
            referral.status, referral.reason = REJECTED, ORDER_REFUNDED
            return _effect(ctx, referral, REJECTED, reason=ORDER_REFUNDED)
        matures_at = referral.reward_matures_at
        if (
            referral.reward_state == REWARD_PENDING
            and matures_at is not None
            and ctx.occurred_at < matures_at
        ):
            cancel_reward(ctx.session, referral, ctx.refund.refund_id, ctx.occurred_at)
            friend_reward = cancel_friend_reward(ctx.session, referral, ctx.occurred_at)
            _effect(ctx, referral, "reward_canceled", reward=reward_effect(ctx.session, referral),
                    friend_reward=friend_reward)  # fmt: skip


def net_spend(order: Order) -> int:
    """What the order's buyer really spent: eligible amount (no gift cards, tax or shipping,
    after discounts) less refunds."""
    return order.eligible_amount - order.refunded_amount


def cancel_friend_reward(session: Session, referral: Referral, at: datetime) -> str | None:
    """The friend's reward code, canceled if still unused (its status after); a code spent on
    the refunded order was that order's discount, which the refund already accounts for."""
    if referral.friend_reward_code_id is None:
        return None
    try:
        canceled = catalog.cancel_redemption(session, referral.friend_reward_code_id, now=at)
    except Conflict as exc:  # used, expired, or held by a checkout
        status: str = exc.extra.get("code_status", "reserved")
        return status
    return str(canceled.status)


def cancel_reward(
    session: Session, referral: Referral, refund_id: str, occurred_at: datetime
) -> None:
    """Undo a reward that has not matured: a pending entry cancels the pending points (both
    mature together to a net zero); points that a job already matured are clawed back, even
    if spent (the balance may go below zero)."""
    ledger.lock_member(session, referral.referrer_id)  # serialize with mature-points
    if referral.reward_entry_id is not None:
        entry = session.get_one(LedgerEntry, referral.reward_entry_id, populate_existing=True)
        pending = entry.state == PENDING
        ledger.post_entry(
            session,
            referral.referrer_id,
            "reversal" if pending else "clawback",
            -entry.points,
            state=entry.state,
            source_type=SOURCE,
            source_id=str(referral.id),
            detail={"referral_id": referral.id, "order_id": referral.order_id,
                    "refund_id": refund_id, "reason": ORDER_REFUNDED},
            occurred_at=occurred_at,
            matures_at=entry.matures_at if pending else None,
        )  # fmt: skip
    referral.reward_state = REWARD_CANCELED
    session.flush()


# --- rewards that mature ----------------------------------------------------------------------


def issue_due_reward_codes(
    session: Session, now: datetime, batch_size: int, progress: Progress | None = None
) -> int:
    """Job `referral-rewards`: a referrer rewarded with a catalog reward gets its code when
    the return window has passed (points mature through the core's `mature-points`).
    Several machines may run it: each takes rows the others have not locked."""
    issued = 0
    while True:
        due = list(
            session.scalars(
                select(Referral)
                .where(
                    Referral.reward_state == REWARD_PENDING,
                    Referral.reward_catalog_id.is_not(None),
                    Referral.reward_matures_at <= now,
                )
                .order_by(Referral.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        for referral in due:
            _issue_referrer_code(session, referral)
        session.commit()
        issued += len(due)
        if progress:
            progress(1)
        if len(due) < batch_size:
            return issued


# --- admin review -----------------------------------------------------------------------------


def _locked(session: Session, referral_id: int) -> Referral:
    referral = session.get(Referral, referral_id, with_for_update=True, populate_existing=True)
    if referral is None:
        raise NotFound(f"No referral {referral_id}.")
    return referral


def approve(session: Session, referral_id: int, note: str | None, actor: str) -> Referral:
    """Approve a referral in review: a claim gets its friend reward; a referral whose order
    is already paid converts and the referrer's reward is created (pending as usual)."""
    referral = _locked(session, referral_id)
    if referral.status != REVIEW:
        raise Conflict(f"Referral {referral_id} is {referral.status}, not in review.")
    before = admin_snapshot(session, referral)
    settings = get_settings(session)
    if referral.order_id is None:
        referral.status = CLAIMED
        _issue_friend_reward(session, settings, referral)
    else:
        order = session.scalars(select(Order).where(Order.order_id == referral.order_id)).one()
        if net_spend(order) < settings.min_order_amount:
            raise Conflict(
                f"Order {order.order_id!r} is below the program's minimum net spend now; "
                "reject the referral instead."
            )
        _reward_referrer(session, get_program(session), settings, referral, order.occurred_at)
    referral.note, referral.decided_by, referral.decided_at = note, actor, utcnow()
    session.flush()
    record_change(session, "referral.approve", "referral", referral.id, before,
                  admin_snapshot(session, referral))  # fmt: skip
    return referral


def reject(session: Session, referral_id: int, note: str, actor: str) -> Referral:
    referral = _locked(session, referral_id)
    if referral.status != REVIEW:
        raise Conflict(f"Referral {referral_id} is {referral.status}, not in review.")
    before = admin_snapshot(session, referral)
    referral.status, referral.reason, referral.note = REJECTED, ADMIN_REJECTED, note
    referral.decided_by, referral.decided_at = actor, utcnow()
    session.flush()
    record_change(session, "referral.reject", "referral", referral.id, before,
                  admin_snapshot(session, referral))  # fmt: skip
    return referral


# --- views and lists --------------------------------------------------------------------------

# A converted referral is "rewarded" once its reward has matured: a code issued by the job, or
# points that `mature-points` made available (read from the ledger: one source of truth).
_matured = or_(
    Referral.reward_state == REWARD_EARNED,
    and_(Referral.reward_state == REWARD_PENDING, LedgerEntry.state == AVAILABLE),
)
effective_status = case(
    (and_(Referral.status == CONVERTED, _matured), REWARDED), else_=Referral.status
)
effective_reward_state = case(
    (and_(Referral.reward_state == REWARD_PENDING, LedgerEntry.state == AVAILABLE), REWARD_EARNED),
    else_=Referral.reward_state,
)


def _with_states(query: Select) -> Select:
    return query.add_columns(effective_status, effective_reward_state).outerjoin(
        LedgerEntry, LedgerEntry.id == Referral.reward_entry_id
    )


def _states(session: Session, referral: Referral) -> tuple[str, str | None]:
    row = session.execute(_with_states(select(Referral.id)).where(Referral.id == referral.id)).one()
    return row[1], row[2]


def reward_effect(session: Session, referral: Referral) -> dict | None:
    """The referrer's reward in an event's answer (`ReferralRewardSchema`'s fields), its time
    written as the answer always has (in the order event's own offset)."""
    reward = referral_reward(referral, _states(session, referral)[1])
    if reward is None:
        return None
    view = {"state": reward.state, "type": reward.type}
    view["matures_at"] = reward.matures_at.isoformat() if reward.matures_at else None
    for name in ("points", "reward_id", "code_id"):
        if getattr(reward, name) is not missing:
            view[name] = getattr(reward, name)
    return view


@dataclass(frozen=True)
class ReferralReward:
    """The referrer's reward for a referral (`ReferralRewardSchema`): points, or a catalog
    reward's code; the fields of the other type are `missing` (left out)."""

    state: str | None
    matures_at: datetime | None
    type: str  # "points" | "reward"
    points: int | object = missing
    reward_id: int | None | object = missing
    code_id: int | None | object = missing


def referral_reward(referral: Referral, state: str | None) -> ReferralReward | None:
    if referral.reward_state is None:
        return None
    if referral.reward_points is not None:
        return ReferralReward(
            state, referral.reward_matures_at, "points", points=referral.reward_points
        )
    return ReferralReward(
        state, referral.reward_matures_at, "reward",
        reward_id=referral.reward_catalog_id, code_id=referral.reward_code_id,
    )  # fmt: skip


@dataclass(frozen=True)
class ReferralView:
    """A referral as the API shows it (`ReferralSchema` to its referrer, `AdminReferralSchema`
    to an admin, `FriendReferralSchema` in the friend's export): its row (whose columns read
    through), its effective status and reward state, and the referrer's customer id."""

    row: Referral
    status: str
    reward_state: str | None
    referrer_id: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)

    @property
    def reward(self) -> ReferralReward | None:
        return referral_reward(self.row, self.reward_state)


def admin_view(session: Session, referral: Referral) -> ReferralView:
    status, reward_state = _states(session, referral)
    referrers = _customer_ids(session, [referral])
    return ReferralView(referral, status, reward_state, referrers.get(referral.referrer_id))


def admin_snapshot(session: Session, referral: Referral) -> dict:
    """The referral as the audit log keeps it: as an admin sees it."""
    shown: dict = AdminReferralSchema().dump(admin_view(session, referral))
    return shown


def get_referral(session: Session, referral_id: int) -> Referral:
    referral = session.get(Referral, referral_id)
    if referral is None:
        raise NotFound(f"No referral {referral_id}.")
    return referral


def _customer_ids(session: Session, referrals: list[Referral]) -> dict[int, str | None]:
    ids = {r.referrer_id for r in referrals}
    rows = session.execute(select(Member.id, Member.customer_id).where(Member.id.in_(ids)))
    return {member_id: customer_id for member_id, customer_id in rows}


def _page(
    session: Session,
    query: Select,
    limit: int,
    cursor: str | None,
    *,
    admin: bool,
    newest_first: bool = True,
) -> Page:
    """A page of `_with_states` rows, newest first (or oldest first), as `ReferralView`s (with
    the referrers' customer ids for an admin)."""
    page = page_by_id(
        session, query, Referral.id, limit, cursor, newest_first=newest_first,
        row_id=lambda row: row[0].id,
    )  # fmt: skip
    referrers = _customer_ids(session, [r[0] for r in page.items]) if admin else {}
    return page.map(
        lambda row: ReferralView(row[0], row[1], row[2], referrers.get(row[0].referrer_id))
    )


def list_referrals(
    session: Session,
    status: str | None,
    limit: int,
    cursor: str | None,
    *,
    newest_first: bool = True,
) -> Page:
    """`GET /v1/referrals`: newest first; the console's review queue reads it oldest first."""
    query = _with_states(select(Referral))
    if status is not None:
        query = query.where(effective_status == status)
    return _page(session, query, limit, cursor, admin=True, newest_first=newest_first)


@dataclass(frozen=True)
class ReferrerStats:
    """What a referrer sees (`MemberReferralsSchema`): their link, counts, points, and a page
    of their referrals."""

    code: str
    url: str
    clicks: int
    claims: int
    conversions: int
    rewards_pending: int
    rewards_earned: int
    points_pending: int
    points_earned: int
    items: list[ReferralView]
    next_cursor: str | None


def member_stats(
    session: Session, member: Member, limit: int = 50, cursor: str | None = None
) -> ReferrerStats:
    """What a referrer sees: counts, points, and their referrals (friends' emails masked)."""
    clicks = session.execute(
        select(func.count(ReferralClick.id)).where(ReferralClick.member_id == member.id)
    ).scalar_one()
    mine = Referral.referrer_id == member.id
    claims, conversions = session.execute(
        select(
            func.count(Referral.id).filter(Referral.source == "claim"),
            func.count(Referral.id).filter(Referral.status == CONVERTED),
        ).where(mine)
    ).one()
    rewards = session.execute(
        select(
            effective_reward_state,
            func.count(Referral.id),
            func.coalesce(func.sum(Referral.reward_points), 0),
        )
        .outerjoin(LedgerEntry, LedgerEntry.id == Referral.reward_entry_id)
        .where(mine, Referral.reward_state.is_not(None))
        .group_by(effective_reward_state)
    ).all()
    by_state = {state: (count, int(points)) for state, count, points in rewards}
    page = _page(session, _with_states(select(Referral)).where(mine), limit, cursor, admin=False)
    code = code_for(session, member.id)
    return ReferrerStats(
        code,
        links.share_url(code),
        clicks,
        claims,
        conversions,
        rewards_pending=by_state.get(REWARD_PENDING, (0, 0))[0],
        rewards_earned=by_state.get(REWARD_EARNED, (0, 0))[0],
        points_pending=by_state.get(REWARD_PENDING, (0, 0))[1],
        points_earned=by_state.get(REWARD_EARNED, (0, 0))[1],
        items=page.items,
        next_cursor=page.next_cursor,
    )


# --- erasure and demo -------------------------------------------------------------------------


def forget_member(session: Session, member: Member) -> None:
    """`member_erased` hook: the share link dies; as a friend, their details leave our rows;
    as a referrer, the answers of their friends' converting orders stop naming them."""
    session.execute(ReferralCode.__table__.delete().where(ReferralCode.member_id == member.id))
    converting = session.scalars(
        select(Referral.order_id).where(
            Referral.referrer_id == member.id, Referral.order_id.is_not(None)
        )
    ).all()
    if converting:
        erasure.scrub_event_answers(session, member, converting)
    as_friend = fraud.Friend(email=member.email_normalized, customer_id=member.customer_id)
    who = fraud.same_friend(as_friend, Referral.friend_customer_id, Referral.friend_email)
    if who:
        # Their address is in the cap's key too, and in the share-link click they came by.
        clicks = select(Referral.click_id).where(or_(*who), Referral.click_id.is_not(None))
        session.execute(
            update(ReferralClick)
            .where(ReferralClick.id.in_(clicks))
            .values(ip=None, client_key=None, user_agent=None),
            execution_options={"synchronize_session": False},
        )
        session.execute(
            update(Referral)
            .where(or_(*who))
            .values(friend_email=None, friend_customer_id=None, friend_name=None, ip=None,
                    ip_key=None, user_agent=None),
            execution_options={"synchronize_session": False},
        )  # fmt: skip


def export_member(session: Session, member: Member) -> dict:
    """The member's export: their share code, the friends they referred (as they see them,
    emails masked: those are the friends' data) and the referrals naming them as a friend."""
    code = session.scalar(select(ReferralCode.code).where(ReferralCode.member_id == member.id))
    referred = session.execute(
        _with_states(select(Referral))
        .where(Referral.referrer_id == member.id)
        .order_by(Referral.id)
    ).all()
    as_friend = []
    friend = fraud.Friend(email=member.email_normalized, customer_id=member.customer_id)
    who = fraud.same_friend(friend, Referral.friend_customer_id, Referral.friend_email)
    if who:
        rows = session.execute(
            _with_states(select(Referral)).where(or_(*who)).order_by(Referral.id)
        ).all()
        as_friend = [ReferralView(*row) for row in rows]
    return {
        "code": code,
        "referred": ReferralSchema(many=True).dump(ReferralView(*row) for row in referred),
        "as_friend": FriendReferralSchema(many=True).dump(as_friend),
    }


def seed_demo(session: Session) -> None:
    """Friend: 10.00 off a first order of 40.00 or more. Referrer: 500 points."""
    settings = get_settings(session, for_update=True)
    settings.enabled = True
    settings.friend_reward_kind = "amount_off"
    settings.friend_reward_amount = 1000
    settings.friend_reward_percent = None
    settings.friend_reward_sku = None
    settings.friend_reward_min_order = 4000
    settings.referrer_reward_points = 500
    settings.referrer_reward_id = None
    session.flush()
