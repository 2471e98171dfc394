"""Scheduled jobs: set-based SQL over ranges of members, one transaction per range.

Each range first locks its members' rows (on PostgreSQL), so the statements that follow see
every committed entry and nothing new can slip in between them; several machines may run the
same job at once. A crash loses at most the range in flight, and a re-run picks up the rest:
every job only touches rows that are still due, so running it again changes nothing.
"""

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import String, and_, cast, exists, func, literal, select, update
from sqlalchemy.orm import Session

from loyalty import email, ledger
from loyalty.config import DEFAULT_JOB_BATCH_SIZES
from loyalty.extensions import rowcount
from loyalty.ledger import AVAILABLE, PENDING, LedgerEntry
from loyalty.members.models import Member
from loyalty.program.service import get_program
from loyalty.types import JSONType
from loyalty.webhooks import service as webhooks

Progress = Callable[[int], None]


def batch_size(name: str) -> int:
    """Members per transaction of job `name`: its own JOB_BATCH_SIZES entry, else
    JOB_BATCH_SIZE (at most its built-in size, for the jobs that have one)."""
    config = current_app.config
    general: int = config["JOB_BATCH_SIZE"]
    own: int | None = config["JOB_BATCH_SIZES"].get(name)
    if own is not None:
        return own
    return min(general, DEFAULT_JOB_BATCH_SIZES.get(name, general))


def member_ranges(session: Session, batch_size: int) -> list[tuple[int, int]]:
    low, high = session.execute(select(func.min(Member.id), func.max(Member.id))).one()
    if low is None:
        return []
    return [(start, start + batch_size - 1) for start in range(low, high + 1, batch_size)]


def in_ranges(
    session: Session, batch_size: int, progress: Progress | None
) -> Iterator[tuple[int, int]]:
    """Yield member id ranges; commit after each so work is resumable and locks are short."""
    for low, high in member_ranges(session, batch_size):
        yield low, high
        session.commit()
        if progress:
            progress(1)


def lock_members(session: Session, *conditions) -> None:
    session.execute(select(Member.id).where(*conditions).order_by(Member.id).with_for_update())


