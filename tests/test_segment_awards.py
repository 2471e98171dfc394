"""Bonus points for a segment: frozen recipients, one ledger entry each, set-based chunks,
resumable, once per idempotency key, and the API that makes and follows them."""

import threading
import time

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from loyalty import ledger
from loyalty.audit import AuditLog
from loyalty.errors import Conflict, ValidationFailed
from loyalty.extensions import db
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.members.models import Member
from loyalty.schemas import MAX_POINTS
from loyalty.segment_awards import service
from loyalty.segment_awards.models import SegmentAward, SegmentAwardMember
from loyalty.types import MAX_RUNNING_TOTAL, utcnow
from tests import factories as f


def add_members(session, count, prefix="sub"):
    """`count` members without orders (the segment "new_subscribers"); their ids."""
    now = utcnow()
    rows = [
        {"customer_id": f"{prefix}_{i}", "email": f"{prefix}_{i}@example.com", "enrolled_at": now}
        for i in range(count)
    ]
    session.execute(insert(Member), rows)
    session.flush()
    return list(
        session.scalars(
            select(Member.id).where(Member.customer_id.like(f"{prefix}\\_%", escape="\\"))
        )
    )


def entries_of(session, award_id):
    return session.execute(
        select(LedgerEntry.member_id, LedgerEntry.kind, LedgerEntry.points, LedgerEntry.state)
        .where(LedgerEntry.source_type == "segment_award", LedgerEntry.source_id == str(award_id))
        .order_by(LedgerEntry.member_id)
    ).all()


def balances(session, member_ids):
    return {
        row.id: (row.points_available, row.points_pending, row.points_lifetime)
        for row in session.execute(
            select(
                Member.id, Member.points_available, Member.points_pending, Member.points_lifetime
            ).where(Member.id.in_(member_ids))
        )
    }


def test_award_gives_each_member_of_the_segment_one_entry(client, session, storefront):
    ids = add_members(session, 5)
    client.post("/v1/events", json=f.paid("buyer"), headers=storefront)  # another segment
    buyer = session.scalar(select(Member.id).where(Member.customer_id == "buyer"))
    session.commit()

    shown = service.preview(session, "new_subscribers", 100)
    assert (shown["members"], shown["points_total"]) == (5, 500)
    award, created = service.create(session, "new_subscribers", 100, " Thank you ", actor="t")
    session.commit()
    assert created and award.member_count == 5 and award.status == "pending"
    assert award.reason == "Thank you"

    assert service.run(session, award.id, batch_size=2) == 5
    award = service.get(session, award.id)
    assert (award.status, award.members_done, award.members_awarded) == ("done", 5, 5)
    assert award.points_awarded == 500 and service.progress(award) == 100
    assert award.finished_at is not None
    assert entries_of(session, award.id) == [(i, "bonus", 100, "available") for i in sorted(ids)]
    assert balances(session, ids) == {i: (100, 0, 100) for i in ids}
    assert balances(session, [buyer])[buyer][0] == 0  # not in the segment
    detail = session.scalar(select(LedgerEntry.detail).where(LedgerEntry.member_id == ids[0]))
    assert detail["reason"] == "Bonus: Thank you"
    assert find_drift(session) == []
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "segment_award.create"))
    (row,) = list(audit)
    assert (row.actor, row.object_id) == ("t", str(award.id))
    assert row.after["member_count"] == 5 and row.after["points_total"] == 500

    assert service.run(session, award.id, batch_size=2) == 0  # done: runs again for nothing
    assert len(entries_of(session, award.id)) == 5


