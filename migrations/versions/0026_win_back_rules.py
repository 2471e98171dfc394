"""Win-back: earning rules with trigger "lapse", and one award per member, rule and lapse

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06

Earning rules gain the trigger `lapse` (points for a member without a paid order for
`conditions.days` days). A partial unique index on the ledger holds one entry per member, lapse
rule and lapse (`source_type` "lapse", `source_id` the time of the member's last paid order).

On SQLite the new trigger value means rebuilding `earning_rules` (batch mode copies it), and a
rebuild loses what hangs on the table: with foreign keys on, dropping the old copy deletes its
rows first, which cascades to `earning_rule_tiers` and `action_award_counts` — those rows are
kept aside and put back — and its config triggers (0014) go with it and are created again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_RULES = "earning_rules"
_TRIGGERS_BEFORE = "'order', 'signup', 'first_order', 'birthday', 'action'"
_TRIGGERS_AFTER = "'order', 'signup', 'first_order', 'birthday', 'action', 'lapse'"
_WHERE = sa.text("source_type = 'lapse'")
# What hangs on earning_rules by a cascading foreign key (kept through the SQLite rebuild).
_DEPENDENTS = (
    sa.table(
        "earning_rule_tiers",
        sa.column("rule_id", sa.Integer),
        sa.column("tier_id", sa.Integer),
        sa.column("position", sa.SmallInteger),
    ),
    sa.table(
        "action_award_counts",
        sa.column("member_id", sa.BigInteger),
        sa.column("rule_id", sa.Integer),
        sa.column("period", sa.String),
        sa.column("awards", sa.Integer),
    ),
)


def upgrade():
    _rebuild_rules(_TRIGGERS_AFTER)
    op.create_index(
        "uq_ledger_entries_lapse",
        "ledger_entries",
        ["member_id", "rule_id", "source_id"],
        unique=True,
        postgresql_where=_WHERE,
        sqlite_where=_WHERE,
    )


def downgrade():
    op.drop_index("uq_ledger_entries_lapse", table_name="ledger_entries")
    # Lapse rules have no meaning before this revision: they go (their entries keep rule_id).
    op.execute(sa.text("DELETE FROM earning_rules WHERE \"trigger\" = 'lapse'"))
    _rebuild_rules(_TRIGGERS_BEFORE)


def _rebuild_rules(triggers: str) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    bind = op.get_bind()
    kept = [bind.execute(sa.select(t)).mappings().all() if sqlite else [] for t in _DEPENDENTS]
    with op.batch_alter_table(_RULES) as batch:
        batch.drop_constraint(op.f("ck_earning_rules_trigger"), type_="check")
        batch.create_check_constraint(
            op.f("ck_earning_rules_trigger"), f'"trigger" IN ({triggers})'
        )
    if sqlite:
        for table, rows in zip(_DEPENDENTS, kept, strict=True):
            bind.execute(sa.delete(table))
            if rows:
                bind.execute(sa.insert(table), [dict(row) for row in rows])
        for what in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS config_changed_{_RULES}_{what}")
            stamp = "UPDATE config_version SET version = random() WHERE id = 1"
            op.execute(
                f"CREATE TRIGGER config_changed_{_RULES}_{what} AFTER {what.upper()} ON {_RULES} "
                f"BEGIN {stamp}; END"
            )
