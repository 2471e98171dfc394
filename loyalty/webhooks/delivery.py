"""The `deliver-webhooks` job: send due deliveries, signed per Standard Webhooks.

Each round claims a bounded batch in a short transaction — on PostgreSQL with `FOR UPDATE
SKIP LOCKED`, so workers on several machines take different rows — and moves the claimed rows'
`next_attempt_at` to the end of a lease, so nobody else takes them while this worker sends
(outside any transaction: no lock is held during HTTP). The results are written in a second
short transaction. A worker that dies mid-batch leaves its rows to be sent again when the lease
ends: delivery is at least once, and receivers dedupe on `webhook-id`.

A 2xx answer delivers; anything else (an error status, a redirect, a timeout, a refused
connection) is retried after `WEBHOOK_RETRY_SECONDS × 2^(attempts − 1)`, at most
`WEBHOOK_RETRY_MAX_SECONDS`, until `WEBHOOK_MAX_ATTEMPTS` attempts have failed: the delivery
is then given up (`gave_up_at`), visible in the endpoint's deliveries.

Deliveries to a disabled endpoint are not claimed: they wait until it is enabled. For a
while after a secret rotation (`previous_secret_expires_at`) each delivery carries two
signatures, the new secret's first.

With WEBHOOK_ALLOW_PRIVATE off, each connection resolves its host, checks every address and
connects only to a checked one (`loyalty.webhooks.targets`): an internal address is refused
before any packet goes to it, and recorded with one text whatever the address.
"""

import base64
import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, exists, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from loyalty import outbox
from loyalty.extensions import rowcount
from loyalty.sealing import WEBHOOK_SECRET, Sealer, Unsealable
from loyalty.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from loyalty.webhooks.service import SECRET_PREFIX, iso
from loyalty.webhooks.targets import ADDRESS_REFUSED, RefusedAddress, connect_checked

USER_AGENT = "loyalty-webhooks/1"


def message_id(message_pk: int) -> str:
    return f"msg_{message_pk}"


