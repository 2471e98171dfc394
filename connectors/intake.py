"""What every platform's inbound webhooks share: the signature check, exact money, the record
of each delivery, and the hand-over to the same order-event and enrolment services the API uses.
"""

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from flask import current_app, has_request_context
from marshmallow import ValidationError, fields, missing
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.models import ConnectorDelivery
from loyalty.errors import DomainError, Unauthorized, ValidationFailed
from loyalty.extensions import Blueprint
from loyalty.hooks import Hooks
from loyalty.inputs import check_json_body
from loyalty.orders import service as orders
from loyalty.orders.schemas import EventSchema
from loyalty.schemas import StrictSchema
from loyalty.transaction import keep_if_refused

blp = Blueprint(
    "connectors", __name__, url_prefix="/v1/connectors", description="Store connector webhooks"
)

# Minor units per major unit for ISO 4217 currencies whose exponent is not 2.
EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW"), 0),
    **dict.fromkeys(("PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def verify_signature(secrets: list[str], body: bytes, signature: str | None) -> None:
    """The base64 HMAC-SHA256 of the raw body under any configured secret (several during a
    rotation), compared in constant time; anything else is a 401 and nothing is recorded."""
    if signature and secrets:
        given = signature.strip().encode()
        for secret in secrets:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
            if hmac.compare_digest(base64.b64encode(digest), given):
                return
    raise Unauthorized("Missing or invalid webhook signature.")


def minor_units(amount: str | int | float | None, currency: str, field: str = "amount") -> int:
    """A platform's decimal string ("12.30") as an integer of minor units, exactly: a value
    with more decimals than the currency has, or not a plain decimal at all, is refused.

    Done on the digits, not with `Decimal` arithmetic, which rounds to 28 digits, flushes a
    tiny exponent to zero and raises its own errors for "sNaN" or a huge exponent."""
    if amount is None or amount == "":
        return 0
    if isinstance(amount, float):  # JSON numbers reach us as floats: go through their text
        amount = repr(amount)
    text = str(amount) if isinstance(amount, str | int) and not isinstance(amount, bool) else ""
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise ValidationFailed(errors={field: [f"Not a decimal amount: {str(amount)[:40]!r}."]})
    sign, whole, fraction = match.groups()
    exponent = EXPONENTS.get(currency.upper(), 2)
    fraction = (fraction or "").rstrip("0")
    if len(fraction) > exponent:
        raise ValidationFailed(errors={field: [f"Not an amount in {currency}: {amount!r}."]})
    minor = int(whole + fraction.ljust(exponent, "0"))
    return -minor if sign == "-" else minor


# ASCII digits only (`Decimal` would take "1_000", "١٢" and " 1 "), at most 30 before the point.
_DECIMAL = re.compile(r"([-+]?)([0-9]{1,30})(?:\.([0-9]{1,30}))?", re.ASCII)


@dataclass(frozen=True)
class Outcome:
    status: str  # applied | skipped | refused
    reason: str | None = None
    event_id: str | None = None
    answer: str | None = None  # the order event's stored answer (JSON text), when one ran


class OutcomeSchema(StrictSchema):
    """What a webhook's answer says became of the delivery: an `Outcome`."""

    status = fields.String(metadata={"description": "applied | skipped | refused"})
    reason = fields.String(allow_none=True)
    event_id = fields.String(allow_none=True)
    duplicate = fields.Method(
        "_duplicate",
        metadata={
            "type": "boolean",
            "description": "the order event had been applied (only when one ran)",
        },
    )

    def _duplicate(self, outcome: Outcome):
        return missing if outcome.answer is None else json.loads(outcome.answer)["duplicate"]


def seen(session: Session, platform: str, delivery_id: str) -> ConnectorDelivery | None:
    return session.scalar(
        select(ConnectorDelivery).where(
            ConnectorDelivery.platform == platform, ConnectorDelivery.delivery_id == delivery_id
        )
    )


def record(session: Session, platform: str, delivery_id: str, topic: str, outcome: Outcome):
    """Note the delivery in the request's transaction. A delivery refused before and tried
    again (the platform retries under the same id) gets this attempt's outcome; one applied or
    skipped by a concurrent copy stands (its effects were idempotent too).

    A refused delivery is answered with an error, which rolls the request's transaction back:
    its record is then written again after the rollback, in a transaction of its own, so an
    operator still sees why it was refused."""
    row = {
        "platform": platform, "delivery_id": delivery_id[:255], "topic": topic[:64],
        "status": outcome.status, "reason": (outcome.reason or None) and outcome.reason[:500],
        "event_id": outcome.event_id,
    }  # fmt: skip
    _save(session, row)
    if outcome.status == "refused" and has_request_context():
        keep_if_refused(lambda kept: _save(kept, row), "the record of a refused delivery")


def refuse(session: Session, platform: str, delivery_id: str, topic: str, error: DomainError,
           event_id: str | None = None) -> None:  # fmt: skip
    """Record a delivery refused with `error` (about to be raised), with the error's words."""
    reason = f"{error.type}: {error.detail}"
    if error.errors:
        reason = f"{reason} {json.dumps(error.errors, sort_keys=True, default=str)}"
    record(session, platform, delivery_id, topic, Outcome("refused", reason, event_id))


def _save(session: Session, row: dict) -> None:
    earlier = seen(session, row["platform"], row["delivery_id"])
    if earlier is not None:
        if earlier.status == "refused":
            for key in ("topic", "status", "reason", "event_id"):
                setattr(earlier, key, row[key])
            session.flush()
        return
    try:
        with session.begin_nested():
            session.add(ConnectorDelivery(**row))
    except IntegrityError:
        pass


_EVENTS = EventSchema()


def apply_event(session: Session, hooks: Hooks, event: dict) -> Outcome:
    """Run an order event (our own format, as built by a platform's mapping) through the same
    validation and service as `POST /v1/events`: same rules, same idempotency by event id.
    A platform's signed body skips the request-level input checks (refusing it would refuse
    every retry), so the event built from it gets them here: a NUL or a lone surrogate in a
    field it kept is a 422 on record, not a database error."""
    config = current_app.config
    check_json_body(
        json.dumps(event).encode(), config["MAX_JSON_DEPTH"], config["MAX_JSON_INTEGER_DIGITS"]
    )
    try:
        data = _EVENTS.load(event)
    except ValidationError as exc:
        raise ValidationFailed(errors=exc.normalized_messages()) from exc
    answer = orders.answer_event(session, hooks, data, orders.body_hash(event))
    return Outcome("applied", event_id=data["id"], answer=answer)
