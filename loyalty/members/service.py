"""Members: enrolment, the member view, the activity feed, adjustments and erasure."""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, any_, bindparam, cast, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from loyalty import cache, erasure, fastsql, ledger
from loyalty import email as mail
from loyalty.audit import record_change
from loyalty.dates import iso
from loyalty.email.models import EmailMessage
from loyalty.errors import Conflict, NotFound
from loyalty.extensions import read_connection, session_started
from loyalty.fastsql import FastStatement, built, insert_json_rows, json_rows
from loyalty.hooks import Hooks
from loyalty.ledger import LedgerEntry
from loyalty.lookalikes import normalize_email  # noqa: F401 - one rule, used from here too
from loyalty.members.models import Member
from loyalty.orders.models import Order
from loyalty.paging import Page, page_by_id
from loyalty.reports import aggregates as report_aggregates
from loyalty.tiers import service as tiers
from loyalty.tiers.models import TierChange
from loyalty.types import UTCDateTime, utcnow
from loyalty.webhooks import service as webhooks

# A member enrolled by an event older than this (a store's history imported, a late order
# event) is not sent the welcome email: it would greet them long after they joined.
WELCOME_WITHIN = timedelta(days=1)


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
    welcome(session, hooks, [member])
    return member, True


def welcome(session: Session, hooks: Hooks, new_members: list[Member]) -> None:
    """What follows the INSERT of new members, however they were inserted (`enroll`,
    `enroll_many`, an order event's own statement): each domain's `member_enrolled` hooks
    (sign-up points, referral share code...), then `member.enrolled` and the welcome email
    where something subscribes (`_announce`). A hook with a form for many members
    (`hooks.member_enrolled_many`) runs that form once for all of them."""
    for hook in hooks.member_enrolled:
        many = hooks.member_enrolled_many.get(hook) if len(new_members) > 1 else None
        if many is not None:  # the hook's set-based form: its statements for all of them
            many(session, new_members)
            continue
        for member in new_members:
            hook(session, member)
    _announce(session, new_members)


def enrolled_event(member: Member) -> dict:
    """The `member.enrolled` webhook's data (with the balances read after the enrolment
    hooks)."""
    return {
        "customer_id": member.customer_id,
        "email": member.email,
        "enrolled_at": iso(member.enrolled_at),
    }


def _announce(session: Session, members: list[Member]) -> None:
    """`member.enrolled` for new members (after the enrolment hooks: with their sign-up
    points), and the welcome email to those who just joined: a read of their balances and a
    batch of messages, one INSERT ... SELECT of emails, whatever their number."""
    ids = [member.id for member in members]
    if webhooks.subscribed(session, "member.enrolled"):
        session.flush()
        balances = {
            row.id: row
            for row in session.execute(
                select(Member.id, Member.points_available, Member.points_pending).where(
                    Member.id.in_(ids)
                )
            )
        }
        webhooks.emit_many(
            session,
            "member.enrolled",
            [
                {
                    **enrolled_event(m),
                    "points_available": balances[m.id].points_available,
                    "points_pending": balances[m.id].points_pending,
                }
                for m in members
            ],
        )
    if mail.enabled():
        session.flush()
        dialect = session.get_bind().dialect.name
        welcome = select(
            Member.id.label("member_id"),
            webhooks.json_object(
                dialect,
                points_available=Member.points_available,
                points_pending=Member.points_pending,
            ).label("data"),
            (literal("welcome:") + cast(Member.id, String)).label("dedupe_key"),
        ).where(Member.id.in_(ids), Member.enrolled_at >= utcnow() - WELCOME_WITHIN)
        mail.queue_selected(session, "welcome", welcome, at=utcnow())


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
        **new_member_values(customer_id, email, name, birthday, enrolled_at), tier_id=tier_id
    )


