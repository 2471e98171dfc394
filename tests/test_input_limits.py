"""Input no schema sees: ids in paths past the columns' range, NUL characters anywhere, and a
generated request for every operation of the OpenAPI document, none of which may get a 500.

Each of these was a 500 (an overflow in SQLite's driver, "out of range" or "cannot contain NUL"
from PostgreSQL, a KeyError in a validator) until `loyalty.inputs` and the fixes beside it.
"""

import pytest
import schemathesis
from hypothesis import given
from schemathesis.checks import content_type_conformance, response_schema_conformance
from sqlalchemy import func, select

from loyalty import models
from loyalty.extensions import db
from loyalty.inputs import INT32_MAX, INT64_MAX
from tests import factories as f
from tests.openapi import generated_requests

BIGINT_IDS = [
    ("GET", "/v1/referrals/{}"),
    ("POST", "/v1/referrals/{}/approve"),
    ("POST", "/v1/referrals/{}/reject"),
    ("POST", "/v1/redemptions/{}/cancel"),
    ("GET", "/v1/gift-cards/{}"),
    ("POST", "/v1/gift-cards/{}/disable"),
    ("POST", "/v1/gift-cards/{}/refunds"),
    ("POST", "/v1/gift-cards/{}/adjustments"),
    ("POST", "/v1/gift-card-holds/{}/capture"),
    ("POST", "/v1/gift-card-holds/{}/void"),
]
INTEGER_IDS = [
    ("GET", "/v1/earning-rules/{}"),
    ("PATCH", "/v1/earning-rules/{}"),
    ("DELETE", "/v1/earning-rules/{}"),
    ("GET", "/v1/tiers/{}"),
    ("PATCH", "/v1/tiers/{}"),
    ("DELETE", "/v1/tiers/{}"),
    ("GET", "/v1/rewards/{}"),
    ("DELETE", "/v1/webhook-endpoints/{}"),
    ("GET", "/v1/webhook-endpoints/{}/deliveries"),
]
ERROR_CHECKS = [content_type_conformance, response_schema_conformance]
TABLES = [models.Member, models.LedgerEntry, models.Order, models.ProcessedEvent,
          models.IdempotencyRecord]  # fmt: skip


def row_counts():
    return {t.__tablename__: db.session.scalar(select(func.count()).select_from(t)) for t in TABLES}


def _bodyless(client, method, path, headers):
    body = {} if method in ("POST", "PATCH") else None
    return client.open(path, method=method, json=body, headers=headers)


