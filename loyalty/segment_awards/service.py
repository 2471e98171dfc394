"""Bonus points for every member of an RFM segment, in the ledger, each member exactly once.

1. `preview`: how many members the segment holds now, and the points that makes.
2. `create`: the award and its recipients, frozen in one INSERT ... SELECT from the segment's
   query (`loyalty.reports.service.segment_member_ids`, what the reports count), in the
   request's transaction: the members awarded are the ones counted, and a member who enters the
   segment later is not among them. The same idempotency key makes the award once.
3. `run`: the award in chunks of `batch_size` recipients by member id, one transaction each.
   A chunk first updates the award's row (on PostgreSQL that takes its row lock; on SQLite
   every transaction holds the write lock), so two processes running the same award take turns
   chunk by chunk, and each sees what the other committed. Then, set-based like the scheduled
   jobs (`loyalty.jobs`): lock the chunk's members, mark as skipped those erased since or whose
   balances the points would take past `MAX_RUNNING_TOTAL`, add the points to the others'
   balances, insert their ledger entries (kind "bonus", source ("segment_award", award id)),
   mark them awarded and count them on the award, with the chunk's last member id
   (`done_through`: every recipient up to it is done, the next chunk starts after it). A chunk
   that fails changes nothing; the next run starts at the first recipient still pending. A
   unique index on the ledger (one entry per award and member) refuses a second entry
   whatever happens.
"""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, and_, exists, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loyalty import ledger
from loyalty.audit import current_actor, record_change
from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.extensions import rowcount
from loyalty.jobs import lock_members
from loyalty.ledger import AVAILABLE
from loyalty.members.models import Member
from loyalty.paging import Page, page_by_id
from loyalty.reports import service as reports
from loyalty.reports.schemas import SegmentQuery
from loyalty.schemas import MAX_POINTS
from loyalty.segment_awards.models import (
    AWARDED,
    DONE,
    FAILED,
    RUNNING,
    SKIPPED,
    SOURCE,
    TO_AWARD,
    UNFINISHED,
    SegmentAward,
    SegmentAwardMember,
)
from loyalty.types import MAX_RUNNING_TOTAL, JSONType, UTCDateTime, utcnow

MAX_REASON = 500
_award = SegmentAward.__table__
_recipient = SegmentAwardMember.__table__


# --- checks, preview, creation -----------------------------------------------------------------


def check(segment: str, points: int, reason: str) -> str:
    """Refuse an unknown segment, points outside 1..MAX_POINTS, an empty reason; the reason
    as it is kept (trimmed)."""
    errors: dict[str, list[str]] = {}
    if segment not in reports.SEGMENTS:
        errors["segment"] = [f"Unknown segment; one of: {', '.join(reports.SEGMENTS)}."]
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= MAX_POINTS:
        errors["points"] = [f"A whole number of points from 1 to {MAX_POINTS:,}."]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Say why: members see it in their activity."]
    elif len(reason) > MAX_REASON:
        errors["reason"] = [f"At most {MAX_REASON} characters."]
    if errors:
        raise ValidationFailed("Nothing was awarded: " + " ".join(_first(errors)), errors=errors)
    return reason


def _first(errors: dict[str, list[str]]) -> list[str]:
    return [f"{name}: {messages[0]}" for name, messages in errors.items()]


def thresholds_at(session: Session, as_of: datetime) -> dict[str, Any]:
    """The segments' thresholds at `as_of` with the reports' defaults (`GET /v1/reports/segments`
    without parameters), the ones the segment pages show."""
    defaults = SegmentQuery().load({})
    return reports.segment_thresholds(
        session,
        as_of=as_of,
        active_days=defaults["active_days"],
        frequent_orders=defaults["frequent_orders"],
        high_value_top=defaults["high_value_top"],
        high_value_min=defaults["high_value_min"],
        low_aov_max=defaults["low_aov_max"],
    )


def preview(session: Session, segment: str, points: int, reason: str = "-") -> dict[str, Any]:
    """How many members the award would reach now, and the points it would give in all."""
    check(segment, points, reason)
    as_of = utcnow()
    query = reports.segment_member_ids(
        segment, as_of=as_of, thresholds=thresholds_at(session, as_of), session=session
    )
    members = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return {
        "segment": segment,
        "as_of": as_of,
        "members": members,
        "points_per_member": points,
        "points_total": members * points,
    }


