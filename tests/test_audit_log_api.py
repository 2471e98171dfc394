"""`GET /v1/audit-log`: admin only, newest first, cursor-paged, filtered, strict about its query."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from loyalty.audit import AuditLog
from tests.rewards.helpers import make_member

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def add(session, actor, action, object_type, object_id, *, days=0, before=None, after=None):
    row = AuditLog(
        actor=actor, action=action, object_type=object_type, object_id=str(object_id),
        before=before, after=after, created_at=T0 + timedelta(days=days),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


@pytest.fixture
def log(session, admin):
    session.execute(delete(AuditLog))  # only these (the test's API keys were audited too)
    rows = [
        add(session, "admin:1", "referral.approve", "referral", 7, days=0,
            before={"status": "review"}, after={"status": "claimed"}),
        add(session, "api_key:2", "program.update", "program", 1, days=1,
            before={"pending_days": 30}, after={"pending_days": 14}),
        add(session, "admin:1", "referral.reject", "referral", 8, days=2,
            before={"status": "review"}, after={"status": "rejected"}),
        add(session, "cli", "member.adjust", "member", 3, days=3, after={"points": 5}),
        add(session, "admin:2", "referral.approve", "referral", 9, days=4),
    ]  # fmt: skip
    session.commit()
    return rows


def get(client, admin, **query):
    response = client.get("/v1/audit-log", query_string=query, headers=admin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_entries_are_newest_first_with_who_what_when_and_before_after(client, admin, log):
    body = get(client, admin)
    assert [e["id"] for e in body["items"]] == [r.id for r in reversed(log)]
    assert body["next_cursor"] is None
    program = body["items"][3]
    assert program == {
        "id": log[1].id,
        "at": "2026-11-02T12:00:00+00:00",
        "actor": "api_key:2",
        "action": "program.update",
        "target": {"type": "program", "id": "1"},
        "before": {"pending_days": 30},
        "after": {"pending_days": 14},
    }
    assert body["items"][1]["before"] is None


def test_pages_follow_the_cursor_to_the_end_without_repeats(client, admin, log):
    seen, cursor = [], None
    while True:
        body = get(client, admin, limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(body["items"]) <= 2
        seen += [e["id"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [r.id for r in reversed(log)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"actor": "admin:1"}, [2, 0]),
        ({"action": "referral.approve"}, [4, 0]),
        ({"target": "referral"}, [4, 2, 0]),
        ({"target": "referral:8"}, [2]),
        ({"target": "member:3"}, [3]),
        ({"from": "2026-11-02"}, [4, 3, 2, 1]),
        ({"to": "2026-11-03T12:00:00Z"}, [1, 0]),
        ({"from": "2026-11-02T12:00:00+00:00", "to": "2026-11-04"}, [2, 1]),
        ({"actor": "admin:1", "action": "referral.approve"}, [0]),
        ({"actor": "nobody"}, []),
    ],
)
def test_filters_combine(client, admin, log, query, expected):
    body = get(client, admin, **query)
    assert [e["id"] for e in body["items"]] == [log[i].id for i in expected]


def test_a_filtered_list_pages_within_the_filter(client, admin, log):
    first = get(client, admin, target="referral", limit=2)
    assert [e["id"] for e in first["items"]] == [log[4].id, log[2].id]
    rest = get(client, admin, target="referral", limit=2, cursor=first["next_cursor"])
    assert [e["id"] for e in rest["items"]] == [log[0].id]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-11-01T10:00:00"}, "from"),  # no offset
        ({"from": "2026-11-03", "to": "2026-11-02"}, "to"),
        ({"target": "Referral 7"}, "target"),
        ({"target": "referral:"}, "target"),
        ({"actor": "x" * 65}, "actor"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_a_bad_filter_is_a_validation_problem(client, admin, log, query, field):
    response = client.get("/v1/audit-log", query_string=query, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == "validation-error"
    assert field in str(problem.get("errors"))


def test_only_admin_keys_read_the_log(client, keys, log):
    assert client.get("/v1/audit-log").status_code == 401
    assert client.get("/v1/audit-log", headers=keys["storefront"]).status_code == 403
    assert client.get("/v1/audit-log", headers=keys["reports"]).status_code == 403
    # Refused before the query is looked at.
    assert client.get("/v1/audit-log?colour=red", headers=keys["storefront"]).status_code == 403


def test_changes_made_through_the_api_appear_with_their_caller(client, admin, session):
    response = client.put("/v1/program", json={"pending_days": 7}, headers=admin)
    assert response.status_code == 200
    [entry] = get(client, admin, action="program.update")["items"]
    assert entry["actor"].startswith("api_key:")
    assert entry["after"]["pending_days"] == 7
    assert entry["before"]["pending_days"] != 7


def test_an_erased_member_is_not_named_in_the_log(client, admin, session):
    make_member(client, admin, "c_gone", email="gone@example.com")
    assert client.post("/v1/members/c_gone/adjustments", json={"points": 5, "reason": "hi"},
                       headers=admin).status_code == 201  # fmt: skip
    session.add(AuditLog(actor="cli", action="member.note", object_type="member", object_id="x",
                         after={"email": "gone@example.com", "customer_id": "c_gone"}))  # fmt: skip
    session.commit()
    assert client.delete("/v1/members/c_gone", headers=admin).status_code == 204
    text = str(get(client, admin, limit=200)["items"])
    assert "gone@example.com" not in text and "c_gone" not in text
    assert session.scalar(select(AuditLog.id).where(AuditLog.action == "member.note"))
