"""Members over HTTP: enrolment, the member view, activity, adjustments, erasure."""

from tests import factories as f


def enroll(client, headers, customer_id="c_1", email="ana@example.com", **extra):
    return client.post(
        "/v1/members", json={"id": customer_id, "email": email, **extra}, headers=headers
    )


def test_enroll_then_same_again_is_200_and_other_email_is_409(client, storefront):
    created = enroll(client, storefront, name="Ana", birthday="02-29")
    assert created.status_code == 201
    body = created.get_json()
    assert body["id"] == "c_1" and body["name"] == "Ana" and body["birthday"] == "02-29"
    assert body["points"] == {"available": 0, "pending": 0, "lifetime_earned": 0}
    assert body["tier"]["name"] == "Member"
    again = enroll(client, storefront, email="ANA@example.com")
    assert again.status_code == 200
    assert again.get_json()["enrolled_at"] == body["enrolled_at"]
    other = enroll(client, storefront, email="someone@example.com")
    assert other.status_code == 409 and other.get_json()["type"] == "conflict"


def test_bad_birthday_is_refused(client, storefront):
    assert enroll(client, storefront, birthday="02-30").status_code == 422
    assert enroll(client, storefront, birthday="1990-02-01").status_code == 422


def test_activity_is_newest_first_and_paginated(client, admin):
    enroll(client, admin)
    for points in range(1, 6):
        body = {"points": points, "reason": f"gift {points}"}
        assert (
            client.post("/v1/members/c_1/adjustments", json=body, headers=admin).status_code == 201
        )
    page = client.get("/v1/members/c_1/activity?limit=2", headers=admin).get_json()
    assert [e["points"] for e in page["items"]] == [5, 4]
    assert page["items"][0]["source"]["type"] == "admin"
    assert page["items"][0]["detail"] == {"reason": "gift 5"}
    rest = client.get(
        f"/v1/members/c_1/activity?limit=2&cursor={page['next_cursor']}", headers=admin
    ).get_json()
    assert [e["points"] for e in rest["items"]] == [3, 2]
    last = client.get(
        f"/v1/members/c_1/activity?limit=2&cursor={rest['next_cursor']}", headers=admin
    ).get_json()
    assert [e["points"] for e in last["items"]] == [1] and last["next_cursor"] is None
    assert client.get("/v1/members/c_1/activity?limit=201", headers=admin).status_code == 422
    assert client.get("/v1/members/c_1/activity?cursor=@@", headers=admin).status_code == 422


def test_negative_adjustment_cannot_overdraw(client, admin):
    enroll(client, admin)
    client.post("/v1/members/c_1/adjustments", json={"points": 30, "reason": "a"}, headers=admin)
    over = client.post(
        "/v1/members/c_1/adjustments", json={"points": -31, "reason": "b"}, headers=admin
    )
    assert over.status_code == 422 and over.get_json()["type"] == "insufficient-points"
    ok = client.post(
        "/v1/members/c_1/adjustments", json={"points": -30, "reason": "c"}, headers=admin
    )
    assert ok.status_code == 201 and ok.get_json()["kind"] == "adjust"
    member = client.get("/v1/members/c_1", headers=admin).get_json()
    assert member["points"] == {"available": 0, "pending": 0, "lifetime_earned": 0}


def test_erased_member_is_404_everywhere_and_ledger_still_adds_up(client, runner, admin):
    client.post("/v1/events", json=f.paid("c_gone", email="gone@example.com"), headers=admin)
    assert client.delete("/v1/members/c_gone", headers=admin).status_code == 204
    assert client.get("/v1/members/c_gone", headers=admin).status_code == 404
    assert client.get("/v1/members/c_gone/activity", headers=admin).status_code == 404
    assert client.delete("/v1/members/c_gone", headers=admin).status_code == 404
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0
    from sqlalchemy import select

    from loyalty.extensions import db
    from loyalty.members.models import Member
    from loyalty.orders.models import Order

    erased = db.session.scalars(select(Member).where(Member.erased_at.is_not(None))).one()
    assert (erased.customer_id, erased.email, erased.name) == (None, None, None)
    assert erased.points_pending == 50  # the books are kept, anonymously
    order = db.session.scalars(select(Order).where(Order.member_id == erased.id)).one()
    assert order.customer_id is None and order.email_normalized is None


def test_auto_enroll_off_records_the_order_without_points(client, admin):
    client.put("/v1/program", json={"auto_enroll": False}, headers=admin)
    response = client.post("/v1/events", json=f.paid("c_guest"), headers=admin)
    assert response.status_code == 200
    assert response.get_json()["member"] is None and response.get_json()["effects"] == []
    assert client.get("/v1/members/c_guest", headers=admin).status_code == 404


def test_idempotency_key_replays_and_refuses_another_body(client, admin):
    enroll(client, admin)
    headers = {**admin, "Idempotency-Key": "k-1"}
    body = {"points": 10, "reason": "once"}
    first = client.post("/v1/members/c_1/adjustments", json=body, headers=headers)
    again = client.post("/v1/members/c_1/adjustments", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post(
        "/v1/members/c_1/adjustments", json={"points": 11, "reason": "x"}, headers=headers
    )
    assert other.status_code == 422 and other.get_json()["type"] == "idempotency-conflict"
    member = client.get("/v1/members/c_1", headers=admin).get_json()
    assert member["points"]["available"] == 10


def test_a_failed_request_with_a_key_can_be_retried(client, admin):
    enroll(client, admin)
    headers = {**admin, "Idempotency-Key": "k-2"}
    body = {"points": -5, "reason": "too early"}
    failed = client.post("/v1/members/c_1/adjustments", json=body, headers=headers)
    assert failed.status_code == 422
    client.post("/v1/members/c_1/adjustments", json={"points": 5, "reason": "a"}, headers=admin)
    retried = client.post("/v1/members/c_1/adjustments", json=body, headers=headers)
    assert retried.status_code == 201


def test_program_update_is_audited(client, admin):
    from sqlalchemy import select

    from loyalty.audit import AuditLog
    from loyalty.extensions import db

    response = client.put("/v1/program", json={"pending_days": 14}, headers=admin)
    assert response.status_code == 200 and response.get_json()["pending_days"] == 14
    log = db.session.scalars(select(AuditLog).where(AuditLog.action == "program.update")).one()
    assert log.before["pending_days"] == 30 and log.after["pending_days"] == 14
    assert log.actor.startswith("api_key:")
