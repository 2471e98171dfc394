"""`ledger.post_entries`: the members the session holds get the balances the statements left,
as loaded values (nothing to flush), as `post_entry` gives them."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, select

from loyalty import ledger
from loyalty.members.models import Member

WHEN = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


def _entry(member_id: int, points: int, **extra) -> dict:
    return {"member_id": member_id, "kind": "earn", "points": points, "source_type": "test",
            "source_id": f"p{member_id}", "occurred_at": WHEN, **extra}  # fmt: skip


def test_the_held_members_get_the_balances_as_loaded(session):
    members = [Member(customer_id=f"pe{i}", email=f"pe{i}@example.com") for i in range(3)]
    session.add_all(members)
    session.flush()
    first, second, third = members
    session.expire(second, ["points_available"])  # expired: the posted value loads it
    entries = ledger.post_entries(
        session,
        [_entry(first.id, 40, activity_at=WHEN), _entry(second.id, 7),
         _entry(third.id, 5, state=ledger.PENDING, matures_at=WHEN + timedelta(days=9))],
    )  # fmt: skip
    assert [entry.points for entry in entries] == [40, 7, 5]
    assert (first.points_available, first.points_lifetime, first.points_pending) == (40, 40, 0)
    assert first.last_activity_at == WHEN
    assert (second.points_available, second.points_lifetime) == (7, 7)
    assert (third.points_available, third.points_pending, third.points_lifetime) == (0, 5, 5)
    for member in members:
        state = inspect(member)
        assert not state.modified and not state.expired_attributes
        assert member not in session.dirty
    stored = session.execute(
        select(Member.points_available, Member.points_pending, Member.points_lifetime)
        .where(Member.id.in_([m.id for m in members]))
        .order_by(Member.id)
    ).all()
    assert [tuple(row) for row in stored] == [(40, 0, 40), (7, 0, 7), (0, 5, 5)]
