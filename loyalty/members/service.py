"""Members: enrolment, the member view, the activity feed, adjustments and erasure."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty import cache, erasure, ledger
from loyalty.audit import record_change
from loyalty.cursors import decode_cursor, encode_cursor
from loyalty.errors import Conflict, NotFound
from loyalty.extensions import read_connection, session_started
from loyalty.fastsql import FastStatement
from loyalty.hooks import Hooks
from loyalty.ledger import LedgerEntry
from loyalty.lookalikes import normalize_email  # noqa: F401 - one rule, used from here too
from loyalty.members.models import Member
from loyalty.orders.models import Order
from loyalty.tiers import service as tiers
from loyalty.tiers.models import TierChange
from loyalty.types import UTCDateTime, utcnow


def find_member(session: Session, customer_id: str, *, lock: bool = False) -> Member | None:
    query = select(Member).where(Member.customer_id == customer_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.execute(query).scalar_one_or_none()


def get_member(session: Session, customer_id: str, *, lock: bool = False) -> Member:
    member = find_member(session, customer_id, lock=lock)
    if member is None:
        raise NotFound(f"No member {customer_id!r}.")
    return member


def enroll(
    session: Session,
    hooks: Hooks,
    customer_id: str,
    email: str | None,
    name: str | None = None,
    birthday: str | None = None,
    enrolled_at: datetime | None = None,
) -> tuple[Member, bool]:
    """Enroll a member, or return the existing one. Safe against concurrent enrolments."""
    existing = find_member(session, customer_id)
    if existing is not None:
        return existing, False
    member = _new_member(
        customer_id, email, name, birthday, enrolled_at, tiers.base_tier(session).id
    )
    try:
        with session.begin_nested():
            session.add(member)
            session.flush()
    except IntegrityError:
        # Someone enrolled the same customer id at the same moment; theirs stands.
        existing = find_member(session, customer_id)
        if existing is None:
            raise
        return existing, False
    for hook in hooks.member_enrolled:
        hook(session, member)
    return member, True


def _new_member(
    customer_id: str,
    email: str | None,
    name: str | None,
    birthday: str | None,
    enrolled_at: datetime | None,
    tier_id: int,
) -> Member:
    """A new member as enrolment makes one: at the base tier, enrolled now unless told when."""
    return Member(
        customer_id=customer_id,
        email=email,
        email_normalized=normalize_email(email),
        name=name,
        birthday=birthday,
        enrolled_at=enrolled_at or utcnow(),
        tier_id=tier_id,
    )


def enroll_many(session: Session, hooks: Hooks, people: list[dict]) -> list[Member]:
    """Enrol customers that are not members (the caller has looked), as `enroll` does each
    one, in one INSERT: `people` holds `customer_id`, `email`, `name`, `enrolled_at`. A
    customer enrolled meanwhile by another transaction is an IntegrityError, with no savepoint
    to absorb it: the caller's transaction is done, and the caller rolls it back."""
    tier_id = tiers.base_tier(session).id
    members = [
        _new_member(p["customer_id"], p.get("email"), p.get("name"), None, p["enrolled_at"],
                    tier_id)
        for p in people
    ]  # fmt: skip
    session.add_all(members)
    session.flush()
    for member in members:
        for hook in hooks.member_enrolled:
            hook(session, member)
    return members


def enroll_from_api(session: Session, hooks: Hooks, data: dict) -> tuple[Member, bool]:
    existing = find_member(session, data["id"])
    if existing is not None:
        if normalize_email(existing.email) != normalize_email(data["email"]):
            raise Conflict(f"Member {data['id']!r} exists with another email.")
        return existing, False
    member, created = enroll(
        session, hooks, data["id"], data["email"], data.get("name"), data.get("birthday")
    )
    if not created and normalize_email(member.email) != normalize_email(data["email"]):
        raise Conflict(f"Member {data['id']!r} exists with another email.")
    return member, created


