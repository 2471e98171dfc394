"""Gift card purchases keep the bought card's code sealed until the storefront collects it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("gift_card_purchases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_code", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("code_revealed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("gift_card_purchases", schema=None) as batch_op:
        batch_op.drop_column("code_revealed_at")
        batch_op.drop_column("sealed_code")
