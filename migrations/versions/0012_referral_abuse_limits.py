"""Referral abuse limits: minimum net spend, reward hold, missing-IP policy, IP keys, click dedup

- `referral_settings`: `min_order_amount` (1), `reward_hold_days` (14), `missing_ip` ("review").
- `referrals.ip_key`: what the per-IP cap counts (an IPv4 address or an IPv6 /64); the cap's
  index moves to it. Existing rows get their canonical `ip` and key where the text is an
  address.
- `referral_clicks`: canonical `ip`, `client_key` and `dedup_window`, unique together with the
  member: one click per client and window.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from loyalty.addresses import NotAnAddress, canonical_ip, client_key

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("referral_settings") as batch:
        batch.add_column(
            sa.Column("min_order_amount", sa.BigInteger(), server_default="1", nullable=False)
        )
        batch.add_column(
            sa.Column("reward_hold_days", sa.Integer(), server_default="14", nullable=False)
        )
        batch.add_column(
            sa.Column("missing_ip", sa.String(length=8), server_default="review", nullable=False)
        )
        batch.create_check_constraint(
            op.f("ck_referral_settings_min_order_amount_positive"), "min_order_amount > 0"
        )
        batch.create_check_constraint(
            op.f("ck_referral_settings_reward_hold_days_positive"), "reward_hold_days > 0"
        )
        batch.create_check_constraint(
            op.f("ck_referral_settings_missing_ip"), "missing_ip IN ('refuse', 'review')"
        )

    op.add_column("referrals", sa.Column("ip_key", sa.String(length=64), nullable=True))
    op.drop_index("ix_referrals_ip_created_at", table_name="referrals")
    op.create_index("ix_referrals_ip_key_created_at", "referrals", ["ip_key", "created_at"])
    _canonical_addresses()

    op.add_column("referral_clicks", sa.Column("client_key", sa.String(length=64), nullable=True))
    op.add_column("referral_clicks", sa.Column("dedup_window", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_referral_clicks_dedup",
        "referral_clicks",
        ["member_id", "client_key", "dedup_window"],
        unique=True,
    )


def _canonical_addresses():
    """Stored addresses in their one spelling, with their key; text that is no address is
    left as it was, keyed by itself."""
    referrals = sa.table(
        "referrals", sa.column("id", sa.BigInteger()), sa.column("ip", sa.String()),
        sa.column("ip_key", sa.String()),
    )  # fmt: skip
    connection = op.get_bind()
    rows = connection.execute(sa.select(referrals.c.id, referrals.c.ip).where(
        referrals.c.ip.is_not(None))).all()  # fmt: skip
    for row_id, text in rows:
        try:
            values = {"ip": canonical_ip(text), "ip_key": client_key(text)}
        except NotAnAddress:
            values = {"ip_key": text}
        connection.execute(referrals.update().where(referrals.c.id == row_id).values(values))


def downgrade():
    op.drop_index("ix_referral_clicks_dedup", table_name="referral_clicks")
    op.drop_column("referral_clicks", "dedup_window")
    op.drop_column("referral_clicks", "client_key")
    op.drop_index("ix_referrals_ip_key_created_at", table_name="referrals")
    op.create_index("ix_referrals_ip_created_at", "referrals", ["ip", "created_at"])
    op.drop_column("referrals", "ip_key")
    with op.batch_alter_table("referral_settings") as batch:
        batch.drop_constraint(op.f("ck_referral_settings_missing_ip"), type_="check")
        batch.drop_constraint(op.f("ck_referral_settings_reward_hold_days_positive"), type_="check")
        batch.drop_constraint(op.f("ck_referral_settings_min_order_amount_positive"), type_="check")
        batch.drop_column("missing_ip")
        batch.drop_column("reward_hold_days")
        batch.drop_column("min_order_amount")
