"""Input no schema sees: ids in paths past the columns' range, NUL characters anywhere, and a
generated request for every operation of the OpenAPI document, none of which may get a 500.

Each of these was a 500 (an overflow in SQLite's driver, "out of range" or "cannot contain NUL"
from PostgreSQL, a KeyError in a validator) until `loyalty.inputs` and the fixes beside it.
"""

import json
import re

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.checks import content_type_conformance, response_schema_conformance
from sqlalchemy import func, select

from loyalty import models
from loyalty.auth import issue_widget_token
from loyalty.extensions import db
from loyalty.inputs import INT32_MAX, INT64_MAX, UNCHECKED_BODIES
from tests import factories as f
from tests.openapi import (
    CURSOR_SHAPES,
    JSON_SHAPES,
    MEMBER_ID_SHAPES,
    TIME_SHAPES,
    generated_requests,
)

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


@pytest.mark.slow
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


PLANTED = "__planted_shape__"
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT")


@pytest.mark.slow
def test_no_generated_request_carrying_a_hostile_value_gets_a_server_error(app, client, keys):
    """The same operations, each request carrying one value of a shape that once reached a
    500 (tests/openapi.py): put anywhere in a JSON body, in place of a date-time or a
    customer id, or as the page cursor. Each is refused where it must be, naming where it
    was, and nothing is ever a 500."""
    client.post("/v1/members", json={"id": "c_fuzz", "email": "fuzz@example.com"},
                headers=keys["admin"])  # fmt: skip
    pk = db.session.scalar(select(models.Member.id).where(models.Member.customer_id == "c_fuzz"))
    with app.test_request_context():
        widget = {"Authorization": f"Bearer {issue_widget_token(pk, 'c_fuzz')}"}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        widget_path = operation.path == "/v1/me" or operation.path.startswith("/v1/me/")
        headers = widget if widget_path else keys["admin"]
        _fuzz_hostile(operation, client, headers, failures)
    assert not failures, failures[:5]


def _fuzz_hostile(operation, client, headers, failures):
    shapes = []
    if any(parameter.name == "cursor" for parameter in operation.query):
        shapes.append(CURSOR_SHAPES)
    json_body = any(body.media_type == "application/json" for body in operation.body)
    if json_body and not operation.path.startswith(UNCHECKED_BODIES):
        shapes += [JSON_SHAPES, TIME_SHAPES, MEMBER_ID_SHAPES]
    if not shapes:
        return

    @generated_requests(max_examples=12)
    @given(case=operation.as_strategy(), shape=st.one_of(shapes), data=st.data())
    def check(case, shape, data):
        path = case.formatted_path  # its parameters already percent-encoded
        # The query without the NULs the generator may put in (each refused, naming its place).
        query, body, spot = _without_nul(dict(case.query or {})), None, None
        if shape.kind == "cursor":
            query["cursor"] = shape.text
        else:
            # Without the NULs the generator may put in (each refused, naming its own place).
            body = _without_nul(case.body) if isinstance(case.body, dict) else {}
            spot = _plant(body, shape, data, operation.label)
        text = None
        if body is not None:
            raw = shape.text if shape.kind == "json" else json.dumps(shape.text)
            text = json.dumps(body).replace(json.dumps(PLANTED), raw)
        response = client.open(
            path, method=operation.method.upper(), query_string=query, headers=headers,
            data=text, content_type="application/json" if text is not None else None,
        )  # fmt: skip
        problem = _judge(response, shape, spot)
        if problem:
            failures.append((operation.label, problem, path, query, (text or "")[:300]))

    check()


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _spots(value, path=()):
    """(path, key, value) of every member and item of a JSON body, in document order."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        yield (*path, str(key)), item
        if isinstance(item, dict | list):
            yield from _spots(item, (*path, str(key)))


def _plant(body: dict, shape, data, label: str):
    """Put the placeholder into `body` where a value of this shape belongs (else anywhere, or
    as a new member); the spot's path, and whether the shape belongs there."""
    spots = list(_spots(body))
    if shape.kind == "time":
        fitting = [s for s in spots if isinstance(s[1], str) and ISO_TIME.match(s[1])]
    elif shape.kind == "member_id":
        fitting = [s for s in spots if s[0][-1] == "customer_id"
                   or (label == "POST /v1/members" and s[0] == ("id",))]  # fmt: skip
    else:
        fitting = spots
    path = data.draw(st.sampled_from([s[0] for s in fitting])) if fitting else ("planted",)
    container = body
    for key in path[:-1]:
        container = container[int(key) if isinstance(container, list) else key]
    last = path[-1]
    container[int(last) if isinstance(container, list) else last] = PLANTED
    return path, bool(fitting)


def _judge(response, shape, spot) -> str | None:
    """Why this answer is wrong for this shape at this spot, or None."""
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.get_data(as_text=True)[:200]}"
    if status >= 400 and response.mimetype != "application/problem+json":
        return f"{status} as {response.mimetype}"
    if shape.kind == "cursor":
        if status != 422 or "cursor" not in response.json["errors"].get("query", {}):
            return f"cursor {shape.text!r}: {status} {response.get_data(as_text=True)[:200]}"
    elif shape.kind == "json" or (shape.refused and spot[1]):
        # Refused wherever it is (JSON shapes), or where such a value belongs: a 422 that
        # names the place, whatever else the generated request got wrong.
        where = (shape.where,) if shape.where else spot[0]
        if status != 422 or not _names(response.json.get("errors") or {}, where):
            text = response.get_data(as_text=True)[:200]
            return f"{shape.kind} {shape.text[:40]!r}: expected 422 naming {where}: {status} {text}"
    return None


def _names(errors: dict, path: tuple) -> bool:
    """Do these errors name `path`, as one dotted key or as nested fields?"""
    if ".".join(path) in errors:
        return True
    for key in path:
        if not isinstance(errors, dict) or key not in errors:
            return False
        errors = errors[key]
    return True
