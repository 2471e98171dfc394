"""Connector deliveries found by the order event they were about

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        op.f("ix_connector_deliveries_event_id"), "connector_deliveries", ["event_id"]
    )


def downgrade():
    op.drop_index(op.f("ix_connector_deliveries_event_id"), table_name="connector_deliveries")
