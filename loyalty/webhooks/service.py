"""The outbox and the endpoints that read it.

`emit` writes one message and a delivery per endpoint subscribed to its type, in the caller's
transaction. Which endpoints subscribe to what is read through the per-worker cache
(`loyalty.cache`, name "webhook_endpoints"), so an event nobody subscribes to costs no SQL at
all: the order hot path pays nothing until a merchant adds an endpoint. Creating, disabling,
enabling or deleting an endpoint is in force in every worker as soon as its request has
answered.

An endpoint's signing secret is shown once, when it is made (at creation or rotation). A
rotation keeps the replaced secret signing beside the new one for an overlap (24 h by
default; Standard Webhooks puts several signatures in `webhook-signature`), so a receiver
can deploy the new secret without rejecting a delivery; an overlap of 0 drops it at once.
"""

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnExpressionArgument,
    Interval,
    Row,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from loyalty import cache
from loyalty.audit import record_change
from loyalty.dates import iso  # times in payloads, as `webhooks.iso`
from loyalty.errors import Conflict, NotFound
from loyalty.paging import Page, page_by_id
from loyalty.sealing import WEBHOOK_SECRET, Sealer
from loyalty.types import utcnow
from loyalty.webhooks.models import (  # noqa: F401 - EVENT_TYPES, delivery_status re-exported
    EVENT_TYPES,
    TEST_EVENT,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    delivery_status,
    endpoint_status,
)
from loyalty.webhooks.schemas import EndpointSchema

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 24
CACHE = "webhook_endpoints"

cache.watch(WebhookEndpoint, CACHE)

_MESSAGES, _DELIVERIES = WebhookMessage.__table__, WebhookDelivery.__table__


# --- who listens ------------------------------------------------------------------------------


def _load_subscriptions(session: Session) -> dict[str, tuple[int, ...]]:
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events)
        .where(WebhookEndpoint.deleted_at.is_(None), WebhookEndpoint.disabled_at.is_(None))
        .order_by(WebhookEndpoint.id)
    )
    by_type: dict[str, list[int]] = {}
    for endpoint_id, events in rows:
        for event_type in events:
            by_type.setdefault(event_type, []).append(endpoint_id)
    return {event_type: tuple(ids) for event_type, ids in by_type.items()}


def subscribed(session: Session, event_type: str) -> tuple[int, ...]:
    """Ids of the live, enabled endpoints subscribed to `event_type` (cached: usually no
    SQL)."""
    return cache.cached(session, CACHE, "all", lambda: _load_subscriptions(session)).get(
        event_type, ()
    )


# --- writing the outbox -----------------------------------------------------------------------


def _add_deliveries(
    session: Session, message_ids: list[int], endpoint_ids: tuple[int, ...], due_at: datetime
) -> None:
    session.execute(
        insert(_DELIVERIES),
        [
            {"message_id": m, "endpoint_id": e, "attempts": 0, "next_attempt_at": due_at}
            for m in message_ids
            for e in endpoint_ids
        ],
    )


def emit(
    session: Session, event_type: str, data: dict, *, at: datetime | None = None
) -> int | None:
    """Report an event: a message and its deliveries, in the caller's transaction. No SQL
    when no endpoint subscribes to `event_type`. Returns the message id (None: nobody)."""
    message_ids = emit_many(session, event_type, [data], at=at)
    return message_ids[0] if message_ids else None


def emit_many(
    session: Session, event_type: str, items: list[dict], *, at: datetime | None = None
) -> list[int]:
    """`emit` for many events of one type: two statements whatever their number."""
    assert event_type in EVENT_TYPES, event_type
    endpoint_ids = subscribed(session, event_type)
    if not endpoint_ids or not items:
        return []
    at = at or utcnow()
    rows = [{"type": event_type, "data": data, "created_at": at} for data in items]
    message_ids = list(
        session.scalars(
            insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True), rows
        )
    )
    _add_deliveries(session, message_ids, endpoint_ids, at)
    return message_ids


