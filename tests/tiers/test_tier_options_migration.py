"""The tier options migration fills each period's points and orders from the orders already
recorded, on SQLite and PostgreSQL, and goes down and up again."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from loyalty.extensions import db
from loyalty.types import JSONType, UTCDateTime
from tests.conftest import clone_pg, make_app
from tests.test_migrations import script_directory

T = datetime(2025, 3, 1, 12, tzinfo=UTC)
_members = sa.table(
    "members", sa.column("id", sa.BigInteger), sa.column("customer_id", sa.String),
    sa.column("enrolled_at", UTCDateTime()), sa.column("points_available", sa.BigInteger),
    sa.column("points_pending", sa.BigInteger), sa.column("points_lifetime", sa.BigInteger),
)  # fmt: skip
_orders = sa.table(
    "orders", sa.column("order_id", sa.String), sa.column("member_id", sa.BigInteger),
    sa.column("customer_id", sa.String), sa.column("currency", sa.String),
    sa.column("status", sa.String), sa.column("occurred_at", UTCDateTime()),
    sa.column("total_amount", sa.BigInteger), sa.column("eligible_amount", sa.BigInteger),
    sa.column("refunded_amount", sa.BigInteger), sa.column("points_awarded", sa.BigInteger),
    sa.column("points_reversed", sa.BigInteger), sa.column("lines", JSONType),
    sa.column("attributes", JSONType), sa.column("detail", JSONType),
    sa.column("created_at", UTCDateTime()),
)  # fmt: skip
_spend = sa.table(
    "tier_spend", sa.column("member_id", sa.BigInteger), sa.column("starts_at", UTCDateTime()),
    sa.column("ends_at", UTCDateTime()), sa.column("keeps_until", UTCDateTime()),
    sa.column("spend", sa.BigInteger),
)  # fmt: skip


def _revision(app) -> tuple[str, str]:
    """(this migration's revision, the one before): found by its table, whatever its number."""
    for script in script_directory(app).walk_revisions():
        if "tier_entries" in (script.module.__doc__ or ""):
            return script.revision, script.down_revision
    raise AssertionError("no tier options migration")


def _backfill(url: str) -> None:
    app = make_app(url)
    with app.app_context():
        upgrade()
        this, before = _revision(app)
        downgrade(revision=before)
        with db.engine.begin() as conn:
            conn.execute(sa.insert(_members).values(
                id=1, customer_id="c_1", enrolled_at=T,
                points_available=0, points_pending=0, points_lifetime=0,
            ))  # fmt: skip
            orders = [  # (year, eligible, refunded, awarded, reversed, status)
                (2024, 10_000, 0, 100, 0, "paid"),
                (2025, 20_000, 5_000, 200, 50, "paid"),  # partly refunded: counts
                (2025, 30_000, 30_000, 300, 300, "paid"),  # refunded in full: no order
                (2025, 40_000, 0, 400, 0, "canceled"),  # never paid
                (2025, 0, 0, 0, 0, "paid"),  # gift cards only
            ]
            for n, (year, eligible, refunded, awarded, reversed_, status) in enumerate(orders):
                conn.execute(sa.insert(_orders).values(
                    order_id=f"o{n}", member_id=1, customer_id="c_1", currency="USD",
                    status=status, occurred_at=datetime(year, 3, 1, tzinfo=UTC),
                    total_amount=eligible, eligible_amount=eligible, refunded_amount=refunded,
                    points_awarded=awarded, points_reversed=reversed_, lines=[],
                    attributes={}, detail={}, created_at=T,
                ))  # fmt: skip
            for year in (2024, 2025):
                conn.execute(sa.insert(_spend).values(
                    member_id=1, starts_at=datetime(year, 1, 1, tzinfo=UTC),
                    ends_at=datetime(year + 1, 1, 1, tzinfo=UTC),
                    keeps_until=datetime(year + 2, 1, 1, tzinfo=UTC), spend=1,
                ))  # fmt: skip
        upgrade(revision=this)
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT spend, points, paid_orders FROM tier_spend ORDER BY starts_at")
            ).all()
            basis = conn.execute(sa.text("SELECT tier_basis FROM program")).scalar_one()
        # 2025: 200 - 50 points and one order (the refunded-in-full order adds 300 - 300 and
        # no order; the canceled and the gift-card-only orders nothing).
        assert [tuple(r) for r in rows] == [(1, 100, 1), (1, 150, 1)]
        assert basis == "spend"
        downgrade(revision=before)
        upgrade()
        db.engine.dispose()


def test_the_migration_fills_points_and_orders_on_sqlite(tmp_path):
    _backfill(f"sqlite:///{tmp_path / 'tier_options.sqlite3'}")


@pytest.mark.postgres
def test_the_migration_fills_points_and_orders_on_postgresql(pg_template):
    _backfill(clone_pg(pg_template, "tier_options"))
