"""Prepaid gift cards, holds and Stripe purchases (issue 6)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Reserved in the linear history so the domains can land in any order; the domain's change
fills it in.
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