def body_of(message_type: str, created_at: datetime, data: dict) -> bytes:
    payload = {"type": message_type, "timestamp": iso(created_at), "data": data}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` + base64(HMAC-SHA256(base64decode(secret without "whsec_"), "id.timestamp.body"))."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer like any other non-2xx: the attempt failed


class _Checked:
    """An HTTP(S) connection that opens its socket with `targets.connect_checked`
    (WEBHOOK_ALLOW_PRIVATE off): resolved and checked before connecting, pinned to a checked
    address. http.client opens every connection's socket through `_create_connection`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = connect_checked


class _CheckedHTTP(_Checked, http.client.HTTPConnection):
    pass


class _CheckedHTTPS(_Checked, http.client.HTTPSConnection):
    pass


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_CheckedHTTP, req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_CheckedHTTPS, req, context=self._context)


_OPENER = urllib.request.build_opener(_NoRedirects, _CheckedHTTPHandler, _CheckedHTTPSHandler)
_OPEN_TO_PRIVATE = urllib.request.build_opener(_NoRedirects)


@dataclass
class Outcome:
    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(
    url: str, headers: dict, body: bytes, timeout: float, allow_private: bool = False
) -> Outcome:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only, checked at creation
    opener = _OPEN_TO_PRIVATE if allow_private else _OPENER
    try:
        with opener.open(request, timeout=timeout) as response:
            return Outcome(response.status, None)
    except urllib.error.HTTPError as exc:
        return Outcome(exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, RefusedAddress):
            return Outcome(None, ADDRESS_REFUSED)  # one text, whichever address and rule
        return Outcome(None, f"{type(exc).__name__}: {reason}"[:500])


@dataclass(frozen=True)
class Settings:
    batch: int
    timeout: float
    max_attempts: int
    retry_seconds: float
    retry_max_seconds: float
    allow_private: bool = False
    # SECRET_KEYS: the endpoints' signing secrets are stored sealed under them.
    secret_keys: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config) -> "Settings":
        return cls(
            config["WEBHOOK_BATCH_SIZE"],
            config["WEBHOOK_TIMEOUT_SECONDS"],
            config["WEBHOOK_MAX_ATTEMPTS"],
            config["WEBHOOK_RETRY_SECONDS"],
            config["WEBHOOK_RETRY_MAX_SECONDS"],
            config["WEBHOOK_ALLOW_PRIVATE"],
            tuple(config["SECRET_KEYS"]),
        )

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(
            seconds=min(self.retry_seconds * 2 ** (attempts - 1), self.retry_max_seconds)
        )

    @property
    def lease(self) -> timedelta:
        # Long enough to send a whole batch, each request timing out.
        return timedelta(seconds=self.batch * self.timeout + 60)


def _claim(session: Session, now: datetime, settings: Settings) -> Sequence[Row]:
    """Take up to a batch of due deliveries for this worker (committed by the caller)."""
    due = (
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.gave_up_at.is_(None),
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.deleted_at.is_(None),
            WebhookEndpoint.disabled_at.is_(None),  # they wait until it is enabled
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(settings.batch)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )
    claimed = outbox.claim(
        session, WebhookDelivery, due, now=now, lease=settings.lease, last_attempt_at=now
    )
    if not claimed:
        return []
    return session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.attempts,
            WebhookMessage.id.label("message_pk"),
            WebhookMessage.type,
            WebhookMessage.data,
            WebhookMessage.created_at,
            WebhookEndpoint.url,
            WebhookEndpoint.secret,
            WebhookEndpoint.previous_secret,
            WebhookEndpoint.previous_secret_expires_at,
        )
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id.in_(claimed))
        .order_by(WebhookDelivery.id)
    ).all()


def _signing_secrets(row, now: datetime) -> list[str]:
    """The sealed secrets that sign this delivery: the endpoint's, and the one a rotation
    replaced while its overlap lasts (at `now`, the job's time)."""
    sealed = [row.secret]
    if row.previous_secret is not None and row.previous_secret_expires_at > now:
        sealed.append(row.previous_secret)
    return sealed


def _send(row, settings: "Settings", now: datetime) -> Outcome:
    msg_id = message_id(row.message_pk)
    body = body_of(row.type, row.created_at, row.data)
    sealer = Sealer(settings.secret_keys, WEBHOOK_SECRET)
    try:
        secrets = [sealer.unseal(sealed) for sealed in _signing_secrets(row, now)]
    except Unsealable:
        # Sealed under a secret since dropped from SECRET_KEYS: retried, in case it returns.
        return Outcome(None, "The signing secret opens with no key of SECRET_KEYS.")
    timestamp = int(time.time())  # the receiver checks it against its own clock
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        # One signature per secret, space-separated: a receiver accepts any it can verify.
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
    }
    return post(row.url, headers, body, settings.timeout, settings.allow_private)


_RECORD = (
    update(WebhookDelivery.__table__)
    .where(WebhookDelivery.__table__.c.id == bindparam("delivery_id"))
    .values(
        last_status=bindparam("status"),
        last_error=bindparam("error"),
        delivered_at=bindparam("delivered"),
        gave_up_at=bindparam("gave_up"),
        next_attempt_at=bindparam("next_at"),
    )
)


def deliver_webhooks(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """Send every delivery due at `now`, `WEBHOOK_BATCH_SIZE` at a time (`batch_size`, the
    members per range of the other jobs, does not apply); returns how many were delivered."""
    settings = Settings.from_config(current_app.config)
    delivered = 0
    while True:
        rows = _claim(session, now, settings)
        session.commit()  # the claim (a lease) is visible to other workers; no lock is kept
        if not rows:
            return delivered
        results = []
        for row in rows:
            outcome = _send(row, settings, now)
            gave_up = not outcome.delivered and row.attempts >= settings.max_attempts
            results.append(
                {
                    "delivery_id": row.id,
                    "status": outcome.status,
                    "error": outcome.error,
                    "delivered": now if outcome.delivered else None,
                    "gave_up": now if gave_up else None,
                    "next_at": now + settings.backoff(row.attempts),
                }
            )
            delivered += outcome.delivered
        session.execute(_RECORD, results)
        session.commit()


def purge_webhooks(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """`purge-webhooks`: forget what is done. Deliveries that were delivered or given up, of
    messages older than `WEBHOOK_RETENTION_DAYS`, then those messages once none of their
    deliveries is left. Never less than `POINTS_EXPIRY_WARNING_DAYS` (or
    `REWARD_CODE_EXPIRY_WARNING_DAYS`) + 1 days: an expiry warning's message is what keeps the
    same warning from going out twice, and it matters until that expiry has passed. Returns
    how many rows were removed."""
    config = current_app.config
    days = max(
        config["WEBHOOK_RETENTION_DAYS"],
        config["POINTS_EXPIRY_WARNING_DAYS"] + 1,
        config["REWARD_CODE_EXPIRY_WARNING_DAYS"] + 1,
    )
    before = now - timedelta(days=days)
    old = select(WebhookMessage.id).where(WebhookMessage.created_at < before)
    done = or_(WebhookDelivery.delivered_at.is_not(None), WebhookDelivery.gave_up_at.is_not(None))
    removed = rowcount(
        session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.message_id.in_(old), done),
            execution_options={"synchronize_session": False},
        )
    )
    left = select(WebhookDelivery.id).where(WebhookDelivery.message_id == WebhookMessage.id)
    removed += rowcount(
        session.execute(
            delete(WebhookMessage).where(WebhookMessage.created_at < before, ~exists(left)),
            execution_options={"synchronize_session": False},
        )
    )
    session.commit()
    return removed
