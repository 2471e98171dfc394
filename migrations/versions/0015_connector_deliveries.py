"""Store connector deliveries: what became of each webhook delivery from Shopify or WooCommerce

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "connector_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("delivery_id", sa.String(length=255), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_deliveries")),
        sa.UniqueConstraint(
            "platform", "delivery_id", name=op.f("uq_connector_deliveries_platform_delivery_id")
        ),
    )
    op.create_index(
        op.f("ix_connector_deliveries_created_at"), "connector_deliveries", ["created_at"]
    )


def downgrade():
    op.drop_index(op.f("ix_connector_deliveries_created_at"), table_name="connector_deliveries")
    op.drop_table("connector_deliveries")