def new_member_values(
    customer_id: str,
    email: str | None,
    name: str | None,
    birthday: str | None,
    enrolled_at: datetime | None,
) -> dict:
    """Every column of a new member's row but `id` and `tier_id` (the base tier's), as
    enrolment writes them: for an INSERT written in SQL (an order event's, on PostgreSQL) to
    make the same row as `enroll`."""
    return {
        "customer_id": customer_id,
        "email": email,
        "email_normalized": normalize_email(email),
        "name": name,
        "birthday": birthday,
        "enrolled_at": enrolled_at or utcnow(),
        "points_available": 0,
        "points_pending": 0,
        "points_lifetime": 0,
        "last_activity_at": None,
        "erased_at": None,
        "email_unsubscribed_at": None,
        "referral_check": True,  # a claim may have named them before they joined
    }


def enroll_many(session: Session, hooks: Hooks, people: list[dict]) -> list[Member]:
    """Enrol customers that are not members (the caller has looked), as `enroll` does each
    one, in one INSERT; a `member_enrolled` hook with a form for many members
    (`hooks.member_enrolled_many`) runs once for all of them. `people` holds `customer_id`,
    `email`, `name`, `enrolled_at`. A customer enrolled meanwhile by another transaction is
    an IntegrityError, with no savepoint to absorb it: the caller's transaction is done, and
    the caller rolls it back."""
    tier_id = tiers.base_tier(session).id
    if session.get_bind().dialect.name != "postgresql":
        members = [
            _new_member(p["customer_id"], p.get("email"), p.get("name"), None,
                        p["enrolled_at"], tier_id)
            for p in people
        ]  # fmt: skip
        session.add_all(members)
        session.flush()
        welcome(session, hooks, members)
        return members
    # PostgreSQL: the rows in one INSERT of JSON rows (`fastsql.json_rows`), then made the
    # session's loaded rows, as a flush would leave them.
    rows = [
        {**new_member_values(p["customer_id"], p.get("email"), p.get("name"), None,
                             p["enrolled_at"]), "tier_id": tier_id}
        for p in people
    ]  # fmt: skip
    inserted = session.connection().execute(_INSERT_MEMBERS, {"rows": json_rows(rows)})
    ids: dict[str, int] = {customer_id: pk for customer_id, pk in inserted}
    members = []
    for row in rows:
        member = built(Member, {"id": ids[row["customer_id"]], **row})
        make_transient_to_detached(member)
        session.add(member)
        members.append(member)
    welcome(session, hooks, members)
    return members


