"""What every platform's inbound webhooks share: the signature check, exact money, the record
of each delivery, and the hand-over to the same order-event and enrolment services the API uses.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.models import ConnectorDelivery
from loyalty.errors import Unauthorized, ValidationFailed
from loyalty.extensions import Blueprint
from loyalty.hooks import Hooks
from loyalty.orders import service as orders
from loyalty.orders.schemas import EventSchema

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
    with more decimals than the currency has, or not a number at all, is refused."""
    if amount is None or amount == "":
        return 0
    if isinstance(amount, float):  # JSON numbers reach us as floats: go through their text
        amount = repr(amount)
    try:
        value = Decimal(str(amount))
    except InvalidOperation as exc:
        raise ValidationFailed(errors={field: [f"Not a decimal amount: {amount!r}."]}) from exc
    scaled = value.scaleb(EXPONENTS.get(currency.upper(), 2))
    if not value.is_finite() or scaled != scaled.to_integral_value():
        raise ValidationFailed(errors={field: [f"Not an amount in {currency}: {amount!r}."]})
    return int(scaled)


@dataclass(frozen=True)
class Outcome:
    status: str  # applied | skipped | refused
    reason: str | None = None
    event_id: str | None = None
    answer: str | None = None  # the order event's stored answer (JSON text), when one ran


def seen(session: Session, platform: str, delivery_id: str) -> ConnectorDelivery | None:
    return session.scalar(
        select(ConnectorDelivery).where(
            ConnectorDelivery.platform == platform, ConnectorDelivery.delivery_id == delivery_id
        )
    )


def record(session: Session, platform: str, delivery_id: str, topic: str, outcome: Outcome):
    """Note the delivery in the request's transaction; a concurrent copy of it is harmless
    (its effects were idempotent too), so a lost race on the unique key is ignored."""
    try:
        with session.begin_nested():
            session.add(
                ConnectorDelivery(
                    platform=platform, delivery_id=delivery_id[:255], topic=topic[:64],
                    status=outcome.status, reason=(outcome.reason or None) and outcome.reason[:500],
                    event_id=outcome.event_id,
                )
            )  # fmt: skip
    except IntegrityError:
        pass


_EVENTS = EventSchema()


def apply_event(session: Session, hooks: Hooks, event: dict) -> Outcome:
    """Run an order event (our own format, as built by a platform's mapping) through the same
    validation and service as `POST /v1/events`: same rules, same idempotency by event id."""
    try:
        data = _EVENTS.load(event)
    except ValidationError as exc:
        raise ValidationFailed(errors=exc.messages) from exc
    answer = orders.answer_event(session, hooks, data, orders.body_hash(event))
    return Outcome("applied", event_id=data["id"], answer=answer)
