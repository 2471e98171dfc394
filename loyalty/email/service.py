"""Writing the email outbox, rendering its messages, and the members' unsubscribe links.

Every message but a gift card's delivery is non-transactional: a member who unsubscribed is
not written to, and a message queued before they did is not sent. An erased member gets
nothing (erasure deletes what is queued for them). Each message carries its own unsubscribe
link (a signed token naming the member, `unsubscribe_url`) and RFC 8058 one-click headers.
"""

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Select, literal, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from loyalty.email.models import EmailMessage
from loyalty.extensions import rowcount
from loyalty.members.models import Member
from loyalty.program.service import currency_exponent
from loyalty.sealing import EMAIL_SECRET, Sealer
from loyalty.types import utcnow

UNSUBSCRIBE_SALT = "loyalty.email.unsubscribe"

# Template name -> (subject, transactional). Each has `<name>.txt` and `<name>.html` in
# templates/email/; the subject is a template too.
TEMPLATES: dict[str, tuple[str, bool]] = {
    "welcome": ("Welcome to {{ program }}", False),
    "points_earned": ("You earned {{ data.points|number }} points at {{ program }}", False),
    "tier_reached": ("You reached {{ data.tier }} at {{ program }}", False),
    "points_expiring": ("Your {{ data.points|number }} {{ program }} points expire soon", False),
    "referral_reward": ("Your friend's order earned you a reward at {{ program }}", False),
    "gift_card": ("A {{ program }} gift card for you", True),
}

_MESSAGES = EmailMessage.__table__


def enabled() -> bool:
    """Is the email channel on (SMTP_HOST set)?"""
    return bool(current_app.config["SMTP_HOST"])


def _insert(session: Session) -> Any:
    postgresql = session.get_bind().dialect.name == "postgresql"
    return postgresql_insert if postgresql else sqlite_insert


def _row(template: str, data: dict, at: datetime, **values: Any) -> dict:
    return {
        "template": template,
        "data": data,
        "transactional": TEMPLATES[template][1],
        "created_at": at,
        "attempts": 0,
        "next_attempt_at": at,
        **values,
    }


def _write(session: Session, row: dict) -> int | None:
    statement = _insert(session)(_MESSAGES).values(row)
    if row.get("dedupe_key") is not None:
        statement = statement.on_conflict_do_nothing(index_elements=["dedupe_key"])
    message_id: int | None = session.scalar(statement.returning(_MESSAGES.c.id))
    return message_id


def may_write_to(member: Member, template: str) -> bool:
    """Does the member get this message: not erased, with an email, and subscribed unless
    the message is transactional?"""
    if member.erased_at is not None or member.customer_id is None or not member.email:
        return False
    return TEMPLATES[template][1] or member.email_unsubscribed_at is None


def queue(
    session: Session,
    member: Member,
    template: str,
    data: dict,
    *,
    dedupe_key: str | None = None,
    at: datetime | None = None,
) -> int | None:
    """Queue a message to the member, in the caller's transaction: its id, or None (the
    channel is off, the member gets no mail, or `dedupe_key` was queued already). No SQL when
    the channel is off."""
    assert template in TEMPLATES, template
    if not enabled() or not may_write_to(member, template):
        return None
    at = at or utcnow()
    row = _row(template, data, at, member_id=member.id, to_address=member.email,
               dedupe_key=dedupe_key)  # fmt: skip
    return _write(session, row)


def queue_to(
    session: Session,
    address: str,
    template: str,
    data: dict,
    *,
    secret: str | None = None,
    dedupe_key: str | None = None,
    at: datetime | None = None,
) -> int | None:
    """Queue a message to an address that need not be a member's (a gift card's recipient);
    `secret` (a card's code) is sealed until it is sent, then forgotten."""
    assert template in TEMPLATES, template
    if not enabled():
        return None
    at = at or utcnow()
    sealed = None
    if secret is not None:
        sealed = Sealer(current_app.config["SECRET_KEYS"], EMAIL_SECRET).seal(secret)
    row = _row(template, data, at, to_address=address, sealed=sealed, dedupe_key=dedupe_key)
    return _write(session, row)


