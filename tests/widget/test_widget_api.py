"""Widget tokens and /v1/me: one member per token, nothing else reachable, CORS, rate limits."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from loyalty.auth import WIDGET_TOKEN_SALT
from tests import factories as f
from tests.conftest import bearer

ALLOWED = "https://shop.example.com"


def enroll(client, storefront, customer_id):
    body = {"id": customer_id, "email": f"{customer_id}@example.com", "name": customer_id.upper()}
    response = client.post("/v1/members", json=body, headers=storefront)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def mint(client, storefront, customer_id):
    response = client.post(
        "/v1/widget-tokens", json={"customer_id": customer_id}, headers=storefront
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


@pytest.fixture
def two_members(client, storefront):
    """Ana with a paid order (pending points), Ben with nothing; a token for each."""
    enroll(client, storefront, "ana")
    enroll(client, storefront, "ben")
    event = f.paid("ana", lines=[f.line(unit_price=12000)])
    assert client.post("/v1/events", json=event, headers=storefront).status_code == 200
    return {"ana": mint(client, storefront, "ana"), "ben": mint(client, storefront, "ben")}


def serializer(secrets, signer=TimestampSigner, salt=WIDGET_TOKEN_SALT):
    return URLSafeTimedSerializer(secrets, salt=salt, signer=signer)


def member_pk(session, customer_id):
    from loyalty.members.service import get_member

    return get_member(session, customer_id).id


# --- minting ----------------------------------------------------------------------------------


def test_storefront_mints_a_short_lived_token_for_one_member(client, storefront, app):
    enroll(client, storefront, "ana")
    # Tokens carry their issue time in whole seconds: it lies between `before`, rounded down,
    # and `after`.
    before = datetime.now(UTC).replace(microsecond=0)
    response = client.post("/v1/widget-tokens", json={"customer_id": "ana"}, headers=storefront)
    after = datetime.now(UTC)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"token", "expires_at"}
    assert not body["token"].startswith("lk_")
    issued = datetime.fromisoformat(body["expires_at"]) - timedelta(
        seconds=app.config["WIDGET_TOKEN_MAX_AGE"]
    )
    assert before <= issued <= after
    me = client.get("/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == "ana"


@pytest.mark.parametrize(
    ("body", "status", "type_"),
    [
        ({"customer_id": "nobody"}, 404, "not-found"),
        ({}, 422, "validation-error"),
        ({"customer_id": "ana", "member_id": 1}, 422, "validation-error"),
        ({"customer_id": 7}, 422, "validation-error"),
    ],
)
def test_minting_refuses_bad_input(client, storefront, body, status, type_):
    enroll(client, storefront, "ana")
    response = client.post("/v1/widget-tokens", json=body, headers=storefront)
    assert response.status_code == status
    assert response.get_json()["type"] == type_


def test_minting_needs_a_storefront_or_admin_key(client, keys, two_members):
    body = {"customer_id": "ana"}
    assert client.post("/v1/widget-tokens", json=body).status_code == 401
    assert client.post("/v1/widget-tokens", json=body, headers=keys["reports"]).status_code == 403
    # A widget token can't mint itself a token for someone else.
    widget = bearer(two_members["ana"])
    response = client.post("/v1/widget-tokens", json={"customer_id": "ben"}, headers=widget)
    assert response.status_code == 403
    assert client.post("/v1/widget-tokens", json=body, headers=keys["admin"]).status_code == 201


# --- what a token reads ------------------------------------------------------------------------


def test_me_and_activity_show_the_token_member_only(client, two_members):
    ana = bearer(two_members["ana"])
    me = client.get("/v1/me", headers=ana).get_json()
    assert me["id"] == "ana"
    assert me["currency"] == "USD"
    assert me["points"] == {"available": 0, "pending": 120, "lifetime_earned": 120}
    assert me["tier"]["name"]
    activity = client.get("/v1/me/activity", headers=ana).get_json()
    assert [(e["kind"], e["points"]) for e in activity["items"]] == [("earn", 120)]
    ben = client.get("/v1/me/activity", headers=bearer(two_members["ben"])).get_json()
    assert ben["items"] == []


def test_activity_pages_with_a_cursor(client, storefront, two_members):
    for _ in range(2):
        event = f.paid("ana", lines=[f.line(unit_price=1000)])
        client.post("/v1/events", json=event, headers=storefront)
    ana = bearer(two_members["ana"])
    first = client.get("/v1/me/activity?limit=2", headers=ana).get_json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = client.get(f"/v1/me/activity?limit=2&cursor={first['next_cursor']}", headers=ana)
    assert [e["points"] for e in rest.get_json()["items"]] == [120]
    assert client.get("/v1/me/activity?limit=0", headers=ana).status_code == 422


def test_a_token_for_one_member_never_reaches_another(client, session, storefront, two_members):
    ana = bearer(two_members["ana"])
    # Every path that names a member takes an API key: a widget token is refused outright.
    for path in ("/v1/members/ben", "/v1/members/ben/activity", "/v1/members/ana"):
        response = client.get(path, headers=ana)
        assert response.status_code == 403, path
        assert response.get_json()["type"] == "forbidden"
    # /v1/me has no id to change: a query string naming another member is refused...
    refused = client.get("/v1/me?customer_id=ben", headers=ana)
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == {"query": {"customer_id": ["Unknown field."]}}
    assert client.get("/v1/me/ben", headers=ana).status_code == 404
    # ...and a token edited to name Ben fails its signature.
    good = serializer(["test-secret-new"]).dumps({"m": member_pk(session, "ana"), "c": "ana"})
    forged = serializer(["x"]).dumps({"m": member_pk(session, "ben"), "c": "ben"})
    edited = forged.split(".")[0] + "." + ".".join(good.split(".")[1:])
    response = client.get("/v1/me", headers=bearer(edited))
    assert response.status_code == 401
    # Ben's ledger entries are not in Ana's feed, whatever cursor is sent.
    ben_order = f.paid("ben", lines=[f.line(unit_price=3000)])
    client.post("/v1/events", json=ben_order, headers=storefront)
    far = client.get("/v1/me/activity?cursor=OTk5OTk5OTk5", headers=ana).get_json()["items"]
    assert [e["points"] for e in far] == [120]
    assert ben_order["order"]["id"] not in {e["source"]["id"] for e in far}


# --- tokens that must not work ---------------------------------------------------------------


def test_tampered_expired_and_foreign_tokens_are_401(client, session, app, two_members):
    pk = member_pk(session, "ana")
    payload = {"m": pk, "c": "ana"}
    good = two_members["ana"]
    max_age = app.config["WIDGET_TOKEN_MAX_AGE"]

    class LongAgo(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - max_age - 60

    # Edit the signature's first character: the last one of base64 carries padding bits, and
    # an edit there may decode to the very same bytes.
    payload_part, stamp, signature = good.split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    wrong_payload_ok_signature = serializer(["test-secret-new"]).dumps({"m": pk, "c": "ben"})
    cases = {
        "tampered signature": f"{payload_part}.{stamp}.{flipped}",
        "tampered payload": good.replace(
            good.split(".")[0], wrong_payload_ok_signature.split(".")[0]
        ),
        "expired": serializer(["test-secret-new"], signer=LongAgo).dumps(payload),
        "other secret": serializer(["someone-elses-secret"]).dumps(payload),
        "other purpose (salt)": serializer(["test-secret-new"], salt="other").dumps(payload),
        "garbage": "not-a-token",
        "old payload shape (member id only)": serializer(["test-secret-new"]).dumps({"m": pk}),
    }
    for name, token in cases.items():
        response = client.get("/v1/me", headers=bearer(token))
        assert response.status_code == 401, name
        assert response.get_json()["type"] == "unauthorized", name
        assert response.content_type == "application/problem+json"
    expired = client.get("/v1/me", headers=bearer(cases["expired"])).get_json()
    assert "expired" in expired["detail"]
    assert client.get("/v1/me").status_code == 401


def test_old_secret_token_reads_its_member(client, session, storefront):
    enroll(client, storefront, "ana")
    token = serializer(["test-secret-old"]).dumps({"m": member_pk(session, "ana"), "c": "ana"})
    response = client.get("/v1/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["id"] == "ana"


def test_a_token_already_accepted_still_expires_and_still_needs_a_current_secret(
    client, session, storefront, app, monkeypatch
):
    """This process remembers tokens whose signature it checked (loyalty.auth.VerifiedTokens):
    a remembered token is refused all the same once it is too old, and once the secret it
    was signed with leaves SECRET_KEYS."""
    enroll(client, storefront, "ana")
    token = mint(client, storefront, "ana")
    old_secret_token = serializer(["test-secret-old"]).dumps(
        {"m": member_pk(session, "ana"), "c": "ana"}
    )
    assert client.get("/v1/me", headers=bearer(token)).status_code == 200
    assert client.get("/v1/me", headers=bearer(old_secret_token)).status_code == 200

    max_age, now = app.config["WIDGET_TOKEN_MAX_AGE"], time.time()
    monkeypatch.setattr(time, "time", lambda: now + max_age - 5)
    assert client.get("/v1/me", headers=bearer(token)).status_code == 200  # remembered, valid
    monkeypatch.setattr(time, "time", lambda: now + max_age + 5)
    expired = client.get("/v1/me", headers=bearer(token))
    assert expired.status_code == 401
    assert "expired" in expired.get_json()["detail"]
    monkeypatch.undo()

    # Rotation done: the old secret is dropped, and tokens signed with it stop working at once.
    monkeypatch.setitem(app.config, "SECRET_KEYS", ["test-secret-new"])
    assert client.get("/v1/me", headers=bearer(old_secret_token)).status_code == 401
    assert client.get("/v1/me", headers=bearer(token)).status_code == 200


def test_remembered_tokens_are_bounded(client, session, storefront, app, monkeypatch):
    from loyalty.auth import VerifiedTokens

    monkeypatch.setattr(VerifiedTokens, "SIZE", 3)
    enroll(client, storefront, "ana")
    pk = member_pk(session, "ana")
    tokens = [
        serializer(["test-secret-new"]).dumps({"m": pk, "c": "ana", "n": n}) for n in range(5)
    ]
    for token in tokens:
        assert client.get("/v1/me", headers=bearer(token)).status_code == 200
    remembered = app.extensions["loyalty.verified_tokens"].tokens
    assert list(remembered) == tokens[2:]  # the oldest went first


def test_an_erased_or_recreated_member_is_not_reachable_with_an_old_token(
    client, admin, storefront, two_members
):
    ana = bearer(two_members["ana"])
    reward = create_reward(client, admin, "5 off", 100)
    give_points(client, admin, "ana", 100)
    redeem = {**ana, "Idempotency-Key": "before-erasure"}
    body = {"reward_id": reward["id"]}
    assert client.post("/v1/me/redemptions", json=body, headers=redeem).status_code == 201
    assert client.delete("/v1/members/ana", headers=admin).status_code == 204
    assert client.get("/v1/me", headers=ana).status_code == 401
    # Not even a replay of its own earlier answer (which carried the reward code).
    replay = client.post("/v1/me/redemptions", json=body, headers=redeem)
    assert replay.status_code == 401
    assert "code" not in replay.get_json()
    enroll(client, storefront, "ana")  # a new member under the same customer id
    response = client.get("/v1/me", headers=ana)
    assert response.status_code == 401
    fresh = bearer(mint(client, storefront, "ana"))
    assert client.get("/v1/me", headers=fresh).get_json()["points"]["lifetime_earned"] == 0


# --- a widget token is not an API key, and the reverse -------------------------------------------


def test_a_widget_token_gets_403_on_admin_and_storefront_endpoints(client, two_members):
    ana = bearer(two_members["ana"])
    calls = [
        ("get", "/v1/program", None),
        ("put", "/v1/program", {"widget_origins": ["https://evil.example"]}),
        ("post", "/v1/members/ana/adjustments", {"points": 1000, "reason": "free points"}),
        ("delete", "/v1/members/ben", None),
        ("post", "/v1/members", {"id": "eve", "email": "eve@example.com"}),
        ("post", "/v1/events", f.paid("ana")),
    ]
    for method, path, body in calls:
        response = getattr(client, method)(path, json=body, headers=ana)
        assert response.status_code == 403, (method, path)
        assert response.get_json()["type"] == "forbidden"
    assert client.get("/v1/me", headers=ana).get_json()["points"]["available"] == 0


def test_api_keys_are_refused_on_me(client, keys):
    for scope in ("admin", "storefront", "reports"):
        response = client.get("/v1/me", headers=keys[scope])
        assert response.status_code == 403, scope


# --- CORS ------------------------------------------------------------------------------------


def set_origins(client, admin, origins):
    program = client.get("/v1/program", headers=admin).get_json()
    program["widget_origins"] = origins
    response = client.put("/v1/program", json=program, headers=admin)
    assert response.status_code == 200, response.get_json()


def test_cors_answers_only_the_program_widget_origins(client, admin, two_members):
    set_origins(client, admin, [ALLOWED])
    ana = bearer(two_members["ana"])
    allowed = client.get("/v1/me", headers={**ana, "Origin": ALLOWED})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in allowed.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    other = client.get("/v1/me", headers={**ana, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Origin" in other.headers["Vary"]
    # Errors reach the allowed page too, so the widget can tell an expired token from a network
    # failure.
    expired = client.get("/v1/me", headers={**bearer("bad"), "Origin": ALLOWED})
    assert expired.status_code == 401
    assert expired.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_cors_preflight(client, admin):
    set_origins(client, admin, [ALLOWED])
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}  # fmt: skip
    ok = client.options("/v1/me/activity", headers={**preflight, "Origin": ALLOWED})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert "authorization" in ok.headers["Access-Control-Allow-Headers"].lower()
    refused = client.options("/v1/me", headers={**preflight, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Methods" not in refused.headers


def test_cors_origins_are_read_per_request(client, admin, two_members):
    ana = {**bearer(two_members["ana"]), "Origin": ALLOWED}
    set_origins(client, admin, [])
    assert "Access-Control-Allow-Origin" not in client.get("/v1/me", headers=ana).headers
    set_origins(client, admin, [ALLOWED])
    assert client.get("/v1/me", headers=ana).headers["Access-Control-Allow-Origin"] == ALLOWED


def test_no_cors_on_server_side_endpoints(client, admin, storefront):
    set_origins(client, admin, [ALLOWED])
    enroll(client, storefront, "ana")
    headers = {**storefront, "Origin": ALLOWED}
    minted = client.post("/v1/widget-tokens", json={"customer_id": "ana"}, headers=headers)
    assert minted.status_code == 201
    assert "Access-Control-Allow-Origin" not in minted.headers
    member = client.get("/v1/members/ana", headers=headers)
    assert "Access-Control-Allow-Origin" not in member.headers


# --- rate limits -----------------------------------------------------------------------------


def test_widget_endpoints_are_rate_limited_per_member(client, admin, storefront, app, monkeypatch):
    set_origins(client, admin, [ALLOWED])
    monkeypatch.setitem(app.config, "WIDGET_RATE_LIMIT", "3/minute")
    # Customer ids unique to this run: counters live as long as the app.
    stamp = str(time.time_ns())
    enroll(client, storefront, f"rl-a-{stamp}")
    enroll(client, storefront, f"rl-b-{stamp}")
    first = bearer(mint(client, storefront, f"rl-a-{stamp}"))
    second = bearer(mint(client, storefront, f"rl-b-{stamp}"))
    statuses = [client.get("/v1/me", headers=first).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = client.get("/v1/me/activity", headers={**first, "Origin": ALLOWED})
    assert limited.status_code == 429
    assert limited.get_json()["type"] == "rate-limited"
    assert int(limited.headers["Retry-After"]) > 0
    # The widget's page can read the answer and when to retry.
    assert limited.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Retry-After" in limited.headers["Access-Control-Expose-Headers"]
    # Another member's token has its own allowance.
    assert client.get("/v1/me", headers=second).status_code == 200


def test_widget_reads_say_how_much_of_the_allowance_is_left(client, storefront, app, monkeypatch):
    monkeypatch.setitem(app.config, "WIDGET_RATE_LIMIT", "5/minute")
    customer = f"rl-h-{time.time_ns()}"
    enroll(client, storefront, customer)
    token = bearer(mint(client, storefront, customer))
    first = client.get("/v1/me", headers=token)
    second = client.get("/v1/me/activity", headers=token)
    assert first.headers["X-RateLimit-Limit"] == second.headers["X-RateLimit-Limit"] == "5"
    assert (first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]) == (
        "4",
        "3",
    )
    assert int(first.headers["X-RateLimit-Reset"]) > time.time()
    assert 0 <= int(first.headers["Retry-After"]) <= 60
    for _ in range(3):
        client.get("/v1/me", headers=token)
    limited = client.get("/v1/me", headers=token)
    assert limited.status_code == 429
    assert limited.get_json()["detail"] == "5 per 1 minute"
    assert 1 <= int(limited.headers["Retry-After"]) <= 61


def test_rate_limits_can_be_switched_off(client, storefront, monkeypatch):
    monkeypatch.setitem(client.application.config, "RATELIMIT_ENABLED", False)
    monkeypatch.setitem(client.application.config, "WIDGET_RATE_LIMIT", "1/minute")
    customer = f"rl-off-{time.time_ns()}"
    enroll(client, storefront, customer)
    token = bearer(mint(client, storefront, customer))
    assert [client.get("/v1/me", headers=token).status_code for _ in range(3)] == [200] * 3


# --- rewards through the widget ----------------------------------------------------------------


def create_reward(client, admin, name, points_cost):
    body = {"name": name, "kind": "amount_off", "amount": 500, "points_cost": points_cost,
            "code_valid_days": 30}  # fmt: skip
    response = client.post("/v1/rewards", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def give_points(client, admin, customer_id, points):
    body = {"points": points, "reason": "test"}
    response = client.post(f"/v1/members/{customer_id}/adjustments", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()


def test_my_rewards_say_what_the_member_can_afford(client, admin, two_members):
    cheap = create_reward(client, admin, "5 off", 100)
    dear = create_reward(client, admin, "50 off", 1000)
    give_points(client, admin, "ana", 500)
    response = client.get("/v1/me/rewards", headers=bearer(two_members["ana"]))
    assert response.status_code == 200
    flags = {item["id"]: item["affordable"] for item in response.get_json()["items"]}
    assert flags[cheap["id"]] is True
    assert flags[dear["id"]] is False
    bens = client.get("/v1/me/rewards", headers=bearer(two_members["ben"])).get_json()["items"]
    assert not any(item["affordable"] for item in bens)


def test_my_redemption_spends_my_points_once_and_shows_the_code(client, admin, two_members):
    reward = create_reward(client, admin, "5 off", 300)
    give_points(client, admin, "ana", 500)
    give_points(client, admin, "ben", 500)
    ana = {**bearer(two_members["ana"]), "Idempotency-Key": "redeem-1"}
    first = client.post("/v1/me/redemptions", json={"reward_id": reward["id"]}, headers=ana)
    assert first.status_code == 201, first.get_json()
    code = first.get_json()["code"]
    assert code
    again = client.post("/v1/me/redemptions", json={"reward_id": reward["id"]}, headers=ana)
    assert again.status_code == 201
    assert again.get_json()["code"] == code  # a retried click is replayed, not charged twice
    me = client.get("/v1/me", headers=bearer(two_members["ana"])).get_json()
    assert me["points"]["available"] == 200
    feed = client.get("/v1/me/activity", headers=bearer(two_members["ana"])).get_json()["items"]
    assert [(e["kind"], e["points"]) for e in feed[:1]] == [("redeem", -300)]
    ben = client.get("/v1/me", headers=bearer(two_members["ben"])).get_json()
    assert ben["points"]["available"] == 500
    codes = client.get("/v1/members/ana/redemptions", headers=admin).get_json()["items"]
    assert [c["code"] for c in codes] == [code]


@pytest.mark.parametrize(
    ("body", "status", "type_"),
    [
        ("expensive", 422, "insufficient-points"),
        ({"reward_id": 999999}, 404, "not-found"),
        ({"reward_id": "1"}, 422, "validation-error"),
        ({}, 422, "validation-error"),
        ("with_member", 422, "validation-error"),
    ],
)
def test_bad_redemptions_change_nothing(client, admin, two_members, body, status, type_):
    reward = create_reward(client, admin, "50 off", 1000)
    give_points(client, admin, "ana", 500)
    if body == "expensive":
        body = {"reward_id": reward["id"]}
    elif body == "with_member":
        body = {"reward_id": reward["id"], "customer_id": "ben"}
    ana = bearer(two_members["ana"])
    response = client.post("/v1/me/redemptions", json=body, headers=ana)
    assert response.status_code == status
    assert response.get_json()["type"] == type_
    assert client.get("/v1/me", headers=ana).get_json()["points"]["available"] == 500
    assert client.get("/v1/members/ana/redemptions", headers=admin).get_json()["items"] == []


def test_redemptions_have_their_own_smaller_rate_limit(client, admin, storefront, app, monkeypatch):
    monkeypatch.setitem(app.config, "WIDGET_REDEEM_RATE_LIMIT", "2/minute")
    customer = f"rl-r-{time.time_ns()}"
    enroll(client, storefront, customer)
    give_points(client, admin, customer, 1000)
    reward = create_reward(client, admin, "1 off", 10)
    token = bearer(mint(client, storefront, customer))
    body = {"reward_id": reward["id"]}
    statuses = [client.post("/v1/me/redemptions", json=body, headers=token).status_code
                for _ in range(3)]  # fmt: skip
    assert statuses == [201, 201, 429]
    assert client.get("/v1/me", headers=token).get_json()["points"]["available"] == 980


# --- referrals through the widget --------------------------------------------------------------


def test_my_referrals_show_my_link_and_my_clicks_only(client, two_members):
    ana, ben = bearer(two_members["ana"]), bearer(two_members["ben"])
    link = client.get("/v1/me", headers=ana).get_json()["referral"]
    assert link["url"].endswith(f"/r/{link['code']}")
    assert client.get(f"/r/{link['code']}").status_code == 302
    mine = client.get("/v1/me/referrals", headers=ana)
    assert mine.status_code == 200
    body = mine.get_json()
    assert (body["code"], body["url"], body["clicks"]) == (link["code"], link["url"], 1)
    assert {"conversions", "rewards_pending", "rewards_earned", "items"} <= set(body)
    bens = client.get("/v1/me/referrals", headers=ben).get_json()
    assert bens["code"] != link["code"]
    assert bens["clicks"] == 0
    assert client.get("/v1/me/referrals?limit=201", headers=ana).status_code == 422
