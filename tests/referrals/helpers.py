"""Builders for the referral tests: HTTP calls as a storefront, an admin or a browser make them."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from tests import factories as f
from tests.factories import run_job  # noqa: F401 - the referral tests import it from here


def enroll(client, admin, customer_id, email=None, name=None):
    body = {"id": customer_id, "email": email or f"{customer_id}@example.com"}
    if name:
        body["name"] = name
    response = client.post("/v1/members", json=body, headers=admin)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def code_of(client, headers, customer_id):
    return client.get(f"/v1/members/{customer_id}", headers=headers).get_json()["referral"]["code"]


def follow(client, code, ip="203.0.113.9"):
    """Open the share link; return (ref, click token) from the landing page URL."""
    response = client.get(f"/r/{code}", environ_base={"REMOTE_ADDR": ip})
    assert response.status_code == 302, response.get_data(as_text=True)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return query["ref"][0], query["click"][0]


def claim(client, headers, code, email, **extra):
    return client.post(
        "/v1/referrals/claim", json={"code": code, "email": email, **extra}, headers=headers
    )


def order(client, headers, customer_id, *, days_ago=1, amount=5000, **extra):
    event = f.paid(
        customer_id,
        lines=[f.line(unit_price=amount)],
        occurred_at=datetime.now(UTC) - timedelta(days=days_ago),
        **extra,
    )
    response = client.post("/v1/events", json=event, headers=headers)
    assert response.status_code == 200, response.get_json()
    return event, response.get_json()


def referral_effects(body):
    return [e for e in body["effects"] if e["kind"] == "referral"]


def points(client, headers, customer_id):
    return client.get(f"/v1/members/{customer_id}", headers=headers).get_json()["points"]


def stats(client, headers, customer_id):
    response = client.get(f"/v1/members/{customer_id}/referrals", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def settings(client, admin, **changes):
    response = client.put("/v1/referral-program", json=changes, headers=admin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def verify_ledger(runner):
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output