# The member's own columns in the view, named as `view_from_row` reads them.
VIEW_COLUMNS = (
    Member.id,
    Member.customer_id,
    Member.email,
    Member.name,
    Member.birthday,
    Member.enrolled_at,
    Member.points_available,
    Member.points_pending,
    Member.points_lifetime,
    Member.erased_at,
)


class ViewQuery:
    """The whole member view of the member `conditions` find, in one SELECT: the member's row,
    its standing (`tiers.with_standing`), each domain's `member_view` part and `extra` columns.

    `conditions` and `extra` are callables returning clauses on bind parameters: the statement
    is built once per set of domain parts and reused (building it costs more than running it).
    """

    def __init__(self, conditions: Callable[[], list], extra: Callable[[], list] = list):
        self._conditions, self._extra = conditions, extra
        self._built: dict[tuple, FastStatement] = {}

    def statement(self, hooks: Hooks) -> FastStatement:
        parts = tuple(hooks.member_view)
        built = self._built.get(parts)
        if built is None:
            columns = [part.column().label(f"part_{i}") for i, part in enumerate(parts)]
            query = select(*VIEW_COLUMNS, *columns, *self._extra(), cache.version_column())
            now = bindparam("now", type_=UTCDateTime())
            built = FastStatement(tiers.with_standing(query, now).where(*self._conditions()))
            self._built[parts] = built
        return built

    def find(self, session: Session, hooks: Hooks, **params: object) -> tuple[dict, Any] | None:
        """(view, row) of the member the parameters find, or None.

        Inside a transaction (an order event's, say) it reads through it, after its changes;
        a request that has not begun one reads on a pooled connection of its own: one
        statement needs no transaction, and the request has none to begin and commit."""
        statement = self.statement(hooks)
        params = {"now": utcnow(), **params}
        if session_started(session):
            session.flush()
            row = statement.one_or_none(session.connection(), params)
        else:
            with read_connection(session) as connection:
                row = statement.one_or_none(connection, params)
        if row is None:
            return None
        cache.seen(session, row.config_version)  # StaleConfig: the request runs again
        return view_from_row(session, hooks, row), row


def view_from_row(session: Session, hooks: Hooks, row: Any) -> dict:
    """The member view (`MemberSchema`) from a row of a `ViewQuery` (a named tuple of its
    columns, as `FastStatement` reads them)."""
    view = {
        "id": row.customer_id,
        "email": row.email,
        "name": row.name,
        "birthday": row.birthday,
        "enrolled_at": row.enrolled_at.isoformat(),
        "points": {
            "available": row.points_available,
            "pending": row.points_pending,
            "lifetime_earned": row.points_lifetime,
        },
        **tiers.standing_view(row),
        "referral": None,
    }
    for i, part in enumerate(hooks.member_view):
        view.update(part.fields(session, row, getattr(row, f"part_{i}")))
    return view


BY_ID = ViewQuery(lambda: [Member.id == bindparam("member_id")])
# Erased members have no customer id: they are not found.
BY_CUSTOMER_ID = ViewQuery(lambda: [Member.customer_id == bindparam("customer_id")])


def member_view(session: Session, hooks: Hooks, member: Member) -> dict:
    """The view of a member already loaded (e.g. by an order event), as stored now."""
    found = BY_ID.find(session, hooks, member_id=member.id)
    if found is None:
        raise LookupError(f"member {member.id} not found")
    return found[0]


def get_member_view(session: Session, hooks: Hooks, customer_id: str) -> dict:
    """`GET /v1/members/{id}`: the view of an enrolled (not erased) member, or 404."""
    found = BY_CUSTOMER_ID.find(session, hooks, customer_id=customer_id)
    if found is None:
        raise NotFound(f"No member {customer_id!r}.")
    return found[0]