def create(
    session: Session,
    segment: str,
    points: int,
    reason: str,
    *,
    key: str | None = None,
    actor: str | None = None,
    expected_members: int | None = None,
) -> tuple[SegmentAward, bool]:
    """The award and its recipients, frozen now (audited); `(award, False)` when `key` made one
    already (the same segment, points and reason; otherwise a 409). With `expected_members`
    (the count a preview showed), a segment that holds another number of members now is a 409
    and nothing is made: nobody awards numbers they have not seen."""
    reason = check(segment, points, reason)
    actor = actor if actor is not None else current_actor()
    if key is not None:
        existing = _by_key(session, key)
        if existing is not None:
            return _same(existing, segment, points, reason), False
    as_of = utcnow()
    thresholds = thresholds_at(session, as_of)
    award = SegmentAward(
        segment=segment,
        points=points,
        reason=reason,
        status="pending",
        as_of=as_of,
        thresholds={k: _plain(v) for k, v in thresholds.items() if k != "buyers"},
        idempotency_key=key,
        created_by=actor,
        created_at=as_of,
    )
    try:
        with session.begin_nested():
            session.add(award)
            session.flush()
    except IntegrityError:  # a concurrent request with the same key made it first
        existing = _by_key(session, key) if key is not None else None
        if existing is None:
            raise
        return _same(existing, segment, points, reason), False
    members = reports.segment_member_ids(
        segment, as_of=as_of, thresholds=thresholds, session=session
    ).subquery()
    session.execute(
        insert(_recipient).from_select(
            ["award_id", "member_id", "state"],
            select(literal(award.id), members.c.id, literal(TO_AWARD)),
        )
    )
    award.member_count = (
        session.scalar(select(func.count()).where(_recipient.c.award_id == award.id)) or 0
    )
    if expected_members is not None and award.member_count != expected_members:
        raise Conflict(
            f"The segment holds {award.member_count:,} members now, not the "
            f"{expected_members:,} previewed: nothing was awarded. Check the new preview.",
            errors={"expected_members": [f"The segment holds {award.member_count} now."]},
        )
    if award.member_count == 0:
        award.status, award.finished_at = DONE, as_of
    session.flush()
    record_change(
        session, "segment_award.create", "segment_award", award.id, None,
        {"segment": segment, "points": points, "reason": reason,
         "member_count": award.member_count, "points_total": award.member_count * points},
        actor=actor,
    )  # fmt: skip
    return award, True


def _plain(value: Any) -> Any:
    """A threshold as JSON holds it: PostgreSQL's sums are Decimals (of whole minor units)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def _by_key(session: Session, key: str) -> SegmentAward | None:
    return session.scalar(select(SegmentAward).where(SegmentAward.idempotency_key == key))


def _same(award: SegmentAward, segment: str, points: int, reason: str) -> SegmentAward:
    if (award.segment, award.points, award.reason) != (segment, points, reason):
        raise Conflict(
            f"This key made award {award.id} ({award.points} points to {award.segment}) already."
        )
    return award


def get(session: Session, award_id: int) -> SegmentAward:
    award = session.get(SegmentAward, award_id, populate_existing=True)
    if award is None:
        raise NotFound(f"No segment award {award_id}.")
    return award


def list_awards(session: Session, limit: int, cursor: str | None) -> Page:
    """The awards, newest first."""
    return page_by_id(session, select(SegmentAward), SegmentAward.id, limit, cursor)


def progress(award: SegmentAward) -> int:
    """Percent of the recipients done (100 for an award of nobody)."""
    if not award.member_count:
        return 100 if award.status == DONE else 0
    return award.members_done * 100 // award.member_count


def unfinished(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(SegmentAward.id)
            .where(SegmentAward.status.in_(UNFINISHED))
            .order_by(SegmentAward.id)
        )
    )


# --- awarding ----------------------------------------------------------------------------------


def run(
    session: Session,
    award_id: int,
    batch_size: int,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Award what is left of the award, one committed chunk at a time: the members awarded.

    A chunk that fails is rolled back and the award marked failed (with the error), then the
    error raised again; `run` again (or the `segment-awards` job) resumes it."""
    awarded = 0
    try:
        while True:
            done = _chunk(session, award_id, batch_size, now or utcnow())
            session.commit()
            if done is None:
                return awarded
            awarded += done
            if progress:
                progress(1)
    except Exception as error:
        session.rollback()
        _failed(session, award_id, error)
        raise


