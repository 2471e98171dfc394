"""Referral program, codes, claims, fraud review (issue 5)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Reserved in the linear history so the domains can land in any order; the domain's change
fills it in.
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