def entry_view(entry: LedgerEntry) -> dict:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "points": entry.points,
        "state": entry.state,
        "created_at": entry.created_at,
        "occurred_at": entry.occurred_at,
        "matures_at": entry.matures_at,
        "expires_at": entry.expires_at,
        "source": {"type": entry.source_type, "id": entry.source_id},
        "rule_id": entry.rule_id,
        "detail": entry.detail or {},
    }


def activity(session: Session, member: Member, limit: int, cursor: str | None) -> dict:
    query = select(LedgerEntry).where(LedgerEntry.member_id == member.id)
    before = decode_cursor(cursor)
    if before is not None:
        query = query.where(LedgerEntry.id < before)
    rows = list(session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [entry_view(e) for e in rows],
        "next_cursor": encode_cursor(rows[-1].id) if more else None,
    }


def adjust(session: Session, member: Member, points: int, reason: str, actor: str) -> LedgerEntry:
    """An admin's correction of the member's points (audited)."""
    entry = ledger.post_entry(
        session,
        member.id,
        "adjust",
        points,
        source_type="admin",
        source_id=actor,
        detail={"reason": reason},
        spend=points < 0,
    )
    record_change(
        session, "member.adjust", "member", member.id, None,
        {"points": points, "reason": reason, "entry_id": entry.id}, actor=actor,
    )  # fmt: skip
    return entry


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def order_export(order: Order) -> dict:
    return {
        "id": order.order_id,
        "customer_id": order.customer_id,
        "email": order.email_normalized,
        "status": order.status,
        "currency": order.currency,
        "occurred_at": _iso(order.occurred_at),
        "total_amount": order.total_amount,
        "eligible_amount": order.eligible_amount,
        "refunded_amount": order.refunded_amount,
        "points_awarded": order.points_awarded,
        "points_reversed": order.points_reversed,
        "lines": order.lines,
        "attributes": order.attributes,
        "detail": order.detail,
    }


def export(session: Session, hooks: Hooks, member: Member) -> dict:
    """`GET /v1/members/{id}/export`: everything held about the member — their view, every
    ledger entry, their orders (by member, customer id or mailbox), tier history, and each
    domain's section (`hooks.member_export`: codes, referrals, gift card purchases)."""
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.member_id == member.id).order_by(LedgerEntry.id)
    )
    orders = session.scalars(select(Order).where(erasure.orders_of(member)).order_by(Order.id))
    changes = session.scalars(
        select(TierChange).where(TierChange.member_id == member.id).order_by(TierChange.id)
    )
    return {
        "profile": member_view(session, hooks, member),
        "ledger": [entry_view(entry) for entry in entries],
        "orders": [order_export(order) for order in orders],
        "tier_history": [
            {**tiers.change_view(change), "occurred_at": _iso(change.occurred_at)}
            for change in changes
        ],
        **{name: part(session, member) for name, part in hooks.member_export.items()},
    }


def erase(session: Session, hooks: Hooks, member: Member, actor: str | None = None) -> None:
    """Forget who the member was; keep the ledger (anonymously) so the books still add up.

    No copy of their email, name or customer id is left: the domains scrub theirs (hooks),
    then the stored answers, outbox and audit log are redacted (`loyalty.erasure`), then their
    orders (by member, customer id or mailbox) and their own row. The erasure is audited, by
    `actor` (by default the request's caller)."""
    for hook in hooks.member_erased:
        hook(session, member)
    erasure.scrub_stored_copies(session, member)
    session.execute(
        update(Order)
        .where(erasure.owned_orders(member))
        .values(customer_id=None, email_normalized=None, attributes={})
    )
    if member.email_normalized:  # a guest order from their mailbox: not theirs, their email
        session.execute(
            update(Order)
            .where(Order.email_normalized == member.email_normalized)
            .values(email_normalized=None, attributes={})
        )
    member.customer_id = None
    member.email = None
    member.email_normalized = None
    member.name = None
    member.birthday = None
    member.erased_at = utcnow()
    session.flush()
    record_change(session, "member.erase", "member", member.id, None, None, actor=actor)
