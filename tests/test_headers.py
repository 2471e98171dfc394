"""Headers every answer carries, and who may read /metrics."""

import pytest

from tests.conftest import bearer

NOSNIFF = ("X-Content-Type-Options", "nosniff")


def _secret_carrying_answers(client, admin, storefront):
    """An answer of each kind that carries a code, a secret, a token or a member's data."""
    member = client.post(
        "/v1/members", json={"id": "c_headers", "email": "h@example.com"}, headers=admin
    )
    token = client.post("/v1/widget-tokens", json={"customer_id": "c_headers"}, headers=storefront)
    return {
        "member created": member,
        "member read": client.get("/v1/members/c_headers", headers=admin),
        "widget token": token,
        "/v1/me": client.get("/v1/me", headers=bearer(token.get_json()["token"])),
        "gift card code": client.post(
            "/v1/gift-cards", json={"amount": 5000, "currency": "USD"}, headers=admin
        ),
        "webhook secret": client.post(
            "/v1/webhook-endpoints",
            json={"url": "https://hooks.example.com/x", "events": ["points.earned"]},
            headers=admin,
        ),
    }


def test_answers_with_codes_secrets_tokens_or_member_data_are_never_stored(
    client, admin, storefront
):
    for name, response in _secret_carrying_answers(client, admin, storefront).items():
        assert response.status_code in (200, 201), (name, response.get_json())
        assert response.headers.getlist("Cache-Control") == ["no-store"], name
        assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"], name


def test_every_answer_says_nosniff_errors_and_public_files_included(client, admin, storefront):
    answers = {
        "health": client.get("/healthz"),
        "openapi": client.get("/openapi.json"),
        "docs": client.get("/docs"),
        "widget.js": client.get("/widget.js"),
        "unknown path": client.get("/v1/nothing-here", headers=admin),
        "unknown path, no route": client.get("/nowhere"),
        "wrong method": client.delete("/v1/events", headers=admin),
        "no credentials": client.get("/v1/program"),
        "invalid body": client.post("/v1/members", json={"id": ""}, headers=admin),
        "not found": client.get("/v1/members/nobody", headers=admin),
    }
    assert answers["unknown path"].status_code == 404
    assert answers["invalid body"].status_code == 422
    for name, response in answers.items():
        assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"], name
        if name != "widget.js":
            assert response.headers.getlist("Cache-Control") == ["no-store"], name


def test_the_widget_script_keeps_its_own_public_caching(client):
    response = client.get("/widget.js")
    assert response.headers.getlist("Cache-Control") == ["public, max-age=300"]
    again = client.get("/widget.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers.getlist("Cache-Control") == ["public, max-age=300"]
    assert NOSNIFF in again.headers.items()


# --- /metrics ---------------------------------------------------------------------------------


@pytest.fixture
def metrics_token(app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-me-0123456789")
    return "scrape-me-0123456789"


def test_metrics_with_a_token_need_it(client, metrics_token, admin):
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers=bearer("scrape-me-wrong"))
    assert (wrong.status_code, wrong.get_json()["type"]) == (401, "unauthorized")
    assert client.get("/metrics", headers=admin).status_code == 401  # an API key is not it
    basic = client.get("/metrics", headers={"Authorization": "Basic c2NyYXBlLW1lOg=="})
    assert basic.status_code == 401
    scraped = client.get("/metrics", headers=bearer(metrics_token))
    assert scraped.status_code == 200
    assert b"loyalty_http_requests_total" in scraped.data


def test_metrics_are_closed_in_production_until_a_token_is_set(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOYALTY_ENV", "production")
    closed = client.get("/metrics")
    assert (closed.status_code, closed.get_json()["type"]) == (403, "forbidden")
    assert "METRICS_TOKEN" in closed.get_json()["detail"]
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-me-0123456789")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer("scrape-me-0123456789")).status_code == 200


def test_metrics_token_is_read_from_the_environment(tmp_path):
    from loyalty.config import from_environment

    assert from_environment(str(tmp_path), {})["METRICS_TOKEN"] == ""
    assert from_environment(str(tmp_path), {"METRICS_TOKEN": "t0k"})["METRICS_TOKEN"] == "t0k"
