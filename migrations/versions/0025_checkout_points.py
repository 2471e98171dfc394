"""Points at checkout: the program's `checkout_points` settings

- `program.checkout_points_enabled` (false), `checkout_value_per_point` (minor units per point,
  a decimal with up to 4 places; 1), `checkout_min_points` (100), `checkout_points_step` (100),
  `checkout_max_share_of_cart` (percent, 50), `checkout_code_valid_hours` (24).

Checkout discounts are reward codes without a catalog reward (`reward_id` is already
nullable), told apart by their `source_type` ("checkout"): no other schema change.

On SQLite the new CHECK constraints mean rebuilding `program` (batch mode copies it), which
drops its config triggers (0014): they are created again.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

CHECKS = {
    "checkout_value_per_point_positive": "checkout_value_per_point > 0",
    "checkout_min_points_positive": "checkout_min_points > 0",
    "checkout_points_step_positive": "checkout_points_step > 0",
    "checkout_max_share_of_cart": "checkout_max_share_of_cart BETWEEN 1 AND 100",
    "checkout_code_valid_hours_positive": "checkout_code_valid_hours > 0",
}


def upgrade():
    with op.batch_alter_table("program") as batch:
        batch.add_column(
            sa.Column(
                "checkout_points_enabled", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
        batch.add_column(
            sa.Column(
                "checkout_value_per_point",
                sa.Numeric(precision=12, scale=4),
                server_default="1",
                nullable=False,
            )
        )
        batch.add_column(
            sa.Column("checkout_min_points", sa.Integer(), server_default="100", nullable=False)
        )
        batch.add_column(
            sa.Column("checkout_points_step", sa.Integer(), server_default="100", nullable=False)
        )
        batch.add_column(
            sa.Column(
                "checkout_max_share_of_cart", sa.Integer(), server_default="50", nullable=False
            )
        )
        batch.add_column(
            sa.Column(
                "checkout_code_valid_hours", sa.Integer(), server_default="24", nullable=False
            )
        )
        for name, condition in CHECKS.items():
            batch.create_check_constraint(op.f(f"ck_program_{name}"), condition)
    _restore_sqlite_triggers()


def downgrade():
    with op.batch_alter_table("program") as batch:
        for name in CHECKS:
            batch.drop_constraint(op.f(f"ck_program_{name}"), type_="check")
        for column in (
            "checkout_code_valid_hours",
            "checkout_max_share_of_cart",
            "checkout_points_step",
            "checkout_min_points",
            "checkout_value_per_point",
            "checkout_points_enabled",
        ):
            batch.drop_column(column)
    _restore_sqlite_triggers()


def _restore_sqlite_triggers():
    """The program's config triggers of 0014, lost when SQLite copies the table."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for what in ("insert", "update", "delete"):
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS config_changed_program_{what} AFTER {what.upper()} "
            "ON program BEGIN UPDATE config_version SET version = random() WHERE id = 1; END"
        )
