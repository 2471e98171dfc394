"""A console form that moves points or creates something is applied once, however often it
is sent (a double click, a resent POST): it carries a key made when the form was shown, and
the first request with that key records it — in the same transaction as its change, in the
API's idempotency table, for the signed-in admin. A later request with the key is told where
the first one went instead of applying again."""

import secrets

from flask import g
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from wtforms import HiddenField

from loyalty import idempotency
from loyalty.idempotency import IdempotencyRecord, open_body, seal_body

PREFIX = "console:"


def new_key() -> str:
    return secrets.token_urlsafe(18)


class OnceField(HiddenField):
    """The form's submission key (a new one each time the form is shown)."""

    def process(self, formdata, data=None, extra_filters=None):
        super().process(formdata, data, extra_filters)
        if not self.data:
            self.data = new_key()


def _principal() -> str:
    return g.audit_actor


def already_done(session: Session, key: str) -> str | None:
    """Where the first request with this key went (its redirect), or None if there was none."""
    if not key:
        return None
    record = idempotency.find(session, _principal(), PREFIX + key)
    return None if record is None else open_body(record.body)


def claim(session: Session, key: str, location: str, fingerprint: str) -> bool:
    """Record the key for this change (redirecting to `location`); False if another request
    holds it already (then change nothing)."""
    if not key:
        return True
    record = IdempotencyRecord(
        principal=_principal(),
        key=PREFIX + key,
        request_hash=fingerprint,
        status_code=303,
        content_type="text/plain",
        body=seal_body(location),
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        return False
    return True
