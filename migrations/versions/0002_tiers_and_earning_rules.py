"""Tiers (qualifying spend, retained status) and earning rules (issue 3)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Reserved in the linear history so the domains can land in any order; the domain's change
fills it in.
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
