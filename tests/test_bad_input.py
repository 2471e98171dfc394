"""Bad input gets a clear problem+json error and changes nothing."""

import pytest
from sqlalchemy import func, select

from loyalty import models
from loyalty.extensions import db
from tests import factories as f

TABLES = [
    models.Member, models.LedgerEntry, models.Order, models.OrderRefund, models.ProcessedEvent,
    models.AuditLog, models.IdempotencyRecord,
]  # fmt: skip


def row_counts():
    return {t.__tablename__: db.session.scalar(select(func.count()).select_from(t)) for t in TABLES}


def with_order(**changes):
    event = f.paid("c_bad", order_id="o_bad", event_id="e_bad")
    event["order"].update(changes)
    return event


def with_line(**changes):
    event = f.paid("c_bad", order_id="o_bad", event_id="e_bad")
    event["order"]["lines"][0].update(changes)
    return event


BAD_EVENTS = {
    "unknown top-level field": {**f.paid("c_bad"), "surprise": 1},
    "unknown order field": with_order(coupon="X"),
    "unknown line field": with_line(color="red"),
    "quantity as string": with_line(quantity="2"),
    "price as float": with_line(unit_price=10.5),
    "negative price": with_line(unit_price=-1),
    "huge price": with_line(unit_price=100_000_000_001),
    "zero quantity": with_line(quantity=0),
    "huge quantity": with_line(quantity=1_000_001),
    "discount above line": with_line(discount=999_999),
    "gift_card as string": with_line(gift_card="true"),
    "long id": with_order(id="x" * 129),
    "no lines": with_order(lines=[]),
    "bad currency code": with_order(currency="usd"),
    "unknown type": {**f.paid("c_bad"), "type": "order.shipped"},
    "future occurred_at": {**f.paid("c_bad"), "occurred_at": "2999-01-01T00:00:00Z"},
    "naive occurred_at": {**f.paid("c_bad"), "occurred_at": "2026-01-01T00:00:00"},
    "refund on paid": {**f.paid("c_bad"), "refund": {"id": "r", "amount": 1}},
}


@pytest.mark.parametrize("case", list(BAD_EVENTS))
def test_bad_events_are_validation_errors_and_change_nothing(client, storefront, case):
    before = row_counts()
    response = client.post("/v1/events", json=BAD_EVENTS[case], headers=storefront)
    assert response.status_code == 422, response.get_json()
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "validation-error"
    assert body["status"] == 422 and body["title"]
    assert body["errors"]
    assert row_counts() == before


def test_other_currency_is_currency_mismatch_and_changes_nothing(client, storefront):
    before = row_counts()
    response = client.post("/v1/events", json=f.paid("c_bad", currency="EUR"), headers=storefront)
    assert response.status_code == 422
    assert response.get_json()["type"] == "currency-mismatch"
    assert row_counts() == before


def test_malformed_json_is_a_validation_error(client, admin):
    before = row_counts()
    response = client.post(
        "/v1/members", data='{"id": "x",', headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.get_json()["type"] == "validation-error"
    assert row_counts() == before


@pytest.mark.parametrize(
    "headers, status, slug",
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer lk_not-a-real-key"}, 401, "unauthorized"),
        ({"Authorization": "Basic abc"}, 401, "unauthorized"),
        ({"Authorization": "Bearer forged.widget.token"}, 401, "unauthorized"),
    ],
)
def test_missing_or_invalid_credentials_are_401_before_the_body_is_read(
    client, headers, status, slug
):
    before = row_counts()
    response = client.post("/v1/events", data="not even json", headers=headers)
    assert response.status_code == status
    assert response.get_json()["type"] == slug
    assert response.content_type == "application/problem+json"
    assert row_counts() == before


def test_wrong_scope_is_403(client, keys):
    before = row_counts()
    response = client.post("/v1/events", json=f.paid("c_bad"), headers=keys["reports"])
    assert response.status_code == 403
    assert response.get_json()["type"] == "forbidden"
    adjust = {"points": 5, "reason": "x"}
    response = client.post("/v1/members/c_bad/adjustments", json=adjust, headers=keys["storefront"])
    assert response.status_code == 403
    assert client.put("/v1/program", json={}, headers=keys["storefront"]).status_code == 403
    assert row_counts() == before


def test_widget_token_is_refused_outside_me(app, client, storefront):
    from loyalty.auth import issue_widget_token

    client.post("/v1/members", json={"id": "c_w", "email": "w@example.com"}, headers=storefront)
    member_pk = db.session.scalar(
        select(models.Member.id).where(models.Member.customer_id == "c_w")
    )
    with app.test_request_context():
        token = issue_widget_token(member_pk, "c_w")
    response = client.get("/v1/members/c_w", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"points": 0, "reason": "zero"},
        {"points": 1_000_000_001, "reason": "huge"},
        {"points": "10", "reason": "string"},
        {"points": 10},
        {"points": 10, "reason": "x" * 501},
        {"points": 10, "reason": "ok", "by": "me"},
        {"points": True, "reason": "bool"},
    ],
)
def test_bad_adjustments_change_nothing(client, admin, body):
    client.post("/v1/members", json={"id": "c_adj", "email": "a@example.com"}, headers=admin)
    before = row_counts()
    response = client.post("/v1/members/c_adj/adjustments", json=body, headers=admin)
    assert response.status_code == 422
    assert response.get_json()["type"] == "validation-error"
    assert row_counts() == before


@pytest.mark.parametrize(
    "changes",
    [
        {"currency": "US"},
        {"points_per_unit": 1.5},
        {"points_per_unit": "-1"},
        {"points_per_unit": "abc"},
        {"pending_days": -1},
        {"timezone": "Mars/Base"},
        {"qualifying_period": "monthly"},
        {"auto_enroll": "yes"},
        {"widget_origins": ["javascript:alert(1)"]},
        {"unknown": 1},
    ],
)
def test_bad_program_settings_change_nothing(client, admin, changes):
    before = client.get("/v1/program", headers=admin).get_json()
    response = client.put("/v1/program", json=changes, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert client.get("/v1/program", headers=admin).get_json() == before


def test_other_members_ids_are_404_not_someone_elses_data(client, admin):
    assert client.get("/v1/members/nobody", headers=admin).status_code == 404
    adjust = {"points": 5, "reason": "x"}
    response = client.post("/v1/members/nobody/adjustments", json=adjust, headers=admin)
    assert response.status_code == 404
    assert response.get_json()["type"] == "not-found"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/members/c_q?expand=orders",  # takes no query parameters
        "/v1/members/c_q/activity?limit=2&sort=desc",  # takes limit and cursor only
        "/v1/rewards?bogus=1",
    ],
)
def test_unknown_query_parameters_are_validation_errors(client, admin, path):
    client.post("/v1/members", json={"id": "c_q", "email": "q@example.com"}, headers=admin)
    response = client.get(path, headers=admin)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    wrong = path.split("?")[1].split("&")[-1].split("=")[0]
    assert response.get_json()["errors"] == {"query": {wrong: ["Unknown field."]}}
    # The known ones still work, and credentials are checked before the query string.
    assert client.get(path.split("?")[0], headers=admin).status_code == 200
    assert client.get(path).status_code == 401
    # A POST without query parameters refuses them too, and changes nothing.
    before = row_counts()
    body = {"id": "c_q2", "email": "q2@example.com"}
    assert client.post("/v1/members?dry_run=1", json=body, headers=admin).status_code == 422
    assert row_counts() == before
