"""Platform code tasks: reward codes to create or delete as the store's own discount codes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "platform_code_tasks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reward_code_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("platform_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('create', 'delete')", name=op.f("ck_platform_code_tasks_action")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'done', 'failed', 'canceled')",
            name=op.f("ck_platform_code_tasks_status"),
        ),
        sa.ForeignKeyConstraint(
            ["reward_code_id"],
            ["reward_codes.id"],
            name=op.f("fk_platform_code_tasks_reward_code_id_reward_codes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_code_tasks")),
        sa.UniqueConstraint(
            "reward_code_id",
            "platform",
            "action",
            name=op.f("uq_platform_code_tasks_reward_code_id_platform_action"),
        ),
    )
    op.create_index(
        "ix_platform_code_tasks_pending_next_attempt_at",
        "platform_code_tasks",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade():
    op.drop_index(
        "ix_platform_code_tasks_pending_next_attempt_at", table_name="platform_code_tasks"
    )
    op.drop_table("platform_code_tasks")
