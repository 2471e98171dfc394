"""The admin API of outbound webhooks: endpoints, their one-time secret, validation, audit."""

import base64

import pytest
from sqlalchemy import select

from loyalty.audit import AuditLog
from loyalty.webhooks import EVENT_TYPES
from tests.webhooks.helpers import create_endpoint

URL = "https://hooks.example.com/loyalty"


def test_create_shows_the_secret_once_and_lists_without_it(client, admin, session):
    created = create_endpoint(client, admin, URL, ["points.earned", "tier.changed"])
    assert created["url"] == URL
    assert created["events"] == ["points.earned", "tier.changed"]
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) <= 32
    assert create_endpoint(client, admin, URL, ["points.earned"])["secret"] != secret

    listed = client.get("/v1/webhook-endpoints", headers=admin).get_json()
    assert [e["id"] for e in listed["items"]] == [created["id"], created["id"] + 1]
    assert all("secret" not in e for e in listed["items"])
    assert listed["items"][0] == {k: v for k, v in created.items() if k != "secret"}
    assert listed["next_cursor"] is None


def test_delete_is_204_then_gone_and_both_changes_are_audited(client, admin, session):
    created = create_endpoint(client, admin, URL, ["reward.issued"])
    path = f"/v1/webhook-endpoints/{created['id']}"
    response = client.delete(path, headers=admin)
    assert response.status_code == 204
    assert client.get("/v1/webhook-endpoints", headers=admin).get_json()["items"] == []
    again = client.delete(path, headers=admin)
    assert (again.status_code, again.get_json()["type"]) == (404, "not-found")

    audit = session.scalars(
        select(AuditLog).where(AuditLog.object_type == "webhook_endpoint").order_by(AuditLog.id)
    ).all()
    assert [a.action for a in audit] == ["webhook_endpoint.create", "webhook_endpoint.delete"]
    assert {a.object_id for a in audit} == {str(created["id"])}
    assert audit[0].before is None and audit[0].after["url"] == URL
    assert audit[1].before["events"] == ["reward.issued"] and audit[1].after is None
    for a in audit:  # the secret is never logged, in clear or sealed
        assert "secret" not in (a.after or {}) and "secret" not in (a.before or {})
        assert created["secret"] not in str(a.after) + str(a.before)
        assert "whsec_" not in str(a.after) + str(a.before)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": URL, "events": ["points.earned"], "active": True}, "active"),
        ({"url": URL, "events": ["points.spent"]}, "events"),
        ({"url": URL, "events": []}, "events"),
        ({"url": URL, "events": "points.earned"}, "events"),
        ({"url": "ftp://hooks.example.com/x", "events": ["points.earned"]}, "url"),
        ({"url": "javascript:alert(1)", "events": ["points.earned"]}, "url"),
        ({"url": "not a url", "events": ["points.earned"]}, "url"),
        ({"url": "https://example.com/" + "x" * 2050, "events": ["points.earned"]}, "url"),
        ({"events": ["points.earned"]}, "url"),
    ],
)
def test_bad_endpoints_are_refused_and_change_nothing(client, admin, body, field):
    response = client.post("/v1/webhook-endpoints", json=body, headers=admin)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == "validation-error"
    assert field in problem["errors"]
    assert client.get("/v1/webhook-endpoints", headers=admin).get_json()["items"] == []


def test_every_event_type_can_be_subscribed_and_http_is_fine_outside_production(client, admin):
    created = create_endpoint(client, admin, "http://127.0.0.1:9/hook", list(EVENT_TYPES))
    assert created["events"] == sorted(EVENT_TYPES)


def test_production_needs_https(client, admin, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOYALTY_ENV", "production")
    body = {"url": "http://hooks.example.com/loyalty", "events": ["points.earned"]}
    response = client.post("/v1/webhook-endpoints", json=body, headers=admin)
    assert response.status_code == 422
    assert response.get_json()["errors"]["url"] == ["Must be an https URL in production."]
    assert create_endpoint(client, admin, URL, ["points.earned"])["url"] == URL


def test_only_admins_manage_endpoints(client, keys):
    body = {"url": URL, "events": ["points.earned"]}
    for scope in ("storefront", "reports"):
        assert client.get("/v1/webhook-endpoints", headers=keys[scope]).status_code == 403
        response = client.post("/v1/webhook-endpoints", json=body, headers=keys[scope])
        assert response.status_code == 403
    assert client.post("/v1/webhook-endpoints", json=body).status_code == 401
    assert client.delete("/v1/webhook-endpoints/1", headers=keys["storefront"]).status_code == 403


def test_unknown_query_parameters_are_refused(client, admin):
    created = create_endpoint(client, admin, URL, ["points.earned"])
    for path in (
        "/v1/webhook-endpoints?active=1",
        f"/v1/webhook-endpoints/{created['id']}/deliveries?state=failed",
    ):
        response = client.get(path, headers=admin)
        assert response.status_code == 422
        assert list(response.get_json()["errors"]["query"]) == [path.split("?")[1].split("=")[0]]
    path = f"/v1/webhook-endpoints/{created['id']}/deliveries?limit=1"
    assert client.get(path, headers=admin).status_code == 200
