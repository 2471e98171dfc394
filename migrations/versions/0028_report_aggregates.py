"""Report aggregates: per-order facts, per-customer and per-member statistics, cohort rollups

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06

The retention, cohort and segment reports read these tables instead of scanning `orders`
(docs/reports.md). A trigger on `orders` marks, in the order's own transaction, the customer
(`coalesce(customer_id, 'erased:' || member_id)`, the reports' customer) and the member whose
paid orders changed; `loyalty.reports.aggregates.refresh` (the `refresh-reports` job, `flask
loyalty reports-refresh`, and reports on the primary when few are marked) recomputes them.

Existing orders: every customer and member with a paid order is marked here (set-based, with
a mark time of 1970 so the reports' `data_as_of` says they are not in yet); the first refresh
fills the tables. On a big database run `flask --app wsgi loyalty reports-refresh --rebuild`
after upgrading (one set-based pass over `orders`).

On SQLite the triggers live on `orders`: a later migration that rebuilds `orders` with
`batch_alter_table` must create them again (`create_triggers` below).
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)
_KEY = sa.String(length=160)

# The columns the reports read: a change to any other (points, lines, detail) marks nothing.
_READ = ("status", "eligible_amount", "refunded_amount", "occurred_at", "customer_id", "member_id")
_CUSTOMER = "coalesce({r}.customer_id, 'erased:' || {r}.member_id)"
_ERASED = "CASE WHEN {r}.customer_id IS NULL THEN {r}.member_id END"


def upgrade():
    op.create_table(
        "report_orders",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("customer", _KEY, nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("occurred_at", _AT, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("months_since", sa.Integer(), nullable=True),
        sa.Column("prev_at", _AT, nullable=True),
        sa.Column("prev2_at", _AT, nullable=True),
        sa.Column("next_at", _AT, nullable=True),
        sa.Column("cum_value", sa.BigInteger(), nullable=False),
        sa.Column("side_prev_at", _AT, nullable=True),
        sa.Column("side_prev2_at", _AT, nullable=True),
        sa.Column("side_next_at", _AT, nullable=True),
        sa.Column("side_cum_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_orders")),
    )
    op.create_index("ix_report_orders_occurred_at", "report_orders", ["occurred_at"])
    op.create_index("ix_report_orders_customer", "report_orders", ["customer"])
    op.create_index("ix_report_orders_member_id", "report_orders", ["member_id"])
    op.create_index(
        "ix_report_orders_first",
        "report_orders",
        ["occurred_at"],
        postgresql_where=sa.text("prev_at IS NULL"),
        sqlite_where=sa.text("prev_at IS NULL"),
    )
    op.create_table(
        "report_customers",
        sa.Column("customer", _KEY, nullable=False),
        sa.Column("first_at", _AT, nullable=False),
        sa.Column("first_month", sa.Integer(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer", name=op.f("pk_report_customers")),
    )
    op.create_table(
        "report_members",
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last_at", _AT, nullable=False),
        sa.Column("frequency", sa.BigInteger(), nullable=False),
        sa.Column("monetary", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_report_members")),
    )
    op.create_table(
        "report_cohorts",
        sa.Column("first_month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customers", sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.Column("repeaters", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("first_month", name=op.f("pk_report_cohorts")),
    )
    op.create_table(
        "report_cohort_cells",
        sa.Column("first_month", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("months_since", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customers", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("first_month", "months_since", name=op.f("pk_report_cohort_cells")),
    )
    op.create_table(
        "report_dirty_customers",
        sa.Column("customer", _KEY, nullable=False),
        sa.Column("erased_member_id", sa.BigInteger(), nullable=True),
        sa.Column("marked_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("customer", name=op.f("pk_report_dirty_customers")),
    )
    op.create_table(
        "report_dirty_members",
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("marked_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_report_dirty_members")),
    )
    op.create_table(
        "report_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data_as_of", _AT, nullable=False),
        sa.Column("refreshed_at", _AT, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_state")),
    )
    create_triggers()
    sqlite = op.get_bind().dialect.name == "sqlite"
    epoch = "'1970-01-01 00:00:00.000000'" if sqlite else "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
    now = "'" + _now_text() + "'" if sqlite else "now()"
    customer, erased = _CUSTOMER.format(r="orders"), _ERASED.format(r="orders")
    op.execute(
        f"INSERT INTO report_dirty_customers (customer, erased_member_id, marked_at) "
        f"SELECT DISTINCT {customer}, {erased}, {epoch} FROM orders "
        f"WHERE status = 'paid' AND {customer} IS NOT NULL"
    )
    op.execute(
        f"INSERT INTO report_dirty_members (member_id, marked_at) "
        f"SELECT DISTINCT member_id, {epoch} FROM orders "
        f"WHERE status = 'paid' AND member_id IS NOT NULL"
    )
    op.execute(f"INSERT INTO report_state (id, data_as_of) VALUES (1, {now})")


def _now_text() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def create_triggers() -> None:
    """The triggers that mark changed customers and members, on either database."""
    new_key, old_key = _CUSTOMER.format(r="NEW"), _CUSTOMER.format(r="OLD")
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _READ)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION report_orders_mark() RETURNS trigger AS $$
            BEGIN
              -- DO UPDATE (not DO NOTHING) locks the mark until this transaction ends, so a
              -- refresh cannot take it before the order it marks is visible.
              IF {new_key} IS NOT NULL THEN
                INSERT INTO report_dirty_customers (customer, erased_member_id, marked_at)
                VALUES ({new_key}, {_ERASED.format(r="NEW")}, now())
                ON CONFLICT (customer) DO UPDATE
                  SET marked_at = least(report_dirty_customers.marked_at, excluded.marked_at);
              END IF;
              IF NEW.member_id IS NOT NULL THEN
                INSERT INTO report_dirty_members (member_id, marked_at)
                VALUES (NEW.member_id, now())
                ON CONFLICT (member_id) DO UPDATE
                  SET marked_at = least(report_dirty_members.marked_at, excluded.marked_at);
              END IF;
              IF TG_OP = 'UPDATE' THEN
                IF {old_key} IS NOT NULL AND {old_key} IS DISTINCT FROM {new_key} THEN
                  INSERT INTO report_dirty_customers (customer, erased_member_id, marked_at)
                  VALUES ({old_key}, {_ERASED.format(r="OLD")}, now())
                  ON CONFLICT (customer) DO UPDATE
                    SET marked_at = least(report_dirty_customers.marked_at, excluded.marked_at);
                END IF;
                IF OLD.member_id IS NOT NULL AND OLD.member_id IS DISTINCT FROM NEW.member_id THEN
                  INSERT INTO report_dirty_members (member_id, marked_at)
                  VALUES (OLD.member_id, now())
                  ON CONFLICT (member_id) DO UPDATE
                    SET marked_at = least(report_dirty_members.marked_at, excluded.marked_at);
                END IF;
              END IF;
              RETURN NULL;
            END $$ LANGUAGE plpgsql
        """)
        op.execute("""
            CREATE TRIGGER report_orders_inserted AFTER INSERT ON orders
            FOR EACH ROW WHEN (NEW.status = 'paid') EXECUTE FUNCTION report_orders_mark()
        """)
        op.execute(f"""
            CREATE TRIGGER report_orders_updated AFTER UPDATE ON orders
            FOR EACH ROW WHEN ((OLD.status = 'paid' OR NEW.status = 'paid') AND ({changed}))
            EXECUTE FUNCTION report_orders_mark()
        """)
        return
    changed = changed.replace("IS DISTINCT FROM", "IS NOT")
    now = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"

    def marks(row: str) -> str:
        key = _CUSTOMER.format(r=row)
        return (
            f"INSERT OR IGNORE INTO report_dirty_customers (customer, erased_member_id, "
            f"marked_at) SELECT {key}, {_ERASED.format(r=row)}, {now} WHERE {key} IS NOT NULL; "
            f"INSERT OR IGNORE INTO report_dirty_members (member_id, marked_at) "
            f"SELECT {row}.member_id, {now} WHERE {row}.member_id IS NOT NULL;"
        )

    op.execute(
        f"CREATE TRIGGER report_orders_inserted AFTER INSERT ON orders "
        f"WHEN NEW.status = 'paid' BEGIN {marks('NEW')} END"
    )
    op.execute(
        f"CREATE TRIGGER report_orders_updated AFTER UPDATE ON orders "
        f"WHEN (OLD.status = 'paid' OR NEW.status = 'paid') AND ({changed}) "
        f"BEGIN {marks('NEW')} {marks('OLD')} END"
    )


def drop_triggers() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS report_orders_inserted ON orders".replace(
            " ON orders", "" if op.get_bind().dialect.name == "sqlite" else " ON orders"
        )
    )
    op.execute(
        "DROP TRIGGER IF EXISTS report_orders_updated ON orders".replace(
            " ON orders", "" if op.get_bind().dialect.name == "sqlite" else " ON orders"
        )
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS report_orders_mark()")


def downgrade():
    drop_triggers()
    for table in (
        "report_state",
        "report_dirty_members",
        "report_dirty_customers",
        "report_cohort_cells",
        "report_cohorts",
        "report_members",
        "report_customers",
    ):
        op.drop_table(table)
    op.drop_index("ix_report_orders_first", table_name="report_orders")
    op.drop_index("ix_report_orders_member_id", table_name="report_orders")
    op.drop_index("ix_report_orders_customer", table_name="report_orders")
    op.drop_index("ix_report_orders_occurred_at", table_name="report_orders")
    op.drop_table("report_orders")
