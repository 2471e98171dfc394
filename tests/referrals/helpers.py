"""Builders for the referral tests: HTTP calls as a storefront, an admin or a browser make them."""

import itertools
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


_addresses = itertools.count()


def new_ip() -> str:
    """An address no other call used (198.18.0.0/15, the benchmarking range)."""
    n = next(_addresses)
    return f"198.{18 + n // 62500 % 2}.{n // 250 % 250}.{n % 250 + 1}"


def _with_ip(extra: dict) -> dict:
    """A storefront forwards the shopper's IP: each call its own unless the test says
    (`ip=None` leaves it out)."""
    extra = {"ip": new_ip(), **extra}
    return {k: v for k, v in extra.items() if not (k == "ip" and v is None)}


def claim(client, headers, code, email, **extra):
    return client.post(
        "/v1/referrals/claim",
        json={"code": code, "email": email, **_with_ip(extra)},
        headers=headers,
    )


def order(client, headers, customer_id, *, days_ago=1, amount=5000, **extra):
    extra = _with_ip(extra)
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
