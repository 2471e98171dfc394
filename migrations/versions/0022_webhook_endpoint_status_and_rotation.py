"""Webhook endpoints can be disabled and their signing secret rotated with an overlap

`disabled_at`: a disabled endpoint is sent nothing (new events are not queued for it, queued
ones wait) until it is enabled again. `previous_secret` (sealed, like `secret`) and
`previous_secret_expires_at`: after a rotation the old secret signs beside the new one until then.

Only columns are added (SQLite: ALTER TABLE, no copy of the table), so the table's
config_version triggers stay.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("previous_secret", sa.String(length=255), nullable=True))
        batch.add_column(
            sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade():
    # Not batch mode: on SQLite a batch copy of the table would drop its triggers.
    for column in ("previous_secret_expires_at", "previous_secret", "disabled_at"):
        op.drop_column("webhook_endpoints", column)
