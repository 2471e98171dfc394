"""Audit log filters: indexes for who, what and which object

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

`GET /v1/audit-log` (and the console's audit page) filter by actor, by action and by target
(object type, and id), newest first: one index each, ending in the id the pages are ordered by.
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_audit_log_actor_id": ["actor", "id"],
    "ix_audit_log_action_id": ["action", "id"],
    "ix_audit_log_object_type_object_id_id": ["object_type", "object_id", "id"],
}


def upgrade():
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