def emit_selected(session: Session, event_type: str, query: Select, *, at: datetime) -> int:
    """Set-based `emit`: one message per row of `rows` (columns `data`, a JSON object built in
    SQL, and `dedupe_key`), in one INSERT ... SELECT; a row whose key was already sent is
    skipped. Returns how many messages were written."""
    assert event_type in EVENT_TYPES, event_type
    endpoint_ids = subscribed(session, event_type)
    if not endpoint_ids:
        return 0
    rows = query.subquery("events")
    created_at = literal(at, _MESSAGES.c.created_at.type)
    source = select(rows.c.data, rows.c.dedupe_key, literal(event_type), created_at).where(
        rows.c.dedupe_key.is_not(None)  # a WHERE also keeps SQLite's parser unambiguous
    )
    postgresql = session.get_bind().dialect.name == "postgresql"
    insert_ = postgresql_insert if postgresql else sqlite_insert
    statement = (
        insert_(_MESSAGES)
        .from_select(["data", "dedupe_key", "type", "created_at"], source)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(_MESSAGES.c.id)
    )
    message_ids = list(session.scalars(statement))
    if message_ids:
        _add_deliveries(session, message_ids, endpoint_ids, at)
    return len(message_ids)


# --- building event data in SQL (for `emit_selected`) ------------------------------------------


def json_object(dialect: str, **fields: ColumnExpressionArgument[Any]) -> ColumnElement[Any]:
    """A JSON object built by the database from column expressions."""
    build = func.jsonb_build_object if dialect == "postgresql" else func.json_object
    args = [part for name, value in fields.items() for part in (literal(name), value)]
    return build(*args)


def iso_sql(
    dialect: str, moment: ColumnElement[datetime], plus_days: int = 0
) -> ColumnElement[str]:
    """A UTC timestamp column as ISO 8601 text with its offset (seconds), `plus_days` later."""
    if dialect == "postgresql":
        shifted = moment + literal(timedelta(days=plus_days), Interval())
        return func.to_char(func.timezone("UTC", shifted), 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')
    return func.strftime("%Y-%m-%dT%H:%M:%S+00:00", moment, f"+{plus_days} days")


def epoch_sql(dialect: str, moment: ColumnElement[datetime]) -> ColumnElement[str]:
    """A timestamp column as whole Unix seconds, as text (for dedupe keys)."""
    if dialect == "postgresql":
        return cast(cast(func.extract("epoch", moment), BigInteger), String)
    return func.strftime("%s", moment)


# --- endpoints (admin) ------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class NewEndpoint:
    """An endpoint with the signing secret just made for it, in clear (created or rotated;
    `CreatedEndpointSchema`)."""

    id: int
    url: str
    events: list[str]
    created_at: datetime
    secret: str
    disabled_at: datetime | None = None
    previous_secret_expires_at: datetime | None = None

    @classmethod
    def of(cls, endpoint: WebhookEndpoint, secret: str) -> "NewEndpoint":
        return cls(
            endpoint.id,
            endpoint.url,
            endpoint.events,
            endpoint.created_at,
            secret,
            endpoint.disabled_at,
            endpoint.previous_secret_expires_at,
        )


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.deleted_at.is_(None))
            .order_by(WebhookEndpoint.id)
        )
    )


def create_endpoint(
    session: Session, url: str, events: list[str], secret_keys: list[str]
) -> tuple[WebhookEndpoint, NewEndpoint]:
    """A new endpoint, and what its creation answers: with its signing secret, which is
    stored sealed under `secret_keys` and never shown again."""
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=url,
        events=sorted(set(events)),
        secret=Sealer(secret_keys, WEBHOOK_SECRET).seal(secret),
        created_at=utcnow(),
    )
    session.add(endpoint)
    session.flush()
    _audit(session, "webhook_endpoint.create", endpoint.id, None, _snapshot(endpoint))
    return endpoint, NewEndpoint.of(endpoint, secret)


def get_endpoint(session: Session, endpoint_id: int, *, lock: bool = False) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=lock)
    if endpoint is None or endpoint.deleted_at is not None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