@pytest.mark.parametrize(
    ("method", "path", "beyond"),
    [(m, p, INT64_MAX + 1) for m, p in BIGINT_IDS]
    + [(m, p, INT32_MAX + 1) for m, p in INTEGER_IDS],
)
def test_an_id_past_its_column_is_no_rows_id(client, admin, method, path, beyond):
    for number in (beyond, 10**30, 0):
        response = _bodyless(client, method, path.format(number), admin)
        assert response.status_code == 404, (number, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        assert response.json["type"] == "not-found"


def test_the_largest_ids_are_still_looked_up(client, admin):
    for path in ("/v1/referrals/{}", "/v1/gift-cards/{}"):
        response = client.get(path.format(INT64_MAX), headers=admin)
        assert response.status_code == 404 and response.json["type"] == "not-found"
    for path in ("/v1/tiers/{}", "/v1/rewards/{}", "/v1/earning-rules/{}"):
        response = client.get(path.format(INT32_MAX), headers=admin)
        assert response.status_code == 404 and response.json["type"] == "not-found"


def test_the_document_gives_each_id_its_range(client):
    paths = client.get("/openapi.json").json["paths"]

    def schema_of(path, name):
        item = paths[path]
        params = (
            item.get("parameters")
            or next(iter(v for k, v in item.items() if k != "parameters"))["parameters"]
        )
        return next(p["schema"] for p in params if p["name"] == name)

    assert schema_of("/v1/tiers/{tier_id}", "tier_id") == {
        "type": "integer", "minimum": 1, "maximum": INT32_MAX,
    }  # fmt: skip
    assert schema_of("/v1/gift-cards/{card_id}", "card_id") == {
        "type": "integer", "minimum": 1, "maximum": INT64_MAX,
    }  # fmt: skip


def _refused(response, field):
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json["type"] == "validation-error"
    assert field in response.json["errors"], response.json
    assert "NUL" in response.json["errors"][field][0]


def test_nul_in_a_body_is_refused_and_changes_nothing(client, admin, storefront):
    before = row_counts()
    _refused(
        client.post("/v1/members", json={"id": "c\x00", "email": "a@example.com"}, headers=admin),
        "id",
    )
    event = f.paid("c_nul", order_id="o_nul", event_id="e_nul")
    event["order"]["lines"][0]["sku"] = "SKU\x00"
    _refused(client.post("/v1/events", json=event, headers=storefront), "order.lines.0.sku")
    # A NUL in a key, before the schema would call the key unknown.
    _refused(client.post("/v1/members", json={"i\x00d": "c"}, headers=admin), "i\x00d")
    assert row_counts() == before


def test_a_backslash_u_text_is_not_a_nul(client, admin):
    # JSON "\\u0000" is the six characters \u0000, which any text field may hold.
    response = client.post(
        "/v1/members",
        data='{"id": "c_slash", "email": "s@example.com", "name": "a \\\\u0000 b"}',
        content_type="application/json",
        headers=admin,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["name"] == "a \\u0000 b"


def test_nul_in_a_path_query_or_stored_header_is_refused(client, admin, storefront):
    before = row_counts()
    _refused(client.get("/v1/members/c%00x", headers=admin), "customer_id")
    _refused(client.get("/v1/rewards?cursor=%00", headers=admin), "cursor")
    event = f.paid("c_nul", order_id="o_nul", event_id="e_nul")
    response = client.post(
        "/v1/events", json=event, headers={**storefront, "Idempotency-Key": "k\x00"}
    )
    _refused(response, "Idempotency-Key")
    _refused(client.get("/r/ANYCODE", headers={"User-Agent": "bot\x00"}), "User-Agent")
    assert row_counts() == before


def test_a_put_replaces_a_nested_reward_whole(client, admin):
    response = client.put(
        "/v1/referral-program",
        json={"friend_reward": {"amount": 1, "min_order": 0}},
        headers=admin,
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "kind" in response.json["errors"]["friend_reward"]
    before = client.get("/v1/referral-program", headers=admin).json
    response = client.put("/v1/referral-program", json={"enabled": False}, headers=admin)
    assert response.status_code == 200
    assert response.json["friend_reward"] == before["friend_reward"]


def test_segments_take_an_average_order_value_up_to_the_money_bound(client, keys):
    response = client.get(
        "/v1/reports/segments?low_aov_max=100000000000&as_of=2026-01-01", headers=keys["reports"]
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_no_generated_request_gets_a_server_error(app, client, keys):
    """Every operation of /openapi.json, with data generated from its own schema (valid and
    not), as an admin: whatever is refused is refused with a 4xx whose media type and body
    are the problem+json the document describes, never with a 500."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures = []
    for result in schema.get_all_operations():
        _fuzz(result.ok(), keys["admin"], failures)
    assert not failures, failures[:5]


def _fuzz(operation, headers, failures):
    @generated_requests(max_examples=15)
    @given(case=operation.as_strategy())
    def check(case):
        case.headers = {**(case.headers or {}), **headers}
        response = case.call()
        if response.status_code >= 500:
            failures.append((operation.label, case.as_curl_command(), response.text))
        elif response.status_code >= 400:
            # The body and media type /openapi.json documents for errors: problem+json.
            case.validate_response(response, checks=ERROR_CHECKS)

    check()


def test_a_body_over_the_limit_is_refused_before_it_is_read(app, client, storefront):
    before = row_counts()
    event = f.paid("c_big", order_id="o_big", event_id="e_big")
    event["order"]["name"] = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/v1/events", json=event, headers=storefront)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    # Without a key too: the size is refused before anyone is authenticated.
    response = client.post("/v1/events", json=event)
    assert response.status_code == 413
    assert row_counts() == before
