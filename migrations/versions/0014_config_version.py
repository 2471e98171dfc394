"""config_version: a stamp that changes with every change to the settings workers cache

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

Triggers on the cached tables give `config_version.version` a value never used before in the
same transaction as the change, whoever makes it (the app, the CLI, a bulk UPDATE, psql).
Workers compare it with the stamp their cache was filled under (loyalty/cache.py). PostgreSQL
takes the value from a sequence (never handed out twice, even by a rolled-back transaction);
SQLite, which has none, a random 64-bit number.

A later migration that rebuilds one of these tables on SQLite (batch mode copies the table)
drops its triggers: tests/test_config_version.py checks they are all there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The tables loyalty/cache.py caches rows of (`cache.watch`).
TABLES = ("program", "earning_rules", "api_keys", "webhook_endpoints")


def upgrade():
    table = op.create_table(
        "config_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_version")),
    )
    op.bulk_insert(table, [{"id": 1, "version": 1}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE config_version_seq START 2")
        op.execute(
            """
            CREATE FUNCTION config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE config_version SET version = nextval('config_version_seq') WHERE id = 1;
                RETURN NULL;
            END $$
            """
        )
        for name in TABLES:
            op.execute(
                f"CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                f"ON {name} FOR EACH STATEMENT EXECUTE FUNCTION config_changed()"
            )
    else:
        for name in TABLES:
            for what in ("insert", "update", "delete"):
                op.execute(
                    f"CREATE TRIGGER config_changed_{name}_{what} AFTER {what.upper()} ON {name} "
                    "BEGIN UPDATE config_version SET version = random() WHERE id = 1; END"
                )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in TABLES:
            op.execute(f"DROP TRIGGER config_changed ON {name}")
        op.execute("DROP FUNCTION config_changed()")
        op.execute("DROP SEQUENCE config_version_seq")
    else:
        for name in TABLES:
            for what in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER config_changed_{name}_{what}")
    op.drop_table("config_version")