def _failed(session: Session, award_id: int, error: Exception) -> None:
    message = f"{type(error).__name__}: {error}"[:500]
    session.execute(
        update(_award)
        .where(_award.c.id == award_id, _award.c.status.in_(UNFINISHED))
        .values(status=FAILED, error=message)
    )
    session.commit()


def _chunk(session: Session, award_id: int, batch_size: int, now: datetime) -> int | None:
    """One chunk of the award in the session's transaction (the caller commits): the members
    it awarded, or None when nothing is left (the award is then done)."""
    a = _award.c
    started = session.execute(
        update(_award)
        .where(a.id == award_id, a.status.in_(UNFINISHED))
        .values(status=RUNNING, error=None, started_at=func.coalesce(a.started_at, now))
        .returning(a.points, a.reason, a.done_through)
    ).first()  # the award's row lock: whoever runs it too waits here for this chunk's end
    if started is None:  # done, or no such award
        return None
    points, reason, done_through = started
    r = _recipient.c
    first = (
        select(r.member_id)
        .where(r.award_id == award_id, r.member_id > done_through, r.state == TO_AWARD)
        .order_by(r.member_id)
        .limit(batch_size)
        .subquery()
    )
    low, high = session.execute(
        select(func.min(first.c.member_id), func.max(first.c.member_id))
    ).one()
    if low is None:
        session.execute(update(_award).where(a.id == award_id).values(status=DONE, finished_at=now))
        return None
    chunk = and_(r.award_id == award_id, r.member_id.between(low, high), r.state == TO_AWARD)
    lock_members(
        session, Member.id.between(low, high), exists().where(chunk, r.member_id == Member.id)
    )
    headroom = MAX_RUNNING_TOTAL - points
    ineligible = select(Member.id).where(
        Member.id.between(low, high),
        or_(
            Member.erased_at.is_not(None),
            Member.customer_id.is_(None),
            Member.points_available > headroom,
            Member.points_lifetime > headroom,
        ),
    )
    skipped = rowcount(
        session.execute(
            update(_recipient).where(chunk, r.member_id.in_(ineligible)).values(state=SKIPPED),
            execution_options={"synchronize_session": False},
        )
    )
    recipients = select(r.member_id).where(chunk)
    awarded = rowcount(
        session.execute(
            update(Member)
            .where(Member.id.in_(recipients))
            .values(
                points_available=Member.points_available + points,
                points_lifetime=Member.points_lifetime + points,
            ),
            execution_options={"synchronize_session": False},
        )
    )
    detail = {"reason": f"Bonus: {reason}", "segment_award": award_id}
    session.execute(
        ledger.insert_entries(
            select(
                r.member_id,
                literal("bonus"),
                literal(points),
                literal(AVAILABLE),
                literal(SOURCE),
                literal(str(award_id)),
                literal(detail, JSONType),
                literal(now, UTCDateTime()),
                literal(utcnow(), UTCDateTime()),
            ).where(chunk),
        )  # fmt: skip
    )
    marked = rowcount(
        session.execute(
            update(_recipient).where(chunk).values(state=AWARDED),
            execution_options={"synchronize_session": False},
        )
    )
    if marked != awarded:  # every recipient left in the chunk has a member row to credit
        raise RuntimeError(f"award {award_id}: {marked} recipients marked, {awarded} credited")
    session.execute(
        update(_award)
        .where(a.id == award_id)
        .values(
            members_done=a.members_done + awarded + skipped,
            members_awarded=a.members_awarded + awarded,
            members_skipped=a.members_skipped + skipped,
            points_awarded=a.points_awarded + literal(awarded * points, BigInteger),
            done_through=high,
        )
    )
    return awarded


def award_segments(
    session: Session, now: datetime, batch_size: int, progress: Callable[[int], None] | None = None
) -> int:
    """The `segment-awards` job: every unfinished award (pending, interrupted, failed) run to
    its end, oldest first; the members awarded."""
    awarded = 0
    for award_id in unfinished(session):
        session.commit()
        awarded += run(session, award_id, batch_size, now, progress)
    return awarded
