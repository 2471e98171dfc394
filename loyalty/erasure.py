"""Erasure: every stored copy of a member's email, name and customer id is scrubbed.

Besides the member's row and their orders, copies live in stored answers (order events'
answers, idempotent replies), the webhook outbox and the audit log. These are JSON; a copy is
a string value equal (ignoring case) to one of the member's identifiers, and redacting it
replaces that value with null, so a replay keeps its shape:

- an order event's answer whose `member` is the erased member answers `member: null`;
  any other value naming them (a converted referral's `referrer_id`, say) is null;
- an idempotent reply keeps its status, with those values null (a member view in it reads
  `id`, `email`, `name`, `birthday`: null, as an erased member's own data does).

The email outbox is not redacted but emptied: every message to the member or their address
is deleted, sent or not.

The name and birthday are only redacted in a document that also names the member by customer
id or email: alone they may well be someone else's.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Text, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from loyalty.audit import AuditLog
from loyalty.email.models import EmailMessage
from loyalty.extensions import rowcount
from loyalty.idempotency import IdempotencyRecord, open_body, seal_body
from loyalty.lookalikes import normalize_email
from loyalty.members.models import Member
from loyalty.orders.models import Order, ProcessedEvent
from loyalty.sealing import Unsealable
from loyalty.webhooks.models import WebhookMessage

BATCH = 500


@dataclass(frozen=True)
class Identity:
    """What names a member: customer id and emails (strong), name and birthday (weak)."""

    strong: frozenset[str]
    weak: frozenset[str]

    @classmethod
    def of(cls, member: Member) -> "Identity":
        def folded(values):
            return frozenset(v.casefold() for v in values if v)

        return cls(
            folded((member.customer_id, member.email, member.email_normalized)),
            folded((member.name, member.birthday)),
        )

    def names(self, value) -> bool:
        """Does this JSON value name the member by customer id or email anywhere?"""
        if isinstance(value, str):
            return value.casefold() in self.strong
        if isinstance(value, dict):
            return any(self.names(v) for v in value.values())
        if isinstance(value, list):
            return any(self.names(v) for v in value)
        return False

    def redact(self, value):
        """`value` with every string naming the member (strong or weak) replaced by None."""
        if isinstance(value, str):
            folded = value.casefold()
            return None if folded in self.strong or folded in self.weak else value
        if isinstance(value, dict):
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value

    def text_patterns(self) -> set[str]:
        """How a strong identifier appears in JSON text, lower case (for a LIKE prefilter):
        encoded with and without ASCII escapes (SQLite keeps Python's, PostgreSQL its own)."""
        return {
            json.dumps(value, ensure_ascii=ascii).lower()
            for value in self.strong
            for ascii in (True, False)
        }


def _mentions(column, identity: Identity):
    """A cheap SQL prefilter: the JSON column's text contains a strong identifier."""
    text = func.lower(cast(column, Text))
    return or_(*(text.contains(p, autoescape=True) for p in identity.text_patterns()))


def redact_document(document, identity: Identity):
    """The redacted document, or None when it does not name the member."""
    if not identity.names(document):
        return None
    return identity.redact(document)


def _scrub_json_rows(session: Session, model, key, columns: Iterable, identity: Identity, where):
    """Redact the JSON `columns` of the rows of `model` that `where` finds."""
    columns = list(columns)
    rows = session.execute(select(key, *columns).where(where)).all()
    for row in rows:
        changes = {}
        for column, value in zip(columns, row[1:], strict=True):
            redacted = redact_document(value, identity)
            if redacted is not None and redacted != value:
                changes[column.key] = redacted
        if changes:
            session.execute(
                update(model).where(key == row[0]).values(changes),
                execution_options={"synchronize_session": False},
            )


def owned_orders(member: Member):
    """Where-clause: the member's orders, by member or by customer id (paid before enrolling)."""
    who = [Order.member_id == member.id]
    if member.customer_id:
        who.append(Order.customer_id == member.customer_id)
    return or_(*who)


def orders_of(member: Member):
    """Where-clause: the orders naming the member: `owned_orders` and those from their mailbox
    (a guest checkout)."""
    if not member.email_normalized:
        return owned_orders(member)
    return or_(owned_orders(member), Order.email_normalized == member.email_normalized)


def scrub_event_answers(session: Session, member: Member, order_ids) -> None:
    """Redact the member from the stored answers of the events of `order_ids`, and of the
    events recorded before answers kept their order (found by their text)."""
    identity = Identity.of(member)
    customer_id = (member.customer_id or "").casefold()
    found = [ProcessedEvent.order_id.is_(None) & _mentions(ProcessedEvent.response, identity)]
    order_ids = sorted(set(order_ids))
    for start in range(0, len(order_ids), BATCH):
        found.append(ProcessedEvent.order_id.in_(order_ids[start : start + BATCH]))
    rows = session.execute(
        select(ProcessedEvent.event_id, ProcessedEvent.response).where(or_(*found))
    ).all()
    for event_id, answer in rows:
        if not isinstance(answer, dict):
            continue
        redacted = dict(answer)
        shown = redacted.get("member")
        if isinstance(shown, dict) and str(shown.get("id", "")).casefold() == customer_id:
            redacted["member"] = None
        redacted = identity.redact(redacted) if identity.names(redacted) else redacted
        if redacted != answer:
            session.execute(
                update(ProcessedEvent)
                .where(ProcessedEvent.event_id == event_id)
                .values(response=redacted),
                execution_options={"synchronize_session": False},
            )


def scrub_idempotent_replies(session: Session, identity: Identity) -> None:
    """Every stored reply is sealed, so each is opened and looked at (they are short-lived:
    IDEMPOTENCY_KEY_TTL_HOURS bounds them); the ones naming the member are resealed redacted.
    A reply is never deleted: its request would then run again on a retry."""
    last = 0
    while True:
        records = session.execute(
            select(IdempotencyRecord.id, IdempotencyRecord.body)
            .where(IdempotencyRecord.id > last)
            .order_by(IdempotencyRecord.id)
            .limit(BATCH)
        ).all()
        if not records:
            return
        for record_id, sealed in records:
            try:
                document = json.loads(open_body(sealed))
            except (Unsealable, ValueError):
                continue  # not JSON (nothing of ours answers otherwise) or no longer readable
            redacted = redact_document(document, identity)
            if redacted is not None and redacted != document:
                body = json.dumps(redacted, separators=(",", ":"), sort_keys=True) + "\n"
                session.execute(
                    update(IdempotencyRecord)
                    .where(IdempotencyRecord.id == record_id)
                    .values(body=seal_body(body)),
                    execution_options={"synchronize_session": False},
                )
        last = records[-1][0]


def scrub_stored_copies(session: Session, member: Member) -> None:
    """Every copy of the member's identifiers outside the domains' own rows: the answers of
    their orders' events, idempotent replies, the webhook outbox, the audit log. (A domain
    whose effects name the member in other customers' answers scrubs those in its
    `member_erased` hook, with `scrub_event_answers`.)"""
    _scrub_copies(session, member, orders_of(member))


def _scrub_copies(session: Session, member: Member, orders_where) -> None:
    identity = Identity.of(member)
    order_ids = session.scalars(select(Order.order_id).where(orders_where)).all()
    scrub_event_answers(session, member, order_ids)
    scrub_idempotent_replies(session, identity)
    _scrub_json_rows(
        session, WebhookMessage, WebhookMessage.id, [WebhookMessage.data], identity,
        _mentions(WebhookMessage.data, identity),
    )  # fmt: skip
    _scrub_json_rows(
        session, AuditLog, AuditLog.id, [AuditLog.before, AuditLog.after], identity,
        or_(_mentions(AuditLog.before, identity), _mentions(AuditLog.after, identity)),
    )  # fmt: skip
    forget_emails(session, member, identity)


def forget_emails(session: Session, member: Member, identity: Identity) -> None:
    """The email outbox keeps nothing for them: every message to the member, or to one of
    their addresses, queued or sent, is deleted (what was queued is never sent)."""
    addresses = [a for a in identity.strong if "@" in a]
    who: list[ColumnElement[bool]] = []
    if addresses:
        who.append(func.lower(EmailMessage.to_address).in_(addresses))
    if member.id is not None:
        who.append(EmailMessage.member_id == member.id)
    if who:
        session.execute(
            delete(EmailMessage).where(or_(*who)),
            execution_options={"synchronize_session": False},
        )


def erase_customer(session: Session, customer_id: str, email: str | None) -> int:
    """A customer who paid without ever becoming a member (auto-enrolment off) is erased as a
    member would be: their orders (by customer id, or from their mailbox) lose the customer id,
    mailbox and attributes, and the stored copies naming them are redacted. Returns how many
    orders were theirs."""
    never_member = Member(  # never added to the session: what names them, for `Identity`
        customer_id=customer_id, email=email, email_normalized=normalize_email(email)
    )
    theirs = Order.customer_id == customer_id
    if never_member.email_normalized:
        theirs = or_(theirs, Order.email_normalized == never_member.email_normalized)
    _scrub_copies(session, never_member, theirs)
    return rowcount(
        session.execute(
            update(Order)
            .where(theirs)
            .values(customer_id=None, email_normalized=None, attributes={}),
            execution_options={"synchronize_session": False},
        )
    )
