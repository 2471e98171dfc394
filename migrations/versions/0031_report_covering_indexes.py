"""Reports from indexes: covering and first-order indexes of report_orders, live members.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06

Retention reads one pass over the period's rows of `report_orders`; on PostgreSQL the index
by `occurred_at` now carries every column that pass reads (INCLUDE), so it is an index-only
scan of the period (the table's pages are not read while the visibility map is current:
`loyalty reports-refresh` vacuums the tables after a rebuild). The customers at the start of
a period are counted on partial indexes of first orders: overall (`prev_at IS NULL`, as
before) and on each side (`side_prev_at IS NULL`, with the member id to tell the sides).
The overview's active members (a last paid order in the last 90 days) are a range of
`report_members` by `last_at`. The segments join live members to `report_members` through
a partial index of live members that carries what they read (customer id, enrolment), so the
wide member rows are not read.
"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

RETENTION_COLUMNS = [
    "member_id",
    "value",
    "prev_at",
    "prev2_at",
    "next_at",
    "cum_value",
    "side_prev_at",
    "side_prev2_at",
    "side_next_at",
    "side_cum_value",
]
_SIDE_FIRST = sa.text("side_prev_at IS NULL")
_LIVE = sa.text("erased_at IS NULL AND customer_id IS NOT NULL")


def upgrade():
    op.drop_index("ix_report_orders_occurred_at", table_name="report_orders")
    op.create_index(
        "ix_report_orders_occurred_at",
        "report_orders",
        ["occurred_at"],
        postgresql_include=RETENTION_COLUMNS,
    )
    op.create_index(
        "ix_report_orders_side_first",
        "report_orders",
        ["occurred_at"],
        postgresql_include=["member_id"],
        postgresql_where=_SIDE_FIRST,
        sqlite_where=_SIDE_FIRST,
    )
    op.create_index("ix_report_members_last_at", "report_members", ["last_at"])
    op.create_index(
        "ix_members_live",
        "members",
        ["id"],
        postgresql_include=["customer_id", "enrolled_at"],
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )


def downgrade():
    op.drop_index("ix_members_live", table_name="members")
    op.drop_index("ix_report_members_last_at", table_name="report_members")
    op.drop_index("ix_report_orders_side_first", table_name="report_orders")
    op.drop_index("ix_report_orders_occurred_at", table_name="report_orders")
    op.create_index("ix_report_orders_occurred_at", "report_orders", ["occurred_at"])
