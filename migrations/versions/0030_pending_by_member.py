"""Pending ledger entries indexed by member: the maturing job reads only its range's

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06

`mature-points` works through the members in id ranges, and for each range it needs the
pending entries of those members that are due. The pending index was on `matures_at` alone,
so every range read every due entry of the whole ledger (a million on a million members) and
kept its members locked meanwhile; on `(member_id, matures_at)` a range reads its own. The
index stays partial (`state = 'pending'`), so it holds only points not yet matured.
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

_PENDING = sa.text("state = 'pending'")


def upgrade():
    op.create_index(
        "ix_ledger_entries_pending_member_matures_at",
        "ledger_entries",
        ["member_id", "matures_at"],
        postgresql_where=_PENDING,
        sqlite_where=_PENDING,
    )
    op.drop_index("ix_ledger_entries_pending_matures_at", table_name="ledger_entries")


def downgrade():
    op.create_index(
        "ix_ledger_entries_pending_matures_at",
        "ledger_entries",
        ["matures_at"],
        postgresql_where=_PENDING,
        sqlite_where=_PENDING,
    )
    op.drop_index("ix_ledger_entries_pending_member_matures_at", table_name="ledger_entries")
