"""The reports' aggregates: per-order facts, per-customer and per-member statistics and cohort
rollups, kept from `orders` by `loyalty.reports.aggregates.refresh` (see docs/reports.md).

Nothing here is a source of truth: every row can be rebuilt from `orders`
(`loyalty reports-refresh --rebuild`), and `loyalty verify-reports` compares them with a
recomputation. A trigger on `orders` (migration 0028) marks the customers and members whose
paid orders changed in `report_dirty_customers` / `report_dirty_members`; `refresh` recomputes
exactly those.
"""

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import UTCDateTime

RETENTION_COLUMNS = (  # what the retention report reads of report_orders beside occurred_at
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
)
CUSTOMER_KEY = String(160)  # a store customer id (128), or "erased:<member id>"


class ReportOrder(Base):
    """One row per paid order: its value and its neighbours in its customer's orders, ordered
    by (occurred_at, id) — over all of them (`prev_at`, ...) and over the orders of its side
    only (`side_*`: member orders, or orders without a member)."""

    __tablename__ = "report_orders"
    __table_args__ = (
        # Retention's pass over a period: index-only on PostgreSQL (migration 0031).
        Index(
            "ix_report_orders_occurred_at",
            "occurred_at",
            postgresql_include=list(RETENTION_COLUMNS),
        ),
        Index("ix_report_orders_customer", "customer"),
        Index("ix_report_orders_member_id", "member_id"),
        # The customers' first orders (customers at the start of a period).
        Index(
            "ix_report_orders_first",
            "occurred_at",
            postgresql_where=text("prev_at IS NULL"),
            sqlite_where=text("prev_at IS NULL"),
        ),
        # ... and each side's first orders (members' / non-members' customers at the start).
        Index(
            "ix_report_orders_side_first",
            "occurred_at",
            postgresql_include=["member_id"],
            postgresql_where=text("side_prev_at IS NULL"),
            sqlite_where=text("side_prev_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # orders.id
    customer: Mapped[str] = mapped_column(CUSTOMER_KEY)
    member_id: Mapped[int | None] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    value: Mapped[int] = mapped_column(BigInteger)  # eligible_amount - refunded_amount
    month: Mapped[int] = mapped_column(Integer)  # year * 12 + month - 1, UTC
    # Months since the customer's first paid month, on the customer's first order of a month.
    months_since: Mapped[int | None] = mapped_column(Integer)
    prev_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prev2_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cum_value: Mapped[int] = mapped_column(BigInteger)  # the customer's value up to this order
    side_prev_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    side_prev2_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    side_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    side_cum_value: Mapped[int] = mapped_column(BigInteger)


class ReportCustomer(Base):
    """One row per customer with a paid order."""

    __tablename__ = "report_customers"

    customer: Mapped[str] = mapped_column(CUSTOMER_KEY, primary_key=True)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_month: Mapped[int] = mapped_column(Integer)
    orders: Mapped[int] = mapped_column(BigInteger)
    revenue: Mapped[int] = mapped_column(BigInteger)


LIVE_BUYER = "NOT erased AND customer_id IS NOT NULL"  # a live member's row (LIVE_MEMBER)


class ReportMember(Base):
    """One row per member with a paid order: the RFM figures over all their paid orders, and
    what the reports read of the member (`members.customer_id`, erased or not, `enrolled_at`;
    kept by the refresh and by a trigger on `members`, migration 0032)."""

    __tablename__ = "report_members"
    __table_args__ = (
        # The overview's active members: a range of last paid orders.
        Index(
            "ix_report_members_last_at",
            "last_at",
            postgresql_where=text("NOT erased"),
            sqlite_where=text("NOT erased"),
        ),
        # The live buyers in customer id order (the segments' listed ids: index-only), ...
        Index(
            "ix_report_members_live_customer",
            "customer_id",
            postgresql_include=["last_at", "frequency", "monetary", "enrolled_at"],
            postgresql_where=text(LIVE_BUYER),
            sqlite_where=text(LIVE_BUYER),
        ),
        # ... by net spend and by average order value (the thresholds: a value at a rank).
        Index(
            "ix_report_members_live_monetary",
            "monetary",
            postgresql_include=["enrolled_at"],
            postgresql_where=text(LIVE_BUYER),
            sqlite_where=text(LIVE_BUYER),
        ),
        Index(
            "ix_report_members_live_aov",
            "aov",
            postgresql_include=["enrolled_at"],
            postgresql_where=text(LIVE_BUYER),
            sqlite_where=text(LIVE_BUYER),
        ),
    )

    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    frequency: Mapped[int] = mapped_column(BigInteger)
    monetary: Mapped[int] = mapped_column(BigInteger)
    aov: Mapped[int] = mapped_column(BigInteger)  # monetary / frequency, truncated
    customer_id: Mapped[str | None] = mapped_column(String(128))  # members.customer_id
    erased: Mapped[bool] = mapped_column()  # members.erased_at IS NOT NULL
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportCohort(Base):
    """The customers whose first paid order is in `first_month`, summed."""

    __tablename__ = "report_cohorts"

    first_month: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    customers: Mapped[int] = mapped_column(BigInteger)
    orders: Mapped[int] = mapped_column(BigInteger)
    revenue: Mapped[int] = mapped_column(BigInteger)
    repeaters: Mapped[int] = mapped_column(BigInteger)  # customers with two or more orders


class ReportCohortCell(Base):
    """Customers of the `first_month` cohort with a paid order `months_since` months later."""

    __tablename__ = "report_cohort_cells"

    first_month: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    months_since: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    customers: Mapped[int] = mapped_column(BigInteger)


class ReportDirtyCustomer(Base):
    """A customer whose paid orders changed since the last refresh (written by the trigger)."""

    __tablename__ = "report_dirty_customers"

    customer: Mapped[str] = mapped_column(CUSTOMER_KEY, primary_key=True)
    # For "erased:<id>": the member whose orders lost their customer id.
    erased_member_id: Mapped[int | None] = mapped_column(BigInteger)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportDirtyMember(Base):
    __tablename__ = "report_dirty_members"

    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportState(Base):
    """One row: every event committed before `data_as_of` is in the aggregates."""

    __tablename__ = "report_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data_as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
