"""Earning rules name their tiers by id: earning_rule_tiers (rule_id, tier_id)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

A rule's `conditions.tiers` (tier names in its JSON) become rows of `earning_rule_tiers`, with
foreign keys to the rule and the tier: renaming a tier changes no rule, and a tier a rule names
can't be deleted. `position` keeps the order the names were given in; a name given twice is
kept once. A name no tier has (possible only through edits outside the app) is dropped; a rule
left with none of its tiers could never apply, so it is made inactive rather than opened to
every tier. Downgrading writes the names (as they are then) back into `conditions`.

The table gets the triggers of 0014: the per-worker rule cache holds a rule's tier ids.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_rules = sa.table(
    "earning_rules",
    sa.column("id", sa.Integer),
    sa.column("conditions", _JSON),
    sa.column("active", sa.Boolean),
)
_tiers = sa.table("tiers", sa.column("id", sa.Integer), sa.column("name", sa.String))
_links = sa.table(
    "earning_rule_tiers",
    sa.column("rule_id", sa.Integer),
    sa.column("tier_id", sa.Integer),
    sa.column("position", sa.SmallInteger),
)
_TABLE = "earning_rule_tiers"


def upgrade():
    op.create_table(
        _TABLE,
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("tier_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["earning_rules.id"],
            name=op.f("fk_earning_rule_tiers_rule_id_earning_rules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tier_id"], ["tiers.id"], name=op.f("fk_earning_rule_tiers_tier_id_tiers")
        ),
        sa.PrimaryKeyConstraint("rule_id", "tier_id", name=op.f("pk_earning_rule_tiers")),
    )
    op.create_index(op.f("ix_earning_rule_tiers_tier_id"), _TABLE, ["tier_id"])
    _create_config_triggers()

    connection = op.get_bind()
    tier_ids = dict(connection.execute(sa.select(_tiers.c.name, _tiers.c.id)).all())
    rules = connection.execute(sa.select(_rules.c.id, _rules.c.conditions)).all()
    for rule_id, conditions in rules:
        conditions = conditions or {}
        if "tiers" not in conditions:
            continue
        names = conditions["tiers"] or []
        ids = list(dict.fromkeys(tier_ids[name] for name in names if name in tier_ids))
        if ids:
            connection.execute(
                sa.insert(_links),
                [
                    {"rule_id": rule_id, "tier_id": tier_id, "position": position}
                    for position, tier_id in enumerate(ids)
                ],
            )
        values = {"conditions": {k: v for k, v in conditions.items() if k != "tiers"}}
        if names and not ids:
            values["active"] = False
        connection.execute(sa.update(_rules).where(_rules.c.id == rule_id).values(**values))


def downgrade():
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_links.c.rule_id, _tiers.c.name)
        .join(_tiers, _tiers.c.id == _links.c.tier_id)
        .order_by(_links.c.rule_id, _links.c.position)
    ).all()
    names: dict[int, list[str]] = {}
    for rule_id, name in rows:
        names.setdefault(rule_id, []).append(name)
    for rule_id, tiers in names.items():
        conditions = connection.execute(
            sa.select(_rules.c.conditions).where(_rules.c.id == rule_id)
        ).scalar_one()
        connection.execute(
            sa.update(_rules)
            .where(_rules.c.id == rule_id)
            .values(conditions={**(conditions or {}), "tiers": tiers})
        )
    _drop_config_triggers()
    op.drop_index(op.f("ix_earning_rule_tiers_tier_id"), table_name=_TABLE)
    op.drop_table(_TABLE)


def _create_config_triggers():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {_TABLE} FOR EACH STATEMENT EXECUTE FUNCTION config_changed()"
        )
    else:
        for what in ("insert", "update", "delete"):
            op.execute(
                f"CREATE TRIGGER config_changed_{_TABLE}_{what} AFTER {what.upper()} ON {_TABLE} "
                "BEGIN UPDATE config_version SET version = random() WHERE id = 1; END"
            )


def _drop_config_triggers():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER config_changed ON {_TABLE}")
    else:
        for what in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER config_changed_{_TABLE}_{what}")
