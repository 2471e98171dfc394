"""Lifecycle messages: the email outbox, members' unsubscribe, gift cards' low balance mark

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "email_messages",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=True),
        sa.Column("template", sa.String(length=32), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("sealed", sa.String(length=500), nullable=True),
        sa.Column("transactional", sa.Boolean(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gave_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_email_messages_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_email_messages_dedupe_key")),
    )
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_email_messages_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("sent_at IS NULL AND gave_up_at IS NULL"),
            sqlite_where=sa.text("sent_at IS NULL AND gave_up_at IS NULL"),
        )
        batch_op.create_index(
            batch_op.f("ix_email_messages_member_id"), ["member_id"], unique=False
        )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_unsubscribed_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("gift_cards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("low_balance_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("gift_cards", schema=None) as batch_op:
        batch_op.drop_column("low_balance_at")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("email_unsubscribed_at")
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_messages_member_id"))
        batch_op.drop_index("ix_email_messages_due")
    op.drop_table("email_messages")
