"""Member referral marks computed from the referrals that wait, not all set

0007 marked every existing member "look for a referral on the next order", so the first order
of each member paid a lookup and an UPDATE clearing the mark. The column is made again,
false for everyone (instant on PostgreSQL), and set only for members a waiting referral
(claimed or in review, no order yet) names by customer id or mailbox. Rows inserted by SQL
without the column (bulk loads, the bench) start false; the app's enrolment sets it true.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE (SQLite >= 3.35 drops a column in place; a batch copy of `members`
    # would trip the foreign keys that point at it).
    op.drop_column("members", "referral_check")
    op.add_column(
        "members",
        sa.Column("referral_check", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(
        """
        UPDATE members SET referral_check = true
        WHERE id IN (
            SELECT members.id FROM members JOIN referrals
              ON referrals.friend_customer_id = members.customer_id
              OR referrals.friend_email = members.email_normalized
            WHERE referrals.status IN ('claimed', 'review') AND referrals.order_id IS NULL
        )
        """
    )


def downgrade():
    op.drop_column("members", "referral_check")
    op.add_column(
        "members",
        sa.Column("referral_check", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
