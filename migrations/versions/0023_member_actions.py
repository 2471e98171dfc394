"""Custom actions: member_actions, action_award_counts, and earning rules with trigger "action"

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

`member_actions` holds each action reported for a member (exactly once by its id, with its
answer); `action_award_counts` how many awards an action rule gave a member per day, month and
in all (what the rule's caps are checked against). Earning rules gain the trigger `action` and
a `caps` column.

On SQLite the new trigger value means rebuilding `earning_rules` (batch mode copies it), and a
rebuild loses what hangs on the table: with foreign keys on, dropping the old copy deletes its
rows first, which cascades to `earning_rule_tiers` — those rows are kept aside and put back —
and its config triggers (0014) go with it and are created again.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_RULES = "earning_rules"
_TRIGGERS_BEFORE = "'order', 'signup', 'first_order', 'birthday'"
_TRIGGERS_AFTER = "'order', 'signup', 'first_order', 'birthday', 'action'"
_links = sa.table(
    "earning_rule_tiers",
    sa.column("rule_id", sa.Integer),
    sa.column("tier_id", sa.Integer),
    sa.column("position", sa.SmallInteger),
)


def upgrade():
    _rebuild_rules(_TRIGGERS_AFTER, add_caps=True)
    op.create_table(
        "member_actions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("action_id", sa.String(length=128), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", _JSON, nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("response", _JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_actions_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_actions")),
        sa.UniqueConstraint("action_id", name=op.f("uq_member_actions_action_id")),
    )
    op.create_index(op.f("ix_member_actions_member_id"), "member_actions", ["member_id"])
    op.create_table(
        "action_award_counts",
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("awards", sa.Integer(), nullable=False),
        sa.CheckConstraint("awards > 0", name=op.f("ck_action_award_counts_awards_positive")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_action_award_counts_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["earning_rules.id"],
            name=op.f("fk_action_award_counts_rule_id_earning_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "member_id", "rule_id", "period", name=op.f("pk_action_award_counts")
        ),
    )
    op.create_index(op.f("ix_action_award_counts_rule_id"), "action_award_counts", ["rule_id"])


def downgrade():
    op.drop_index(op.f("ix_action_award_counts_rule_id"), table_name="action_award_counts")
    op.drop_table("action_award_counts")
    op.drop_index(op.f("ix_member_actions_member_id"), table_name="member_actions")
    op.drop_table("member_actions")
    # Action rules have no meaning before this revision: they go (their entries keep rule_id).
    op.execute(sa.text("DELETE FROM earning_rules WHERE \"trigger\" = 'action'"))
    _rebuild_rules(_TRIGGERS_BEFORE, add_caps=False)


def _rebuild_rules(triggers: str, *, add_caps: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    kept = op.get_bind().execute(sa.select(_links)).mappings().all() if sqlite else []
    with op.batch_alter_table(_RULES) as batch:
        if add_caps:
            batch.add_column(sa.Column("caps", _JSON, nullable=True))
        else:
            batch.drop_column("caps")
        batch.drop_constraint(op.f("ck_earning_rules_trigger"), type_="check")
        batch.create_check_constraint(
            op.f("ck_earning_rules_trigger"), f'"trigger" IN ({triggers})'
        )
    if sqlite:
        op.get_bind().execute(sa.delete(_links))
        if kept:
            op.get_bind().execute(sa.insert(_links), [dict(row) for row in kept])
        for what in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS config_changed_{_RULES}_{what}")
            stamp = "UPDATE config_version SET version = random() WHERE id = 1"
            op.execute(
                f"CREATE TRIGGER config_changed_{_RULES}_{what} AFTER {what.upper()} ON {_RULES} "
                f"BEGIN {stamp}; END"
            )