def rotate_secret(
    session: Session,
    endpoint_id: int,
    secret_keys: list[str],
    now: datetime,
    overlap: timedelta,
) -> tuple[WebhookEndpoint, NewEndpoint]:
    """Give the endpoint a new signing secret, returned in clear this once. The secret it
    replaces signs beside it until `now + overlap` (not at all when `overlap` is zero); one
    replaced earlier and still signing stops now: at most two secrets sign at a time."""
    endpoint = get_endpoint(session, endpoint_id, lock=True)
    before = _snapshot(endpoint)
    secret = new_secret()
    if overlap > timedelta(0):
        endpoint.previous_secret = endpoint.secret  # sealed as it is
        endpoint.previous_secret_expires_at = now + overlap
    else:
        endpoint.previous_secret = endpoint.previous_secret_expires_at = None
    endpoint.secret = Sealer(secret_keys, WEBHOOK_SECRET).seal(secret)
    session.flush()
    after = {**_snapshot(endpoint), "secret_rotated_at": iso(now)}
    _audit(session, "webhook_endpoint.rotate_secret", endpoint.id, before, after)
    return endpoint, NewEndpoint.of(endpoint, secret)


def disable_endpoint(session: Session, endpoint_id: int, now: datetime) -> WebhookEndpoint:
    """Send it nothing until it is enabled again: no delivery is queued for it, and those
    queued already wait (their attempts untouched). Disabling a disabled endpoint changes
    nothing."""
    endpoint = get_endpoint(session, endpoint_id, lock=True)
    if endpoint.disabled_at is None:
        before = _snapshot(endpoint)
        endpoint.disabled_at = now
        session.flush()
        _audit(session, "webhook_endpoint.disable", endpoint.id, before, _snapshot(endpoint))
    return endpoint


def enable_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """Send to it again: events from now on, and the deliveries that waited while it was
    disabled (when they are due). Enabling an enabled endpoint changes nothing."""
    endpoint = get_endpoint(session, endpoint_id, lock=True)
    if endpoint.disabled_at is not None:
        before = _snapshot(endpoint)
        endpoint.disabled_at = None
        session.flush()
        _audit(session, "webhook_endpoint.enable", endpoint.id, before, _snapshot(endpoint))
    return endpoint


def delete_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """Nothing more is sent to it: its undelivered messages are dropped, not given up."""
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.deleted_at = utcnow()
    session.flush()
    session.execute(
        sql_delete(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.gave_up_at.is_(None),
        ),
        execution_options={"synchronize_session": False},
    )
    _audit(session, "webhook_endpoint.delete", endpoint.id, _snapshot(endpoint), None)
    return endpoint


@dataclass(frozen=True)
class TestEvent:
    """A test message queued for one endpoint (`TestEventSchema`)."""

    message_id: int
    delivery_id: int
    endpoint_id: int
    type: str
    created_at: datetime


def send_test_event(session: Session, endpoint_id: int, actor: str | None = None) -> TestEvent:
    """Queue a `webhook.test` message to this endpoint only, signed and delivered like any
    other (the `deliver-webhooks` job sends it), so a merchant can check their receiver."""
    endpoint = get_endpoint(session, endpoint_id)
    now = utcnow()
    data = {
        "endpoint_id": endpoint.id,
        "message": "A test event: your endpoint receives and verifies our webhooks.",
        "sent_at": iso(now),
    }
    message_id = session.scalar(
        insert(_MESSAGES)
        .values(type=TEST_EVENT, data=data, created_at=now)
        .returning(_MESSAGES.c.id)
    )
    assert message_id is not None
    delivery_id = session.scalar(
        insert(_DELIVERIES)
        .values(message_id=message_id, endpoint_id=endpoint.id, attempts=0, next_attempt_at=now)
        .returning(_DELIVERIES.c.id)
    )
    assert delivery_id is not None
    record_change(
        session, "webhook_endpoint.test", "webhook_endpoint", endpoint.id, None,
        {"message_id": message_id}, actor=actor,
    )  # fmt: skip
    return TestEvent(message_id, delivery_id, endpoint.id, TEST_EVENT, now)


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    """The endpoint as the audit log keeps it: as the API shows it (never its secret)."""
    shown: dict = EndpointSchema().dump(endpoint)
    return shown


