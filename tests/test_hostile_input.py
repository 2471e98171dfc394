"""Inputs that used to reach a 500, each now a 422 problem that changes nothing: page cursors
past a row id, JSON nested too deep, integers of thousands of digits, lone surrogates, times
with no UTC spelling, and member ids no path can carry.
"""

import base64
import json
from urllib.parse import quote

import pytest
from sqlalchemy import select

from loyalty import models
from loyalty.auth import issue_widget_token
from loyalty.cursors import encode_cursor
from loyalty.extensions import db
from loyalty.inputs import INT32_MAX, INT64_MAX
from tests import factories as f
from tests import refusals
from tests.refusals import refused

TABLES = [models.Member, models.LedgerEntry, models.Order, models.ProcessedEvent,
          models.IdempotencyRecord, models.AuditLog]  # fmt: skip
ADMIN_LISTS = [
    "/v1/members/c_list/activity",
    "/v1/members/c_list/redemptions",
    "/v1/members/c_list/referrals",
    "/v1/members/c_list/tier-changes",
    "/v1/earning-rules",
    "/v1/rewards",
    "/v1/referrals",
    "/v1/gift-cards",
    "/v1/webhook-endpoints/1/deliveries",
]
WIDGET_LISTS = ["/v1/me/activity", "/v1/me/referrals"]


def row_counts():
    return refusals.row_counts(TABLES)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture
def widget(app, client, admin):
    client.post("/v1/members", json={"id": "c_list", "email": "list@example.com"}, headers=admin)
    pk = db.session.scalar(select(models.Member.id).where(models.Member.customer_id == "c_list"))
    with app.test_request_context():
        return {"Authorization": f"Bearer {issue_widget_token(pk, 'c_list')}"}


# --- cursors ----------------------------------------------------------------------------------


BAD_CURSORS = {
    "past bigint": encode_cursor(INT64_MAX + 1),
    "30 digits": encode_cursor(10**30),
    "zero": encode_cursor(0),
    "negative": b64("-5"),
    "signed": b64("+5"),
    "spaces": b64(" 5"),
    "underscores": b64("1_000"),
    "not base64 digits": "!!!",
    "padded": encode_cursor(1) + "==",
    "padding then more": encode_cursor(1) + "==x",
    "stray bits": "MR",  # decodes to "1" too, but encode_cursor never writes it
    "not ascii": b64("٣"),  # an Arabic-Indic digit, which int() would take
}


@pytest.mark.parametrize("path", ADMIN_LISTS + WIDGET_LISTS)
def test_a_cursor_that_names_no_row_is_a_validation_error(client, admin, widget, path):
    headers = widget if path.startswith("/v1/me/") else admin
    for name, cursor in BAD_CURSORS.items():
        response = client.get(f"{path}?cursor={cursor}", headers=headers)
        body = refused(response, "query", "cursor")
        assert body["errors"]["query"]["cursor"] == ["Not a cursor from this API."], name


INTEGER_KEYED = ("/v1/earning-rules", "/v1/rewards")


@pytest.mark.parametrize("path", ADMIN_LISTS + WIDGET_LISTS)
def test_the_largest_row_id_of_the_lists_table_still_pages(client, admin, widget, path):
    headers = widget if path.startswith("/v1/me/") else admin
    largest = INT32_MAX if path in INTEGER_KEYED else INT64_MAX
    response = client.get(f"{path}?cursor={encode_cursor(largest)}", headers=headers)
    if path.endswith("/deliveries"):  # no such endpoint: the cursor was fine
        assert response.status_code == 404, response.get_data(as_text=True)
    else:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json["next_cursor"] is None
    response = client.get(f"{path}?cursor={encode_cursor(largest + 1)}", headers=headers)
    refused(response, "query", "cursor")


def test_cursors_handed_out_still_page(client, admin):
    for n in range(3):
        event = f.paid("c_pages", order_id=f"o_pages_{n}", event_id=f"e_pages_{n}")
        assert client.post("/v1/events", json=event, headers=admin).status_code == 200
    seen, cursor = [], None
    while True:
        query = f"?limit=1&cursor={cursor}" if cursor else "?limit=1"
        page = client.get(f"/v1/members/c_pages/activity{query}", headers=admin).json
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3 and seen == sorted(seen, reverse=True)