def mature_points(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """Pending points whose return window has passed become available."""
    changed = 0
    for low, high in in_ranges(session, batch_size, progress):
        due = and_(
            LedgerEntry.member_id.between(low, high),
            LedgerEntry.state == PENDING,
            LedgerEntry.matures_at <= now,
        )
        lock_members(
            session,
            Member.id.between(low, high),
            exists().where(due, LedgerEntry.member_id == Member.id),
        )
        sums = (
            select(LedgerEntry.member_id, func.sum(LedgerEntry.points).label("points"))
            .where(due)
            .group_by(LedgerEntry.member_id)
            .subquery()
        )
        session.execute(
            update(Member)
            .where(Member.id == sums.c.member_id)
            .values(
                points_pending=Member.points_pending - sums.c.points,
                points_available=Member.points_available + sums.c.points,
            ),
            execution_options={"synchronize_session": False},
        )
        result = session.execute(
            update(LedgerEntry).where(due).values(state=AVAILABLE, matured_at=now),
            execution_options={"synchronize_session": False},
        )
        changed += rowcount(result)
    return changed


def expire_points(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """Available points of members inactive (no purchase or redemption) for too long expire."""
    program = get_program(session)
    if program.expiry_inactive_days is None:
        return 0
    cutoff = now - timedelta(days=program.expiry_inactive_days)
    detail = {"inactive_days": program.expiry_inactive_days, "cutoff": cutoff.isoformat()}
    warning_days = current_app.config["POINTS_EXPIRY_WARNING_DAYS"]
    warn = warning_days > 0 and (webhooks.subscribed(session, "points.expiring") or email.enabled())
    report = webhooks.subscribed(session, "points.expired")
    changed = 0
    for low, high in in_ranges(session, batch_size, progress):
        if warn:
            warn_expiring_points(
                session, now, program.expiry_inactive_days, warning_days, low, high
            )
        inactive = and_(
            Member.id.between(low, high),
            Member.points_available > 0,
            func.coalesce(Member.last_activity_at, Member.enrolled_at) <= cutoff,
        )
        lock_members(session, inactive)
        if report:
            report_expired_points(session, now, inactive)
        session.execute(
            ledger.insert_entries(
                select(
                    Member.id,
                    literal("expire"),
                    -Member.points_available,
                    literal(AVAILABLE),
                    literal("inactivity"),
                    literal(cutoff.date().isoformat()),
                    literal(detail, JSONType),
                    literal(now, LedgerEntry.occurred_at.type),
                    literal(now, LedgerEntry.created_at.type),
                ).where(inactive),
            )  # fmt: skip
        )
        result = session.execute(
            update(Member).where(inactive).values(points_available=0),
            execution_options={"synchronize_session": False},
        )
        changed += rowcount(result)
    return changed


def warn_expiring_points(
    session: Session, now: datetime, inactive_days: int, warning_days: int, low: int, high: int
) -> int:
    """`points.expiring` for members whose points expire within `warning_days` of `now`: one
    INSERT ... SELECT for the range, at most once per member and expiry (the expiry is keyed by
    the activity it counts from, so new activity and a later expiry warn again)."""
    dialect = session.get_bind().dialect.name
    activity = func.coalesce(Member.last_activity_at, Member.enrolled_at)
    cutoff = now - timedelta(days=inactive_days)
    key = literal("points.expiring:") + cast(Member.id, String) + literal(":")
    rows = select(
        webhooks.json_object(
            dialect,
            customer_id=Member.customer_id,
            points=Member.points_available,
            expires_at=webhooks.iso_sql(dialect, activity, inactive_days),
            last_activity_at=webhooks.iso_sql(dialect, activity),
        ).label("data"),
        (key + webhooks.epoch_sql(dialect, activity)).label("dedupe_key"),
    ).where(
        Member.id.between(low, high),
        Member.points_available > 0,
        Member.customer_id.is_not(None),  # erased members are not written to
        activity > cutoff,  # not expired yet (the job's expiry step takes those)
        activity <= cutoff + timedelta(days=warning_days),
    )
    emails = rows.with_only_columns(
        Member.id.label("member_id"),
        webhooks.json_object(
            dialect,
            points=Member.points_available,
            expires_at=webhooks.iso_sql(dialect, activity, inactive_days),
        ).label("data"),
        (literal("points_expiring:") + cast(Member.id, String) + literal(":")
         + webhooks.epoch_sql(dialect, activity)).label("dedupe_key"),
    )  # fmt: skip
    email.queue_selected(session, "points_expiring", emails, at=now)
    return webhooks.emit_selected(session, "points.expiring", rows, at=now)


def report_expired_points(session: Session, now: datetime, inactive) -> int:
    """`points.expired` for the members whose points the expiry step is about to take (the
    rows of `inactive`, locked): one INSERT ... SELECT, once per member and expiry."""
    dialect = session.get_bind().dialect.name
    activity = func.coalesce(Member.last_activity_at, Member.enrolled_at)
    key = literal("points.expired:") + cast(Member.id, String) + literal(":")
    rows = select(
        webhooks.json_object(
            dialect,
            customer_id=Member.customer_id,
            points=Member.points_available,
            points_available=literal(0),
            last_activity_at=webhooks.iso_sql(dialect, activity),
            expired_at=literal(webhooks.iso(now)),
        ).label("data"),
        (key + webhooks.epoch_sql(dialect, activity)).label("dedupe_key"),
    ).where(inactive, Member.customer_id.is_not(None))
    return webhooks.emit_selected(session, "points.expired", rows, at=now)


def purge_idempotency_keys(session: Session, now: datetime, batch_size: int, progress=None):
    from loyalty.idempotency import purge_expired

    removed = purge_expired(session, now, current_app.config["IDEMPOTENCY_KEY_TTL_HOURS"])
    session.commit()
    return removed


def purge_rate_limits(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """Forget rate-limit hits kept in the database that no longer count."""
    from loyalty.ratelimit.storage import purge_expired

    removed = purge_expired(session, now.timestamp())
    session.commit()
    return removed


def refresh_reports(session: Session, now: datetime, batch_size: int, progress=None) -> int:
    """The reports' aggregates for the customers and members whose orders changed
    (`loyalty.reports.aggregates.refresh`), batch_size per transaction."""
    from loyalty.reports.aggregates import refresh

    return refresh(session, batch_size, progress=(lambda _count: progress(1)) if progress else None)