_INSERT_MEMBERS = insert_json_rows(
    Member.__table__,
    tuple(c.name for c in Member.__table__.c if c.name != "id"),
    "customer_id, id",
)


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
        """(view, row) of the member the parameters find, or None: the view as the fast path
        writes it (`view_from_row`)."""
        row = self.row(session, hooks, **params)
        return None if row is None else (view_from_row(session, hooks, row), row)

    def row(self, session: Session, hooks: Hooks, **params: object) -> Any:
        """The row of the member the parameters find, or None.

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
        if row is not None:
            cache.seen(session, row.config_version)  # StaleConfig: the request runs again
        return row


@dataclass(frozen=True)
class MemberView:
    """The member view (`MemberSchema`): the member's columns (the balances are
    `points_available`, `points_pending`, `points_lifetime`), their standing, and the fields
    the domains add (`hooks.member_view`)."""

    id: str | None  # the customer id; None once erased
    email: str | None
    name: str | None
    birthday: str | None
    enrolled_at: datetime
    points_available: int
    points_pending: int
    points_lifetime: int
    standing: tiers.Standing
    referral: dict | None = None


def member_view_of_row(session: Session, hooks: Hooks, row: Any) -> MemberView:
    """The member view (`MemberSchema` dumps it) from a row of a `ViewQuery`."""
    view = MemberView(
        row.customer_id,
        row.email,
        row.name,
        row.birthday,
        row.enrolled_at,
        row.points_available,
        row.points_pending,
        row.points_lifetime,
        tiers.standing_of(row),
    )
    for i, part in enumerate(hooks.member_view):
        view = replace(view, **part.fields(session, row, getattr(row, f"part_{i}")))
    return view


def view_from_row(session: Session, hooks: Hooks, row: Any) -> dict:
    """The fast path of the member view, for the reads that answer most often (`GET
    /v1/members/{id}`, `/v1/me`, an order event's answer): the JSON `MemberSchema` gives for
    `member_view_of_row`, written by hand (tests hold the two equal, member by member)."""
    view = {
        "id": row.customer_id,
        "email": row.email,
        "name": row.name,
        "birthday": row.birthday,
        "enrolled_at": iso(row.enrolled_at),
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
    """The view of a member already loaded (e.g. by an order event), as stored now: the fast
    path's JSON-ready dict (`view_from_row`)."""
    found = BY_ID.find(session, hooks, member_id=member.id)
    if found is None:
        raise LookupError(f"member {member.id} not found")
    return found[0]


BY_IDS = ViewQuery(lambda: [Member.id.in_(bindparam("member_ids", expanding=True))])
# PostgreSQL: the ids as one array parameter, the statement prepared once (`FastStatement`),
# where an expanding IN is rendered anew with a parameter per id at each execution.
BY_ID_ARRAY = ViewQuery(
    lambda: [Member.id == any_(bindparam("member_ids", type_=postgresql.ARRAY(BigInteger)))]
)


def member_views(session: Session, hooks: Hooks, member_ids: list[int]) -> dict[int, dict]:
    """`member_view` of many members, as stored now, in one SELECT: member id -> view."""
    if not member_ids:
        return {}
    session.flush()
    connection, params = session.connection(), {"now": utcnow(), "member_ids": member_ids}
    if fastsql.on(connection):
        rows = BY_ID_ARRAY.statement(hooks).all(connection, params)
    else:
        rows = list(connection.execute(BY_IDS.statement(hooks).statement, params))
    views, stamp = {}, None
    for row in rows:
        if row.config_version != stamp:  # one statement: one stamp, checked once
            stamp = row.config_version
            cache.seen(session, stamp)  # StaleConfig: the request runs again
        views[row.id] = view_from_row(session, hooks, row)
    return views


def load_member_view(session: Session, hooks: Hooks, member: Member) -> MemberView:
    """The view of a member already loaded, as stored now, for `MemberSchema` to dump."""
    return member_view_of_row(session, hooks, BY_ID.row(session, hooks, member_id=member.id))


def get_member_view(session: Session, hooks: Hooks, customer_id: str) -> dict:
    """`GET /v1/members/{id}`: the view of an enrolled (not erased) member, or 404."""
    found = BY_CUSTOMER_ID.find(session, hooks, customer_id=customer_id)
    if found is None:
        raise NotFound(f"No member {customer_id!r}.")
    return found[0]


def activity(session: Session, member: Member, limit: int, cursor: str | None) -> Page:
    """A page of the member's ledger entries, newest first (`EntryPageSchema`)."""
    query = select(LedgerEntry).where(LedgerEntry.member_id == member.id)
    return page_by_id(session, query, LedgerEntry.id, limit, cursor)


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
    if webhooks.subscribed(session, "points.adjusted"):
        session.refresh(member, ["points_available", "points_pending"])
        webhooks.emit(
            session,
            "points.adjusted",
            {
                "customer_id": member.customer_id,
                "entry_id": entry.id,
                "points": points,
                "reason": reason,
                "points_available": member.points_available,
                "points_pending": member.points_pending,
                "occurred_at": iso(entry.occurred_at),
            },
        )
    return entry


def export(session: Session, hooks: Hooks, member: Member) -> dict:
    """`GET /v1/members/{id}/export` (`MemberExportSchema`): everything held about the member
    — their view, every ledger entry, their orders (by member, customer id or mailbox), tier
    changes, the program's emails to them, and each domain's section (`hooks.member_export`:
    codes, referrals, gift card purchases)."""
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.member_id == member.id).order_by(LedgerEntry.id)
    )
    orders = session.scalars(select(Order).where(erasure.orders_of(member)).order_by(Order.id))
    changes = session.scalars(
        select(TierChange).where(TierChange.member_id == member.id).order_by(TierChange.id)
    )
    emails = session.scalars(
        select(EmailMessage).where(EmailMessage.member_id == member.id).order_by(EmailMessage.id)
    )
    return {
        "profile": load_member_view(session, hooks, member),
        "ledger": list(entries),
        "orders": list(orders),
        "tier_history": list(changes),
        "emails": list(emails),
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
    if member.customer_id is not None:  # the reports' rows under the id go with it
        report_aggregates.forget_customer(session, member.customer_id)
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