def test_recipients_are_frozen_when_the_award_is_made(session):
    ids = add_members(session, 3)
    award, _ = service.create(session, "new_subscribers", 10, "Welcome", actor="t")
    session.commit()
    late = add_members(session, 2, prefix="late")  # enter the segment after the award
    session.execute(update(Member).where(Member.id == ids[0]).values(erased_at=utcnow()))
    session.commit()

    assert service.run(session, award.id, batch_size=100) == 2
    award = service.get(session, award.id)
    assert (award.members_done, award.members_awarded, award.members_skipped) == (3, 2, 1)
    assert [row.member_id for row in entries_of(session, award.id)] == sorted(ids[1:])
    assert balances(session, late) == {i: (0, 0, 0) for i in late}
    states = dict(
        session.execute(
            select(SegmentAwardMember.member_id, SegmentAwardMember.state).where(
                SegmentAwardMember.award_id == award.id
            )
        ).all()
    )
    assert states == {ids[0]: "skipped", ids[1]: "awarded", ids[2]: "awarded"}
    assert find_drift(session) == []


def test_a_balance_at_the_limit_is_skipped_not_overflowed(session):
    ids = add_members(session, 2)
    ledger.post_entry(
        session, ids[0], "adjust", MAX_RUNNING_TOTAL - 50, source_type="admin", source_id="t"
    )
    award, _ = service.create(session, "new_subscribers", 100, "Bonus", actor="t")
    session.commit()
    assert service.run(session, award.id, batch_size=10) == 1
    award = service.get(session, award.id)
    assert (award.members_awarded, award.members_skipped, award.status) == (1, 1, "done")
    assert balances(session, ids) == {
        ids[0]: (MAX_RUNNING_TOTAL - 50, 0, MAX_RUNNING_TOTAL - 50),
        ids[1]: (100, 0, 100),
    }
    assert find_drift(session) == []


def test_the_same_key_makes_the_award_once(session):
    add_members(session, 4)
    first, created = service.create(session, "new_subscribers", 25, "Spring", key="k1", actor="t")
    again, created_again = service.create(
        session, "new_subscribers", 25, "Spring", key="k1", actor="t"
    )
    assert created and not created_again and again.id == first.id
    assert session.scalar(select(func.count()).select_from(SegmentAward)) == 1
    assert session.scalar(select(func.count()).select_from(SegmentAwardMember)) == 4
    with pytest.raises(Conflict):
        service.create(session, "new_subscribers", 30, "Spring", key="k1", actor="t")


