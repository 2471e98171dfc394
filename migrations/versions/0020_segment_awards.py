"""Bonus points awarded to an RFM segment

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHERE = sa.text("source_type = 'segment_award'")


def upgrade():
    op.create_table(
        "segment_awards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=32), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("thresholds", JSON, nullable=False),
        sa.Column("member_count", sa.BigInteger(), nullable=False),
        sa.Column("members_done", sa.BigInteger(), nullable=False),
        sa.Column("members_awarded", sa.BigInteger(), nullable=False),
        sa.Column("members_skipped", sa.BigInteger(), nullable=False),
        sa.Column("points_awarded", sa.BigInteger(), nullable=False),
        sa.Column("done_through", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=400), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')",
            name=op.f("ck_segment_awards_status"),
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_segment_awards_points_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_awards")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_segment_awards_idempotency_key")),
    )
    op.create_table(
        "segment_award_members",
        sa.Column("award_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'awarded', 'skipped')",
            name=op.f("ck_segment_award_members_state"),
        ),
        sa.ForeignKeyConstraint(
            ["award_id"],
            ["segment_awards.id"],
            name=op.f("fk_segment_award_members_award_id_segment_awards"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_segment_award_members_member_id_members"),
        ),
        sa.PrimaryKeyConstraint("award_id", "member_id", name=op.f("pk_segment_award_members")),
    )
    op.create_index(
        "uq_ledger_entries_segment_award",
        "ledger_entries",
        ["source_id", "member_id"],
        unique=True,
        postgresql_where=WHERE,
        sqlite_where=WHERE,
    )


def downgrade():
    op.drop_index("uq_ledger_entries_segment_award", table_name="ledger_entries")
    op.drop_table("segment_award_members")
    op.drop_table("segment_awards")
