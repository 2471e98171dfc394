"""Reward catalog, redemptions and reward codes (issue 4)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Reserved in the linear history so the domains can land in any order; the domain's change
fills it in.
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