# --- JSON bodies --------------------------------------------------------------------------------


def post_raw(client, path, text, headers):
    return client.post(path, data=text.encode(), content_type="application/json", headers=headers)


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def member(name: str) -> str:
    """A new member's JSON body with `name` given as raw JSON text."""
    return '{"id": "c_h", "email": "h@example.com", "name": ' + name + "}"


HOSTILE_BODIES = {
    "nested 1,000 deep": (member(deep(1000)), ["json"]),
    "objects nested 1,000 deep": (member('{"a":' * 1000 + "1" + "}" * 1000), ["json"]),
    # The parser recurses before it finds the end missing or the brackets mismatched.
    "5,000 opened, never closed": (member("[" * 5_000), ["json"]),
    "5,000 opened, closed wrong": (member("[" * 5_000 + "}" * 5_000), ["json"]),
    # Brackets inside strings are text: they neither add depth nor take it away.
    "closing brackets in a string first": (
        member('"' + "]" * 2_000 + '", "x": ' + deep(1000)),
        ["json"],
    ),
    "a 5,000-digit integer": (member("9" * 5000), ["name"]),
    "a 5,000-digit negative integer": (member("-" + "9" * 5000), ["name"]),
    "a lone high surrogate": ('{"id": "c_h\\ud800", "email": "h@example.com"}', ["id"]),
    "a lone low surrogate": (member('"\\udfff x"'), ["name"]),
    "a reversed pair": (member('"\\udc00\\ud800"'), ["name"]),
    "a lone surrogate in a key": (member('"x"').replace('"name"', '"\\ud800"'), ["\ud800"]),
    "NaN": (member("NaN"), ["name"]),
    "Infinity": (member("-Infinity"), ["name"]),
    "a float past the largest": (member("1e400"), ["name"]),
}


@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
def test_a_hostile_json_body_is_a_validation_error_and_changes_nothing(client, admin, case):
    text, where = HOSTILE_BODIES[case]
    before = row_counts()
    refused(post_raw(client, "/v1/members", text, admin), *where)
    # Before credentials are checked, like a body over the size limit: no parser is reached.
    refused(post_raw(client, "/v1/members", text, {}), *where)
    assert row_counts() == before


def test_hostile_values_deep_inside_an_event_are_named_by_their_path(client, storefront):
    before = row_counts()
    event = f.paid("c_h", order_id="o_h", event_id="e_h")
    text = json.dumps(event).replace('"quantity": 1', '"quantity": ' + "1" * 5000)
    refused(post_raw(client, "/v1/events", text, storefront), "order.lines.0.quantity")
    text = json.dumps(event).replace('"sku": "S1"', '"sku": "S\\udbff"')
    refused(post_raw(client, "/v1/events", text, storefront), "order.lines.0.sku")
    assert row_counts() == before


