"""Seal webhook signing secrets and idempotent replies; note each order event's order

Webhook endpoint secrets and stored idempotent replies are sealed (loyalty.sealing) under
SECRET_KEYS: the app's own when run by `flask db upgrade` (its configuration), else read from
the environment as the app reads it. Processed events gain `order_id`, through which erasure
finds a customer's stored answers; answers already stored for members erased before this
revision lose the member's view (and a converted referral's `referrer_id` naming one).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import base64
import json

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, has_app_context

from loyalty.config import secret_keys

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_endpoints = sa.table(
    "webhook_endpoints", sa.column("id", sa.Integer), sa.column("secret", sa.String)
)
_replies = sa.table("idempotency_keys", sa.column("id", sa.BigInteger), sa.column("body", sa.Text))
_events = sa.table(
    "processed_events",
    sa.column("event_id", sa.String),
    sa.column("response", sa.JSON().with_variant(sa.dialects.postgresql.JSONB, "postgresql")),
)
_members = sa.table("members", sa.column("customer_id", sa.String))


def _keys() -> list[str]:
    return current_app.config["SECRET_KEYS"] if has_app_context() else secret_keys()


def _sealer(purpose: str) -> MultiFernet:
    """The sealing of loyalty.sealing as of this revision (HKDF per purpose, Fernet)."""
    info = b"loyalty.sealing.v1:" + purpose.encode()
    return MultiFernet([
        Fernet(base64.urlsafe_b64encode(
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key.encode())
        ))
        for key in reversed(_keys())
    ])  # fmt: skip


def _seal(purpose: str):
    fernet = _sealer(purpose)
    return lambda value: fernet.encrypt(value.encode()).decode("ascii")


def _rewrite(table, key, column, change) -> None:
    """Set `column` to change(value) on every row (in batches, by key)."""
    connection = op.get_bind()
    last = None
    while True:
        query = sa.select(table.c[key], table.c[column]).order_by(table.c[key]).limit(500)
        if last is not None:
            query = query.where(table.c[key] > last)
        rows = connection.execute(query).all()
        if not rows:
            return
        for row_key, value in rows:
            new = change(value)
            if new is None:
                connection.execute(sa.delete(table).where(table.c[key] == row_key))
            elif new != value:
                connection.execute(
                    sa.update(table).where(table.c[key] == row_key).values({column: new})
                )
        last = rows[-1][0]


def _redact_erased_answers() -> None:
    """Answers naming a member no longer enrolled (erased: customer ids change no other way)."""
    connection = op.get_bind()
    enrolled = {cid for (cid,) in connection.execute(
        sa.select(_members.c.customer_id).where(_members.c.customer_id.is_not(None))
    )}  # fmt: skip
    text = sa.cast(_events.c.response, sa.Text)
    naming = sa.or_(text.contains('"member": {'), text.contains('"member":{'),
                    text.contains('"referrer_id"'))  # fmt: skip
    rows = connection.execute(sa.select(_events.c.event_id, _events.c.response).where(naming)).all()
    for event_id, answer in rows:
        answer = json.loads(answer) if isinstance(answer, str) else answer
        changed = False
        member = answer.get("member")
        if isinstance(member, dict) and member.get("id") not in enrolled:
            answer["member"], changed = None, True
        for effect in answer.get("effects") or []:
            referrer = effect.get("referrer_id")
            if effect.get("kind") == "referral" and referrer and referrer not in enrolled:
                effect["referrer_id"], changed = None, True
        if changed:
            connection.execute(
                sa.update(_events).where(_events.c.event_id == event_id).values(response=answer)
            )


def upgrade():
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(64), type_=sa.String(255), existing_nullable=False
        )
    _rewrite(_endpoints, "id", "secret", _seal("webhook-secret"))
    _rewrite(_replies, "id", "body", _seal("idempotent-reply"))
    with op.batch_alter_table("processed_events") as batch:
        batch.add_column(sa.Column("order_id", sa.String(128), nullable=True))
        batch.create_index("ix_processed_events_order_id", ["order_id"], unique=False)
    _redact_erased_answers()


def downgrade():
    secrets, replies = _sealer("webhook-secret"), _sealer("idempotent-reply")

    def open_secret(sealed: str) -> str:
        try:
            return secrets.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken as exc:
            raise RuntimeError(
                "A webhook endpoint's secret opens with no key of SECRET_KEYS: set the keys it "
                "was sealed under before downgrading."
            ) from exc

    def open_reply(sealed: str) -> str | None:
        try:
            return replies.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            return None  # short-lived anyway: a reply no key opens is dropped

    with op.batch_alter_table("processed_events") as batch:
        batch.drop_index("ix_processed_events_order_id")
        batch.drop_column("order_id")
    _rewrite(_replies, "id", "body", open_reply)
    _rewrite(_endpoints, "id", "secret", open_secret)
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(255), type_=sa.String(64), existing_nullable=False
        )