def _audit(
    session: Session, action: str, endpoint_id: int, before: dict | None, after: dict | None
) -> None:
    record_change(session, action, "webhook_endpoint", endpoint_id, before, after)


_STATUS_CONDITIONS = {
    "pending": (WebhookDelivery.delivered_at.is_(None), WebhookDelivery.gave_up_at.is_(None)),
    "delivered": (WebhookDelivery.delivered_at.is_not(None),),
    "failed": (WebhookDelivery.gave_up_at.is_not(None),),
}


def list_deliveries(
    session: Session,
    endpoint_id: int,
    limit: int,
    cursor: str | None,
    status: str | None = None,
) -> Page:
    """A page of an endpoint's deliveries, newest first (only those in `status`, if given:
    pending, delivered or failed): rows of (`WebhookDelivery`, `WebhookMessage`), deleted
    endpoints' too."""
    if session.get(WebhookEndpoint, endpoint_id) is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    query = (
        select(WebhookDelivery, WebhookMessage)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
    )
    if status is not None:
        query = query.where(*_STATUS_CONDITIONS[status])
    return page_by_id(
        session, query, WebhookDelivery.id, limit, cursor, row_id=lambda row: row[0].id
    )


DeliveryRow = Row[WebhookDelivery, WebhookMessage]


def _delivery_row(session: Session, delivery_id: int) -> DeliveryRow:
    row = session.execute(
        select(WebhookDelivery, WebhookMessage)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookDelivery.id == delivery_id)
    ).first()
    if row is None:
        raise NotFound(f"No webhook delivery {delivery_id}.")
    return row


def retry_delivery(session: Session, delivery_id: int, now: datetime) -> DeliveryRow:
    """Send a failed (given up) delivery again: it is due at `now`, and the next
    `deliver-webhooks` run makes one more attempt, under the same `webhook-id` (the same
    message). Its attempts so far still count: if this one fails too, it is failed again.
    A delivery already pending again is left as it is; a delivered one, or one to an endpoint
    disabled or deleted, is a 409 conflict. Returns (delivery, message)."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound(f"No webhook delivery {delivery_id}.")
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    assert endpoint is not None  # a foreign key
    status = delivery_status(delivery)
    if status == "delivered":
        raise Conflict("This delivery was delivered: there is nothing to send again.")
    if endpoint.deleted_at is not None:
        raise Conflict("Its endpoint was deleted: nothing is sent to it any more.")
    if endpoint.disabled_at is not None:
        raise Conflict("Its endpoint is disabled: enable the endpoint to send to it again.")
    if status == "failed":
        before = {"status": status, "gave_up_at": iso(delivery.gave_up_at)}
        delivery.gave_up_at = None
        delivery.next_attempt_at = now
        session.flush()
        record_change(
            session,
            "webhook_delivery.retry",
            "webhook_delivery",
            delivery.id,
            before,
            {"status": "pending", "next_attempt_at": iso(now)},
        )
    return _delivery_row(session, delivery_id)


@dataclass(frozen=True)
class Health:
    """An endpoint's deliveries of the messages written since a moment, by status;
    `retrying`: pending ones whose last attempt failed."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    waiting: int = 0


def delivery_health(session: Session, since: datetime) -> dict[int, Health]:
    """Per endpoint id: its deliveries of messages written since `since` (endpoints with none
    are left out)."""
    delivered = WebhookDelivery.delivered_at.is_not(None)
    failed = WebhookDelivery.gave_up_at.is_not(None)
    pending = and_(~delivered, ~failed)
    tried = WebhookDelivery.attempts > 0

    def count(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    rows = session.execute(
        select(
            WebhookDelivery.endpoint_id,
            count(delivered),
            count(and_(pending, tried)),
            count(failed),
            count(and_(pending, ~tried)),
        )
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookMessage.created_at >= since)
        .group_by(WebhookDelivery.endpoint_id)
    )
    return {row[0]: Health(*row[1:]) for row in rows}