def test_what_a_json_body_may_hold_is_still_accepted(client, admin):
    # A surrogate pair is one character (here U+1F600); 20 digits and `\\ud800` as text pass
    # the body check (the schema then judges the number).
    text = '{"id": "c_ok", "email": "ok@example.com", "name": "smile \\ud83d\\ude00 \\\\ud800"}'
    response = post_raw(client, "/v1/members", text, admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["name"] == "smile \U0001f600 \\ud800"
    adjust = '{"points": 99999999999999999999, "reason": "x"}'
    body = refused(post_raw(client, "/v1/members/c_ok/adjustments", adjust, admin), "points")
    assert "digits" not in body["errors"]["points"][0]


def test_the_depth_and_digit_limits_are_configuration(app, client, admin, monkeypatch):
    body = '{"id": "c_cfg", "email": "cfg@example.com", "name": [[["x"]]]}'
    response = post_raw(client, "/v1/members", body, admin)
    assert response.json["errors"] != {"json": ["Nested more than 2 levels deep."]}
    monkeypatch.setitem(app.config, "MAX_JSON_DEPTH", 2)
    refused(post_raw(client, "/v1/members", body, admin), "json")
    # Brackets inside strings are text, not depth.
    ok = '{"id": "c_cfg", "email": "cfg@example.com", "name": "[[[[{{{{"}'
    assert post_raw(client, "/v1/members", ok, admin).status_code == 201
    monkeypatch.setitem(app.config, "MAX_JSON_INTEGER_DIGITS", 3)
    text = '{"points": 1000, "reason": "x"}'
    body = refused(post_raw(client, "/v1/members/c_cfg/adjustments", text, admin), "points")
    assert body["errors"]["points"] == ["Integers have at most 3 digits."]


# --- times --------------------------------------------------------------------------------------


def test_an_occurred_at_with_no_utc_spelling_is_a_validation_error(client, storefront):
    before = row_counts()
    for moment in ("0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00+00:01"):
        event = {**f.paid("c_t", order_id="o_t", event_id="e_t"), "occurred_at": moment}
        body = refused(client.post("/v1/events", json=event, headers=storefront), "occurred_at")
        assert "UTC" in body["errors"]["occurred_at"][0]
    assert row_counts() == before


def test_an_expires_at_with_no_utc_spelling_is_a_validation_error(client, admin):
    before = client.get("/v1/gift-cards", headers=admin).json["items"]
    card = {"amount": 1000, "currency": "USD", "expires_at": "9999-12-31T23:59:59-14:00"}
    refused(client.post("/v1/gift-cards", json=card, headers=admin), "expires_at")
    rule = {"name": "late", "trigger": "order", "multiplier": "2",
            "ends_at": "9999-12-31T23:59:59-00:01"}  # fmt: skip
    refused(client.post("/v1/earning-rules", json=rule, headers=admin), "ends_at")
    assert client.get("/v1/gift-cards", headers=admin).json["items"] == before
    # The same instants with an offset that keeps them in range are fine.
    card["expires_at"] = "9999-12-31T23:59:59+14:00"
    assert client.post("/v1/gift-cards", json=card, headers=admin).status_code == 201


# --- member ids ---------------------------------------------------------------------------------

UNCARRIABLE_IDS = ["x/y", "/", "..", ".", "a\\b", "tab\tid", "new\nline", "bell\x07",
                   "zero\u200bwidth", "rtl\u202eoverride", "para\u2029sep"]  # fmt: skip


@pytest.mark.parametrize("member_id", UNCARRIABLE_IDS)
def test_a_member_id_no_path_can_carry_is_refused_everywhere_it_is_given(client, keys, member_id):
    admin, storefront = keys["admin"], keys["storefront"]
    before = row_counts()
    body = refused(
        client.post("/v1/members", json={"id": member_id, "email": "p@example.com"},
                    headers=admin),
        "id",
    )  # fmt: skip
    assert "printable" in body["errors"]["id"][0] and "/" in body["errors"]["id"][0]
    event = f.paid(member_id, order_id="o_p", event_id="e_p", email="p@example.com")
    refused(client.post("/v1/events", json=event, headers=storefront), "order", "customer_id")
    token = {"customer_id": member_id}
    refused(client.post("/v1/widget-tokens", json=token, headers=storefront), "customer_id")
    assert row_counts() == before


CARRIABLE_IDS = ["shopify:123", "woocommerce:9", "Ann.Lee+vip@example.com", "a?b#c%d&e=f",
                 "with space", "ünïcödé-名前", "...", ".hidden", "a..b"]  # fmt: skip


@pytest.mark.parametrize("member_id", CARRIABLE_IDS)
def test_every_accepted_member_id_can_be_read_and_erased_by_its_path(client, admin, member_id):
    created = client.post("/v1/members", json={"id": member_id, "email": "z@example.com"},
                          headers=admin)  # fmt: skip
    assert created.status_code == 201, created.get_data(as_text=True)
    path = "/v1/members/" + quote(member_id, safe="")
    assert client.get(path, headers=admin).json["id"] == member_id
    assert client.get(path + "/activity", headers=admin).status_code == 200
    assert client.delete(path, headers=admin).status_code == 204
    assert client.get(path, headers=admin).status_code == 404


def test_ids_other_than_member_ids_keep_their_rules(client, storefront):
    # Order ids and SKUs are never path segments here: a slash is fine in them.
    event = f.paid("c_slash_ok", order_id="2026/11/ord-1", event_id="evt/1",
                   lines=[f.line(sku="TEE/RED/XL")])  # fmt: skip
    response = client.post("/v1/events", json=event, headers=storefront)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_the_rule_is_in_the_openapi_document(client):
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    member_id = next(s for n, s in schemas.items() if n.startswith("MemberCreate"))["properties"]
    assert "/" in member_id["id"]["description"]
