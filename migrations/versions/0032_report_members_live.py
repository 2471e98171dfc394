"""Report members carry the member facts the segments and the overview read

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06

The segments and the overview's active members joined `report_members` (a member's paid
orders) to the live members of `members` on every report: at 600,000 members, half a second
or more a pass. `report_members` now carries what they read of the member: the customer id,
whether the member is erased, and the enrolment time — so the buyers are read from
`report_members` alone. The refresh fills them from `members` (as it fills the figures from
`orders`); a trigger on `members` keeps them when a member's customer id, erasure or
enrolment changes: it writes the new values into the member's row at once (an erasure leaves
no copy of the customer id) and marks the member, so a refresh running meanwhile cannot leave
the old ones behind.

Each row also keeps the member's average order value in whole minor units (`aov`: net spend /
paid orders, truncated). Indexes of the live buyers (not erased, with a customer id): by
customer id (the segments' listed ids, index-only), by net spend and by average order value
(the segments' thresholds: the value at a rank, read from the index); and the overview's
active members (a range of last paid orders) without the erased.

Existing rows are filled here from `members`.

On SQLite the trigger lives on `members`: a later migration that rebuilds `members` with
`batch_alter_table` must create it again (`create_member_trigger` below).
"""

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

_LIVE = sa.text("NOT erased AND customer_id IS NOT NULL")
_NOT_ERASED = sa.text("NOT erased")
_FIGURES = ["last_at", "frequency", "monetary", "enrolled_at"]
_WATCHED = ("customer_id", "erased_at", "enrolled_at")


def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("report_members") as batch:
        batch.add_column(sa.Column("aov", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("customer_id", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("erased", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True))
    if sqlite:
        op.execute(
            "UPDATE report_members SET aov = monetary / frequency, "
            "customer_id = (SELECT customer_id FROM members m WHERE m.id = member_id), "
            "erased = (SELECT erased_at IS NOT NULL FROM members m WHERE m.id = member_id), "
            "enrolled_at = (SELECT enrolled_at FROM members m WHERE m.id = member_id)"
        )
    else:
        op.execute(
            "UPDATE report_members r SET aov = r.monetary / r.frequency, "
            "customer_id = m.customer_id, "
            "erased = m.erased_at IS NOT NULL, enrolled_at = m.enrolled_at "
            "FROM members m WHERE m.id = r.member_id"
        )
    with op.batch_alter_table("report_members") as batch:
        batch.alter_column("erased", server_default=None)
        batch.alter_column("enrolled_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column("aov", existing_type=sa.BigInteger(), nullable=False)
    op.drop_index("ix_report_members_last_at", table_name="report_members")
    op.create_index(
        "ix_report_members_last_at",
        "report_members",
        ["last_at"],
        postgresql_where=_NOT_ERASED,
        sqlite_where=_NOT_ERASED,
    )
    op.create_index(
        "ix_report_members_live_customer",
        "report_members",
        ["customer_id"],
        postgresql_include=_FIGURES,
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )
    op.create_index(
        "ix_report_members_live_monetary",
        "report_members",
        ["monetary"],
        postgresql_include=["enrolled_at"],
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )
    op.create_index(
        "ix_report_members_live_aov",
        "report_members",
        ["aov"],
        postgresql_include=["enrolled_at"],
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )
    create_member_trigger()


def create_member_trigger() -> None:
    """The trigger on `members` keeping their facts in `report_members`, on either database."""
    if op.get_bind().dialect.name == "postgresql":
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _WATCHED)
        op.execute("""
            CREATE FUNCTION report_members_mark() RETURNS trigger AS $$
            BEGIN
              UPDATE report_members SET customer_id = NEW.customer_id,
                erased = NEW.erased_at IS NOT NULL, enrolled_at = NEW.enrolled_at
              WHERE member_id = NEW.id;
              -- Marked too: a refresh that read the member before this commits would write
              -- the old values back; the mark makes the next one write them again.
              INSERT INTO report_dirty_members (member_id, marked_at) VALUES (NEW.id, now())
              ON CONFLICT (member_id) DO UPDATE
                SET marked_at = least(report_dirty_members.marked_at, excluded.marked_at);
              RETURN NULL;
            END $$ LANGUAGE plpgsql
        """)
        op.execute(f"""
            CREATE TRIGGER report_members_changed
            AFTER UPDATE OF {", ".join(_WATCHED)} ON members
            FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION report_members_mark()
        """)
        return
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _WATCHED)
    now = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
    op.execute(f"""
        CREATE TRIGGER report_members_changed AFTER UPDATE OF {", ".join(_WATCHED)} ON members
        WHEN {changed}
        BEGIN
          UPDATE report_members SET customer_id = NEW.customer_id,
            erased = NEW.erased_at IS NOT NULL, enrolled_at = NEW.enrolled_at
          WHERE member_id = NEW.id;
          INSERT OR IGNORE INTO report_dirty_members (member_id, marked_at)
          VALUES (NEW.id, {now});
        END
    """)


def drop_member_trigger() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS report_members_changed ON members")
        op.execute("DROP FUNCTION IF EXISTS report_members_mark()")
    else:
        op.execute("DROP TRIGGER IF EXISTS report_members_changed")


def downgrade():
    drop_member_trigger()
    op.drop_index("ix_report_members_live_aov", table_name="report_members")
    op.drop_index("ix_report_members_live_monetary", table_name="report_members")
    op.drop_index("ix_report_members_live_customer", table_name="report_members")
    op.drop_index("ix_report_members_last_at", table_name="report_members")
    op.create_index("ix_report_members_last_at", "report_members", ["last_at"])
    with op.batch_alter_table("report_members") as batch:
        batch.drop_column("enrolled_at")
        batch.drop_column("erased")
        batch.drop_column("customer_id")
        batch.drop_column("aov")