def queue_selected(session: Session, template: str, query: Select, *, at: datetime) -> int:
    """Set-based `queue`: one message per row of `query` (columns `member_id`, `data`, a JSON
    object built in SQL, and `dedupe_key`), in one INSERT ... SELECT. Members erased, without
    an email, or unsubscribed (non-transactional mail) are skipped, and so is a key already
    queued. Returns how many messages were written."""
    assert template in TEMPLATES, template
    if not enabled():
        return 0
    rows = query.subquery("emails")
    transactional = TEMPLATES[template][1]
    conditions = [
        Member.erased_at.is_(None),
        Member.customer_id.is_not(None),
        Member.email.is_not(None),
        rows.c.dedupe_key.is_not(None),
    ]
    if not transactional:
        conditions.append(Member.email_unsubscribed_at.is_(None))
    moment = literal(at, _MESSAGES.c.created_at.type)
    source = (
        select(
            rows.c.member_id,
            Member.email,
            literal(template),
            rows.c.data,
            literal(transactional),
            rows.c.dedupe_key,
            moment,
            literal(0),
            moment,
        )
        .join(Member, Member.id == rows.c.member_id)
        .where(*conditions)
    )
    columns = ["member_id", "to_address", "template", "data", "transactional", "dedupe_key",
               "created_at", "attempts", "next_attempt_at"]  # fmt: skip
    statement = (
        _insert(session)(_MESSAGES)
        .from_select(columns, source)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(_MESSAGES.c.id)
    )
    return len(list(session.scalars(statement)))


# --- unsubscribing ----------------------------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    # Newest secret last signs; every one of SECRET_KEYS opens (rotation keeps old links).
    return URLSafeSerializer(current_app.config["SECRET_KEYS"], salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(member_id: int) -> str:
    return str(_serializer().dumps({"m": member_id}))


def member_of_token(session: Session, token: str) -> Member | None:
    """The member a link names (None: forged, or the member is erased)."""
    try:
        payload = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("m"), int):
        return None
    member = session.get(Member, payload["m"])
    if member is None or member.erased_at is not None:
        return None
    return member


def unsubscribe_url(member_id: int) -> str:
    base = current_app.config["LOYALTY_PUBLIC_URL"]
    return f"{base}/email/unsubscribe/{unsubscribe_token(member_id)}"


def unsubscribe(session: Session, member: Member, now: datetime | None = None) -> bool:
    """Stop the member's non-transactional mail (what is queued is not sent either). True
    when this changed something; a second time is a no-op."""
    changed = session.execute(
        update(Member)
        .where(Member.id == member.id, Member.email_unsubscribed_at.is_(None))
        .values(email_unsubscribed_at=now or utcnow()),
        execution_options={"synchronize_session": False},
    )
    session.refresh(member, ["email_unsubscribed_at"])
    return rowcount(changed) == 1


# --- rendering --------------------------------------------------------------------------------

_TEMPLATE_DIR = Path(__file__).parent / "templates" / "email"
_ENV = Environment(
    loader=FileSystemLoader(_TEMPLATE_DIR),
    autoescape=select_autoescape(["html"], default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["number"] = lambda value: f"{value:,}" if isinstance(value, int) else value


def _money(minor: int, currency: str) -> str:
    exponent = currency_exponent(currency)
    return f"{minor / 10**exponent:,.{exponent}f} {currency}"


_ENV.filters["money"] = _money


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(template: str, data: dict, *, secret: str | None = None,
           unsubscribe: str | None = None) -> Rendered:  # fmt: skip
    """A message's subject, text and HTML from its template, with the program's name."""
    context = {
        "program": current_app.config["EMAIL_PROGRAM_NAME"],
        "data": data,
        "secret": secret,
        "unsubscribe_url": unsubscribe,
    }
    subject = _ENV.from_string(TEMPLATES[template][0]).render(context)
    return Rendered(
        " ".join(subject.split()),
        _ENV.get_template(f"{template}.txt").render(context),
        _ENV.get_template(f"{template}.html").render(context),
    )


def mime_message(
    rendered: Rendered, to: str, sender: str, message_key: str, unsubscribe: str | None
) -> MimeMessage:
    """The MIME message: text with an HTML alternative; non-transactional mail carries the
    RFC 8058 one-click unsubscribe headers."""
    message = MimeMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=message_key, domain=domain)
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
