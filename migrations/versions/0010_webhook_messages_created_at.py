"""Index webhook messages by creation time, for the purge-webhooks job

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_webhook_messages_created_at", "webhook_messages", ["created_at"], unique=False
    )


def downgrade():
    op.drop_index("ix_webhook_messages_created_at", table_name="webhook_messages")
