"""/openapi.json says what is really sent: every response of every route has a schema, every
time in one is a `date-time`, and real answers across the domains match their schema."""

import re
from datetime import UTC, datetime

import jsonschema_rs
import pytest

from tests import factories as f
from tests.conftest import bearer
from tests.giftcards.helpers import hold, issue
from tests.referrals.helpers import claim, code_of
from tests.rewards.helpers import make_member, make_reward, redeem
from tests.tiers.helpers import beauty_insider

METHODS = ("get", "put", "post", "patch", "delete")
# A property named like a moment (`created_at`, `reserved_until`, `as_of`...).
TIME_NAME = re.compile(r"(_at|_until|^as_of)$")


@pytest.fixture
def doc(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def successes(operation):
    for status, response in operation["responses"].items():
        if status.startswith(("2", "3")):
            yield status, response


def properties(doc, schema, where, seen=frozenset()):
    """(where, name, property schema) of every property reachable from `schema`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name not in seen:
            yield from properties(doc, doc["components"]["schemas"][name], where, seen | {name})
        return
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            yield from properties(doc, part, where, seen)
    if isinstance(schema.get("items"), dict):
        yield from properties(doc, schema["items"], f"{where}[]", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from properties(doc, schema["additionalProperties"], f"{where}{{}}", seen)
    for name, prop in schema.get("properties", {}).items():
        yield where, name, prop
        yield from properties(doc, prop, f"{where}.{name}", seen)


def response_schemas(doc):
    for path, method, operation in operations(doc):
        for status, response in successes(operation):
            for media_type, content in response.get("content", {}).items():
                yield f"{method.upper()} {path} {status} {media_type}", content.get("schema")


def test_every_response_of_every_route_has_a_schema(doc):
    missing = []
    for path, method, operation in operations(doc):
        for status, response in successes(operation):
            if status == "204":
                assert not response.get("content"), (method, path)
                continue
            content = response.get("content") or {}
            if not content or not all(c.get("schema") for c in content.values()):
                missing.append(f"{method.upper()} {path} {status}")
    assert missing == []


def test_every_time_in_a_response_is_a_date_time(doc):
    undeclared = []
    for where, schema in response_schemas(doc):
        for at, name, prop in properties(doc, schema, where):
            if TIME_NAME.search(name) and "$ref" not in prop and prop.get("format") != "date-time":
                undeclared.append(f"{at}.{name}")
    assert undeclared == []
    # And the walk does see them: the member view's times are among them.
    seen = {
        f"{at}.{name}"
        for where, schema in response_schemas(doc)
        for at, name, prop in properties(doc, schema, where)
        if prop.get("format") == "date-time"
    }
    assert "GET /v1/members/{customer_id} 200 application/json.enrolled_at" in seen
    assert "GET /v1/members/{customer_id} 200 application/json.tier.ends_at" in seen


def _template(doc, method: str, path: str) -> dict:
    """The operation of /openapi.json that `method path` (a real path) calls."""
    path = path.partition("?")[0]
    for template, item in doc["paths"].items():
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method in item:
            return item[method]
    raise AssertionError(f"{method.upper()} {path} is not in /openapi.json")


def conforms(doc, method: str, path: str, response) -> None:
    """The response's body is an instance of the schema /openapi.json gives for it."""
    operation = _template(doc, method, path)
    documented = operation["responses"][str(response.status_code)]
    schema = documented["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator(
        {**schema, "components": doc["components"]}, validate_formats=True
    )
    errors = [str(e) for e in validator.iter_errors(response.get_json())]
    assert errors == [], (method, path, errors)


def test_answers_match_their_documented_schemas(client, admin, storefront, doc):
    def call(method, path, headers, **kwargs):
        response = getattr(client, method)(path, headers=headers, **kwargs)
        assert response.status_code < 300, (path, response.get_json())
        if response.status_code != 204:
            conforms(doc, method, path, response)
        return response.get_json()

    beauty_insider(client, admin)
    call("post", "/v1/members", storefront, json={"id": "ana", "email": "ana@example.com"})
    make_member(client, admin, "bo", points=2000)
    paid = f.paid("ana", lines=[f.line(unit_price=40_000)], occurred_at=datetime.now(UTC))
    call("post", "/v1/events", storefront, json=paid)
    call("get", "/v1/members/ana", storefront)
    call("get", "/v1/members/ana/activity?limit=1", storefront)
    call("get", "/v1/members/ana/tier-changes", storefront)
    call("post", "/v1/members/bo/adjustments", admin, json={"points": 5, "reason": "r"})
    call("get", "/v1/tiers", admin)
    rule = {"name": "Double", "trigger": "order", "multiplier": "2"}
    call("post", "/v1/earning-rules", admin, json=rule)
    call("get", "/v1/earning-rules", admin)
    reviews = {"name": "Reviews", "trigger": "action", "points": 50,
               "conditions": {"action_type": "review"}, "caps": {"per_month": 1}}  # fmt: skip
    call("post", "/v1/earning-rules", admin, json=reviews)
    review = {"id": "rv-1", "type": "review", "occurred_at": datetime.now(UTC).isoformat(),
              "detail": {"sku": "SERUM"}}  # fmt: skip
    assert call("post", "/v1/members/ana/actions", storefront, json=review)["effects"]
    again = {**review, "id": "rv-2"}
    assert call("post", "/v1/members/ana/actions", storefront, json=again)["effects"]
    reward = make_reward(client, admin, starts_at="2020-01-01T00:00:00+02:00")
    call("get", "/v1/rewards", admin)
    assert redeem(client, storefront, "bo", reward["id"]).status_code == 201
    redemptions = call("get", "/v1/members/bo/redemptions", storefront)
    code = redemptions["items"][0]["code"]
    check = {"code": code, "customer_id": "bo", "subtotal": 5000, "order_id": "o_9"}
    call("post", "/v1/reward-codes/validate", storefront, json=check)
    friend = {"code": code_of(client, storefront, "ana"), "email": "cy@example.com"}
    claimed = claim(client, storefront, friend["code"], friend["email"])
    assert claimed.status_code == 201
    call("get", "/v1/referrals", admin)
    call("get", f"/v1/referrals/{claimed.get_json()['referral_id']}", admin)
    call("get", "/v1/members/ana/referrals", storefront)
    card = call("post", "/v1/gift-cards", admin, json={"amount": 5000, "currency": "USD"})
    assert hold(client, storefront, card["code"], 1000).status_code == 201
    issue(client, admin)
    call("get", f"/v1/gift-cards/{card['id']}", admin)
    call("get", "/v1/gift-cards?limit=1", admin)
    endpoint = {"url": "https://hooks.example.com/x", "events": ["points.earned"]}
    call("post", "/v1/webhook-endpoints", admin, json=endpoint)
    call("get", "/v1/webhook-endpoints", admin)
    call("get", "/v1/members/ana/export", admin)
    token = call("post", "/v1/widget-tokens", storefront, json={"customer_id": "bo"})["token"]
    widget = bearer(token)
    call("get", "/v1/me", widget)
    call("get", "/v1/me/rewards", widget)
    mine = call("post", "/v1/me/redemptions", widget, json={"reward_id": reward["id"]})
    call("get", f"/v1/me/redemptions/{mine['id']}", widget)
    call("get", "/v1/me/referrals", widget)
    call("get", "/v1/me/activity", widget)
    call("post", f"/v1/redemptions/{mine['id']}/cancel", storefront)
