"""Reports from indexes: covering and first-order indexes of report_orders, live members.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06

Retention reads one pass over the period's rows of `report_orders`; on PostgreSQL the index
by `occurred_at` now carries every column that pass reads (INCLUDE), so it is an index-only
scan of the period (the table's pages are not read while the visibility map is current:
`loyalty reports-refresh` vacuums the tables after a rebuild). The customers at the start of
a period are counted on partial indexes of first orders: overall (`prev_at IS NULL`, as
before) and on each side (`side_prev_at IS NULL`, with the member id to tell the sides).
The overview's active members (a last paid order in the last 90 days) are a range of
`report_members` by `last_at`. The segments join live members to `report_members` through
a partial index of live members that carries what they read (customer id, enrolment), so the
wide member rows are not read.

Erased guest orders (no customer id, no member) are one customer of the reports, "erased:",
as the reports' definitions count them: the trigger on `orders` now marks that key too.
"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

RETENTION_COLUMNS = [
    "member_id",
    "value",
    "prev_at",
    "prev2_at",
    "next_at",
    "cum_value",
    "side_prev_at",
    "side_prev2_at",
    "side_next_at",
    "side_cum_value",
]
_SIDE_FIRST = sa.text("side_prev_at IS NULL")
_LIVE = sa.text("erased_at IS NULL AND customer_id IS NOT NULL")


_READ = ("status", "eligible_amount", "refunded_amount", "occurred_at", "customer_id", "member_id")
_ERASED = "CASE WHEN {r}.customer_id IS NULL THEN {r}.member_id END"
OLD_KEY = "coalesce({r}.customer_id, 'erased:' || {r}.member_id)"
NEW_KEY = "coalesce({r}.customer_id, 'erased:' || {r}.member_id, 'erased:')"


def _mark_customers(key: str) -> None:
    """The trigger on `orders` marking customers (migration 0028's) with this customer key."""
    new_key, old_key = key.format(r="NEW"), key.format(r="OLD")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE OR REPLACE FUNCTION report_orders_mark() RETURNS trigger AS $$
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
        return
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _READ)
    now = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"

    def marks(row: str) -> str:
        key_of = key.format(r=row)
        return (
            f"INSERT OR IGNORE INTO report_dirty_customers (customer, erased_member_id, "
            f"marked_at) SELECT {key_of}, {_ERASED.format(r=row)}, {now} WHERE {key_of} IS NOT NULL; "
            f"INSERT OR IGNORE INTO report_dirty_members (member_id, marked_at) "
            f"SELECT {row}.member_id, {now} WHERE {row}.member_id IS NOT NULL;"
        )

    op.execute("DROP TRIGGER IF EXISTS report_orders_inserted")
    op.execute("DROP TRIGGER IF EXISTS report_orders_updated")
    op.execute(
        f"CREATE TRIGGER report_orders_inserted AFTER INSERT ON orders "
        f"WHEN NEW.status = 'paid' BEGIN {marks('NEW')} END"
    )
    op.execute(
        f"CREATE TRIGGER report_orders_updated AFTER UPDATE ON orders "
        f"WHEN (OLD.status = 'paid' OR NEW.status = 'paid') AND ({changed}) "
        f"BEGIN {marks('NEW')} {marks('OLD')} END"
    )


def upgrade():
    _mark_customers(NEW_KEY)
    # Erased guest orders already there: their customer, to compute at the next refresh.
    sqlite = op.get_bind().dialect.name == "sqlite"
    epoch = "'1970-01-01 00:00:00.000000'" if sqlite else "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
    op.execute(
        f"INSERT INTO report_dirty_customers (customer, erased_member_id, marked_at) "
        f"SELECT 'erased:', NULL, {epoch} WHERE EXISTS (SELECT 1 FROM orders "
        f"WHERE status = 'paid' AND customer_id IS NULL AND member_id IS NULL)"
    )
    op.drop_index("ix_report_orders_occurred_at", table_name="report_orders")
    op.create_index(
        "ix_report_orders_occurred_at",
        "report_orders",
        ["occurred_at"],
        postgresql_include=RETENTION_COLUMNS,
    )
    op.create_index(
        "ix_report_orders_side_first",
        "report_orders",
        ["occurred_at"],
        postgresql_include=["member_id"],
        postgresql_where=_SIDE_FIRST,
        sqlite_where=_SIDE_FIRST,
    )
    op.create_index("ix_report_members_last_at", "report_members", ["last_at"])
    op.create_index(
        "ix_members_live",
        "members",
        ["id"],
        postgresql_include=["customer_id", "enrolled_at"],
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )


def downgrade():
    _mark_customers(OLD_KEY)
    op.execute("DELETE FROM report_orders WHERE customer = 'erased:'")
    op.execute("DELETE FROM report_customers WHERE customer = 'erased:'")
    op.execute("DELETE FROM report_dirty_customers WHERE customer = 'erased:'")
    op.drop_index("ix_members_live", table_name="members")
    op.drop_index("ix_report_members_last_at", table_name="report_members")
    op.drop_index("ix_report_orders_side_first", table_name="report_orders")
    op.drop_index("ix_report_orders_occurred_at", table_name="report_orders")
    op.create_index("ix_report_orders_occurred_at", "report_orders", ["occurred_at"])
