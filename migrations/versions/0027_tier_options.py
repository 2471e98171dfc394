"""Tier options: the program's tier basis, points and orders per period, entry and birthday rewards

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06

`program.tier_basis` says what tier thresholds count (spend, points earned or paid orders);
`tier_spend` gains the period's `points` and `paid_orders` beside its spend, filled here from the
orders already recorded (each order counts in the period containing it, the period its spend
went to); `tiers` gain `entry_reward_id` and `birthday_points`; `tier_entries` holds each
entry reward given, once per member, tier and period.

Columns are added with ALTER TABLE on both databases (SQLite accepts a column's own CHECK):
rebuilding `program` on SQLite would drop its config triggers (0014), and rebuilding `tiers`
would empty `earning_rule_tiers` through its cascade.
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_COLUMNS = (
    ("program", "tier_basis", "VARCHAR(8) NOT NULL DEFAULT 'spend'",
     "tier_basis", "tier_basis IN ('spend', 'points', 'orders')"),
    ("tier_spend", "points", "BIGINT NOT NULL DEFAULT 0",
     "points_not_negative", "points >= 0"),
    ("tier_spend", "paid_orders", "INTEGER NOT NULL DEFAULT 0",
     "paid_orders_not_negative", "paid_orders >= 0"),
    ("tiers", "entry_reward_id", "INTEGER", None, None),
    ("tiers", "birthday_points", "BIGINT",
     "birthday_points_not_negative", "birthday_points >= 0"),
)  # fmt: skip

_COUNTED = (
    "FROM orders o WHERE o.member_id = tier_spend.member_id AND o.status = 'paid'"
    " AND o.eligible_amount > 0"
    " AND o.occurred_at >= tier_spend.starts_at AND o.occurred_at < tier_spend.ends_at"
)


def upgrade():
    for table, column, definition, check, condition in _COLUMNS:
        constraint = f" CONSTRAINT ck_{table}_{check} CHECK ({condition})" if check else ""
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}{constraint}")
    op.execute(
        "UPDATE tier_spend SET"
        f" points = (SELECT COALESCE(SUM(o.points_awarded - o.points_reversed), 0) {_COUNTED}),"
        f" paid_orders = (SELECT COUNT(*) {_COUNTED} AND o.refunded_amount < o.eligible_amount)"
    )
    op.create_table(
        "tier_entries",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("tier_id", sa.Integer(), nullable=False),
        sa.Column("tier_name", sa.String(length=64), nullable=False),
        sa.Column("period_starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reward_id", sa.Integer(), nullable=False),
        sa.Column("reward_code_id", sa.BigInteger(), nullable=True),
        sa.Column("tier_change_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_tier_entries_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_entries")),
        sa.UniqueConstraint(
            "member_id",
            "tier_id",
            "period_starts_at",
            name=op.f("uq_tier_entries_member_id_tier_id_period_starts_at"),
        ),
    )


def downgrade():
    op.drop_table("tier_entries")
    # SQLite (3.35+) drops a column with its own CHECK, no rebuild.
    for table, column, _definition, _check, _condition in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