@pytest.mark.parametrize(
    ("segment", "points", "reason", "field"),
    [
        ("nobody", 10, "x", "segment"),
        ("new_subscribers", 0, "x", "points"),
        ("new_subscribers", -5, "x", "points"),
        ("new_subscribers", MAX_POINTS + 1, "x", "points"),
        ("new_subscribers", 10, "   ", "reason"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(session, segment, points, reason, field):
    add_members(session, 2)
    with pytest.raises(ValidationFailed) as refused:
        service.create(session, segment, points, reason, actor="t")
    assert field in refused.value.errors
    assert session.scalar(select(func.count()).select_from(SegmentAward)) == 0


def test_an_award_that_fails_midway_resumes_where_it_stopped(session, monkeypatch):
    ids = add_members(session, 7)
    award, _ = service.create(session, "new_subscribers", 5, "Resume", actor="t")
    session.commit()
    real_chunk, calls = service._chunk, []

    def failing_second_chunk(*args):
        calls.append(1)
        result = real_chunk(*args)  # the chunk's statements ran; its commit never comes
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        return result

    monkeypatch.setattr(service, "_chunk", failing_second_chunk)
    with pytest.raises(RuntimeError):
        service.run(session, award.id, batch_size=3)
    award = service.get(session, award.id)
    assert (award.status, award.members_done) == ("failed", 3)
    assert "connection lost" in award.error
    assert len(entries_of(session, award.id)) == 3
    assert find_drift(session) == []

    monkeypatch.setattr(service, "_chunk", real_chunk)
    assert service.award_segments(session, utcnow(), 3) == 4  # the job resumes failed awards
    award = service.get(session, award.id)
    assert (award.status, award.members_done, award.error) == ("done", 7, None)
    assert [row.member_id for row in entries_of(session, award.id)] == sorted(ids)
    assert balances(session, ids) == {i: (5, 0, 5) for i in ids}
    assert find_drift(session) == []


def test_the_ledger_refuses_a_second_entry_of_an_award_for_a_member(session):
    (member,) = add_members(session, 1)
    values = {
        "member_id": member,
        "kind": "bonus",
        "points": 1,
        "state": "available",
        "source_type": "segment_award",
        "source_id": "99",
        "detail": {},
        "occurred_at": utcnow(),
        "created_at": utcnow(),
    }
    session.execute(insert(LedgerEntry).values(**values))
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(insert(LedgerEntry).values(**values))


def test_the_job_and_verify_ledger(session, runner):
    ids = add_members(session, 3)
    award, _ = service.create(session, "new_subscribers", 7, "Job", actor="t")
    session.commit()
    output = f.run_job(runner, "segment-awards")
    assert "segment-awards: 3 changed" in output
    assert balances(session, ids) == {i: (7, 0, 7) for i in ids}
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0 and "ledger ok" in result.output


# --- the API ------------------------------------------------------------------------------------


def post(client, headers, body, key="key-1"):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post("/v1/segment-awards", json=body, headers={**headers, **extra})


def test_api_makes_follows_and_lists_awards(client, session, admin, runner):
    ids = add_members(session, 3)
    session.commit()
    body = {"segment": "new_subscribers", "points": 40, "reason": "API bonus"}
    answer = post(client, admin, body)
    assert answer.status_code == 202, answer.get_json()
    made = answer.get_json()
    assert (made["status"], made["member_count"], made["points_total"]) == ("pending", 3, 120)
    assert made["progress"] == 0

    replay = post(client, admin, body)  # the same key: the same award, nothing new
    assert replay.status_code == 202 and replay.get_json()["id"] == made["id"]
    assert session.scalar(select(func.count()).select_from(SegmentAward)) == 1

    f.run_job(runner, "segment-awards")
    shown = client.get(f"/v1/segment-awards/{made['id']}", headers=admin).get_json()
    assert (shown["status"], shown["members_done"], shown["progress"]) == ("done", 3, 100)
    assert shown["points_awarded"] == 120 and shown["finished_at"]
    assert balances(session, ids) == {i: (40, 0, 40) for i in ids}
    activity = client.get("/v1/members/sub_0/activity", headers=admin).get_json()["items"]
    assert [(e["kind"], e["points"], e["detail"]["reason"]) for e in activity] == [
        ("bonus", 40, "Bonus: API bonus")
    ]

    second = post(client, admin, {**body, "points": 1}, key="key-2").get_json()
    page = client.get("/v1/segment-awards?limit=1", headers=admin).get_json()
    assert [a["id"] for a in page["items"]] == [second["id"]] and page["next_cursor"]
    rest = client.get(
        f"/v1/segment-awards?limit=1&cursor={page['next_cursor']}", headers=admin
    ).get_json()
    assert [a["id"] for a in rest["items"]] == [made["id"]] and rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("body", "key", "field"),
    [
        ({"segment": "vips", "points": 10, "reason": "x"}, "k", "segment"),
        ({"segment": "new_subscribers", "points": 0, "reason": "x"}, "k", "points"),
        ({"segment": "new_subscribers", "points": MAX_POINTS + 1, "reason": "x"}, "k", "points"),
        ({"segment": "new_subscribers", "points": 10, "reason": ""}, "k", "reason"),
        ({"segment": "new_subscribers", "points": 10, "reason": "   "}, "k", "reason"),
        ({"segment": "new_subscribers", "points": 10}, "k", "reason"),
        ({"segment": "new_subscribers", "points": 10, "reason": "x", "extra": 1}, "k", "extra"),
        ({"segment": "new_subscribers", "points": 10, "reason": "x"}, None, "Idempotency-Key"),
    ],
)
def test_api_refuses_bad_input_and_changes_nothing(client, session, admin, body, key, field):
    add_members(session, 2)
    session.commit()
    answer = post(client, admin, body, key=key)
    assert answer.status_code == 422
    assert answer.content_type == "application/problem+json"
    assert field in str(answer.get_json().get("errors"))
    assert session.scalar(select(func.count()).select_from(SegmentAward)) == 0
    assert session.scalar(select(func.count()).select_from(SegmentAwardMember)) == 0


def test_api_refuses_an_award_whose_segment_is_not_the_count_expected(client, session, admin):
    add_members(session, 3)
    session.commit()
    body = {"segment": "new_subscribers", "points": 5, "reason": "x", "expected_members": 2}
    answer = post(client, admin, body)
    assert answer.status_code == 409 and answer.content_type == "application/problem+json"
    assert "holds 3 members now, not the 2 previewed" in answer.get_json()["detail"]
    assert session.scalar(select(func.count()).select_from(SegmentAward)) == 0
    assert session.scalar(select(func.count()).select_from(SegmentAwardMember)) == 0
    assert post(client, admin, {**body, "expected_members": 3}, key="k2").status_code == 202


def test_api_needs_the_admin_scope(client, keys):
    body = {"segment": "new_subscribers", "points": 10, "reason": "x"}
    for scope in ("storefront", "reports"):
        assert post(client, keys[scope], body).status_code == 403
        assert client.get("/v1/segment-awards", headers=keys[scope]).status_code == 403
    assert client.get("/v1/segment-awards/1", headers=keys["admin"]).status_code == 404


# --- concurrency (PostgreSQL, real commits) -------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.concurrency
def test_two_processes_running_one_award_award_each_member_once(pg_app):
    with pg_app.app_context():
        ids = add_members(db.session, 300)
        award, _ = service.create(db.session, "new_subscribers", 3, "Race", actor="t")
        db.session.commit()
        award_id = award.id
    start, results, errors = threading.Barrier(3), [], []

    def worker():
        with pg_app.app_context():
            try:
                start.wait()
                results.append(service.run(db.session, award_id, batch_size=20))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(results) == 300  # what each run awarded: together, every member once
    with pg_app.app_context():
        award = service.get(db.session, award_id)
        assert (award.status, award.members_done, award.members_awarded) == ("done", 300, 300)
        per_member = db.session.execute(
            select(LedgerEntry.member_id, func.count())
            .where(LedgerEntry.source_type == "segment_award")
            .group_by(LedgerEntry.member_id)
        ).all()
        assert sorted(per_member) == [(i, 1) for i in sorted(ids)]
        assert balances(db.session, ids) == {i: (3, 0, 3) for i in ids}
        assert find_drift(db.session) == []


@pytest.mark.postgres
@pytest.mark.concurrency
def test_the_same_key_sent_at_once_twice_makes_one_award(pg_app):
    """The second request's INSERT waits on the first's uncommitted award (same key), then
    finds it once that commits: one award, both answers name it."""
    with pg_app.app_context():
        add_members(db.session, 50)
        db.session.commit()
    first_made, commit_first, made, errors = threading.Event(), threading.Event(), [], []

    def request(first: bool):
        with pg_app.app_context():
            try:
                if not first:
                    first_made.wait(10)
                award, created = service.create(
                    db.session, "new_subscribers", 8, "Twice", key="console:admin:1:k", actor="t"
                )
                if first:
                    first_made.set()
                    commit_first.wait(10)
                db.session.commit()
                made.append((award.id, created))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=request, args=(first,)) for first in (True, False)]
    for thread in threads:
        thread.start()
    first_made.wait(10)
    time.sleep(0.5)  # the second is waiting on the key by now
    assert made == []
    commit_first.set()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len({award_id for award_id, _ in made}) == 1
    assert sorted(created for _, created in made) == [False, True]
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SegmentAward)) == 1
        assert db.session.scalar(select(func.count()).select_from(SegmentAwardMember)) == 50
