"""Rate-limit counters in the database, for every limit; the gift card lookup tables go

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Without Redis, limits that must hold across processes (the gift card code allowance and
lockouts) count one row per hit in `rate_limit_entries`. The failed-lookup rows and locks it
replaces only counted for 15 minutes: they are dropped, not moved.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rate_limit_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit_entries")),
    )
    op.create_index(
        "ix_rate_limit_entries_key_expires_at", "rate_limit_entries", ["key", "expires_at"]
    )
    op.drop_index(
        "ix_gift_card_lookup_failures_client_at", table_name="gift_card_lookup_failures"
    )
    op.drop_table("gift_card_lookup_failures")
    op.drop_table("gift_card_lookup_locks")


def downgrade():
    op.create_table(
        "gift_card_lookup_locks",
        sa.Column("client", sa.String(length=128), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client", name=op.f("pk_gift_card_lookup_locks")),
    )
    op.create_table(
        "gift_card_lookup_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client", sa.String(length=128), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_card_lookup_failures")),
    )
    op.create_index(
        "ix_gift_card_lookup_failures_client_at",
        "gift_card_lookup_failures",
        ["client", "failed_at"],
    )
    op.drop_index("ix_rate_limit_entries_key_expires_at", table_name="rate_limit_entries")
    op.drop_table("rate_limit_entries")
