"""Members: enrolment, the member view, the activity feed, adjustments and erasure."""

import base64
import binascii
from collections.abc import Callable

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty import cache, ledger
from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.extensions import read_connection, session_started
from loyalty.fastsql import FastStatement
from loyalty.hooks import Hooks
from loyalty.ledger import LedgerEntry
from loyalty.members.models import Member
from loyalty.orders.models import Order
from loyalty.tiers import service as tiers
from loyalty.types import UTCDateTime, utcnow

GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}


def normalize_email(email: str | None) -> str | None:
    """One mailbox, one spelling: lower case, no `+tag`, and for Gmail no dots, one domain."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


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
    enrolled_at=None,
) -> tuple[Member, bool]:
    """Enroll a member, or return the existing one. Safe against concurrent enrolments."""
    existing = find_member(session, customer_id)
    if existing is not None:
        return existing, False
    member = Member(
        customer_id=customer_id,
        email=email,
        email_normalized=normalize_email(email),
        name=name,
        birthday=birthday,
        enrolled_at=enrolled_at or utcnow(),
        tier_id=tiers.base_tier(session).id,
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


def enroll_from_api(session, hooks, data: dict) -> tuple[Member, bool]:
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

    def find(self, session: Session, hooks: Hooks, **params):
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


def view_from_row(session: Session, hooks: Hooks, row) -> dict:
    """The member view (`MemberSchema`) from a row of a `ViewQuery`."""
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
    return BY_ID.find(session, hooks, member_id=member.id)[0]


def get_member_view(session: Session, hooks: Hooks, customer_id: str) -> dict:
    """`GET /v1/members/{id}`: the view of an enrolled (not erased) member, or 404."""
    found = BY_CUSTOMER_ID.find(session, hooks, customer_id=customer_id)
    if found is None:
        raise NotFound(f"No member {customer_id!r}.")
    return found[0]


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed(errors={"cursor": ["Not a cursor from this API."]}) from exc


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
    return ledger.post_entry(
        session,
        member.id,
        "adjust",
        points,
        source_type="admin",
        source_id=actor,
        detail={"reason": reason},
        spend=points < 0,
    )


def erase(session: Session, hooks: Hooks, member: Member) -> None:
    """Forget who the member was; keep the ledger (anonymously) so the books still add up."""
    for hook in hooks.member_erased:
        hook(session, member)
    session.execute(
        update(Order)
        .where(Order.member_id == member.id)
        .values(customer_id=None, email_normalized=None, attributes={})
    )
    member.customer_id = None
    member.email = None
    member.email_normalized = None
    member.name = None
    member.birthday = None
    member.erased_at = utcnow()
    session.flush()
