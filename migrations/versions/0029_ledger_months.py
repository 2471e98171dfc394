"""Ledger months: points per UTC month and kind of entry, kept by a trigger on the ledger;
members' paid orders indexed by time

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06

`ledger_month_deltas` receives, from a trigger on every INSERT into `ledger_entries`, the points
it wrote per (month, kind) (PostgreSQL: one row per month and kind of the statement, from its
transition table; SQLite: one row per entry). The `compact-ledger-months` job folds them into
`ledger_months`; readers add both. The cells are filled here from the entries already recorded
(creating the trigger locks the ledger against inserts until this commits, so none is missed
or counted twice).

`ix_orders_paid_member_occurred_at` (members' paid orders by time) lets the overview count the
members with a paid order in the last 90 days from the index alone.
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _month(dialect: str, column: str) -> str:
    """year × 12 + month − 1 of a UTC datetime column (what the reports call a month)."""
    if dialect == "postgresql":
        utc = f"({column} AT TIME ZONE 'UTC')"
        return f"(extract(year FROM {utc}) * 12 + extract(month FROM {utc}) - 1)::integer"
    return (
        f"(CAST(strftime('%Y', {column}) AS INTEGER) * 12"
        f" + CAST(strftime('%m', {column}) AS INTEGER) - 1)"
    )


_PAID_MEMBER = sa.text("status = 'paid' AND member_id IS NOT NULL")


def upgrade():
    dialect = op.get_bind().dialect.name
    op.create_index(
        "ix_orders_paid_member_occurred_at",
        "orders",
        ["occurred_at", "member_id"],
        postgresql_where=_PAID_MEMBER,
        sqlite_where=_PAID_MEMBER,
    )
    op.create_table(
        "ledger_months",
        sa.Column("month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("month", "kind", name=op.f("pk_ledger_months")),
    )
    op.create_table(
        "ledger_month_deltas",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_month_deltas")),
    )
    if dialect == "postgresql":
        op.execute(f"""
            CREATE FUNCTION ledger_months_collect() RETURNS trigger AS $$
            BEGIN
              INSERT INTO ledger_month_deltas (month, kind, points, first_at, last_at)
              SELECT {_month(dialect, "occurred_at")}, kind, sum(points), min(occurred_at),
                     max(occurred_at)
              FROM new_entries GROUP BY 1, 2;
              RETURN NULL;
            END $$ LANGUAGE plpgsql
        """)  # noqa: S608 - constant SQL
        op.execute("""
            CREATE TRIGGER ledger_months_collect AFTER INSERT ON ledger_entries
            REFERENCING NEW TABLE AS new_entries
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_months_collect()
        """)
    else:
        op.execute(f"""
            CREATE TRIGGER ledger_months_collect AFTER INSERT ON ledger_entries
            BEGIN
              INSERT INTO ledger_month_deltas (month, kind, points, first_at, last_at)
              VALUES ({_month(dialect, "NEW.occurred_at")}, NEW.kind, NEW.points,
                      NEW.occurred_at, NEW.occurred_at);
            END
        """)  # noqa: S608 - constant SQL
    op.execute(f"""
        INSERT INTO ledger_months (month, kind, points, last_at)
        SELECT {_month(dialect, "occurred_at")}, kind, sum(points), max(occurred_at)
        FROM ledger_entries GROUP BY 1, 2
    """)  # noqa: S608 - constant SQL


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_months_collect ON ledger_entries")
        op.execute("DROP FUNCTION IF EXISTS ledger_months_collect()")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_months_collect")
    op.drop_table("ledger_month_deltas")
    op.drop_table("ledger_months")
    op.drop_index("ix_orders_paid_member_occurred_at", table_name="orders")
