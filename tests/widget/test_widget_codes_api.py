"""The widget's reward codes (list, cancel) and gift card balance check: one member per token,
points back on cancel, and the gift card code counts and lockout of `/v1/gift-cards/lookup`."""

import secrets
import time

import pytest

from loyalty import ratelimit
from tests.conftest import bearer
from tests.giftcards.helpers import issue
from tests.widget.test_widget_api import create_reward, enroll, give_points, mint


@pytest.fixture(autouse=True)
def _fresh_rate_limits(request):
    """The shared `app`'s rate limit counters outlive a test: reset them after each that uses
    it (asking for `app` only then, so the PostgreSQL-only test runs once)."""
    app = request.getfixturevalue("app") if "app" in request.fixturenames else None
    yield
    if app is not None:
        ratelimit.reset(app)


@pytest.fixture
def shoppers(client, storefront, admin):
    """Ana and Ben, 1,000 points each; a token for each."""
    tokens = {}
    for customer in ("ana", "ben"):
        enroll(client, storefront, customer)
        give_points(client, admin, customer, 1000)
        tokens[customer] = bearer(mint(client, storefront, customer))
    return tokens


def redeem(client, token, reward_id):
    response = client.post("/v1/me/redemptions", json={"reward_id": reward_id}, headers=token)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def available(client, token):
    return client.get("/v1/me", headers=token).get_json()["points"]["available"]


# --- past reward codes ------------------------------------------------------------------------


def test_my_codes_list_only_mine_newest_first_with_status(client, admin, shoppers):
    reward = create_reward(client, admin, "5 off", 100)
    first = redeem(client, shoppers["ana"], reward["id"])
    second = redeem(client, shoppers["ana"], reward["id"])
    redeem(client, shoppers["ben"], reward["id"])
    response = client.get("/v1/me/redemptions", headers=shoppers["ana"])
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [i["id"] for i in items] == [second["id"], first["id"]]
    assert {i["status"] for i in items} == {"issued"}
    assert all(i["expires_at"] and i["code"] and i["points_spent"] == 100 for i in items)
    paged = client.get("/v1/me/redemptions?limit=1", headers=shoppers["ana"]).get_json()
    assert [i["id"] for i in paged["items"]] == [second["id"]]
    rest = client.get(
        f"/v1/me/redemptions?limit=1&cursor={paged['next_cursor']}", headers=shoppers["ana"]
    ).get_json()
    assert [i["id"] for i in rest["items"]] == [first["id"]]


def test_i_cancel_my_unused_code_and_my_points_return_once(client, admin, shoppers):
    reward = create_reward(client, admin, "5 off", 300)
    code = redeem(client, shoppers["ana"], reward["id"])
    assert available(client, shoppers["ana"]) == 700
    url = f"/v1/me/redemptions/{code['id']}/cancel"
    response = client.post(url, json={}, headers=shoppers["ana"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "canceled" and body["points_returned"] == 300
    assert available(client, shoppers["ana"]) == 1000
    again = client.post(url, json={}, headers=shoppers["ana"])
    assert again.status_code == 409
    assert again.get_json()["type"] == "conflict"
    assert available(client, shoppers["ana"]) == 1000
    listed = client.get("/v1/me/redemptions", headers=shoppers["ana"]).get_json()["items"]
    assert [i["status"] for i in listed] == ["canceled"]


def test_another_members_token_cannot_cancel_or_see_my_code(client, admin, shoppers):
    reward = create_reward(client, admin, "5 off", 300)
    code = redeem(client, shoppers["ana"], reward["id"])
    response = client.post(
        f"/v1/me/redemptions/{code['id']}/cancel", json={}, headers=shoppers["ben"]
    )
    assert response.status_code == 404
    assert response.get_json()["type"] == "not-found"
    assert client.get("/v1/me/redemptions", headers=shoppers["ben"]).get_json()["items"] == []
    assert available(client, shoppers["ana"]) == 700
    assert available(client, shoppers["ben"]) == 1000
    codes = client.get("/v1/members/ana/redemptions", headers=admin).get_json()["items"]
    assert [c["status"] for c in codes] == ["issued"]


def test_a_used_code_cannot_be_canceled(client, admin, storefront, shoppers):
    reward = create_reward(client, admin, "5 off", 300)
    code = redeem(client, shoppers["ana"], reward["id"])
    event = {
        "id": f"evt-{time.time_ns()}", "type": "order.paid", "occurred_at": "2026-12-01T10:00:00Z",
        "order": {"id": f"o-{time.time_ns()}", "customer_id": "ana", "currency": "USD",
                  "reward_codes": [code["code"]],
                  "lines": [{"sku": "A", "quantity": 1, "unit_price": 4000}]},
    }  # fmt: skip
    assert client.post("/v1/events", json=event, headers=storefront).status_code == 200
    response = client.post(
        f"/v1/me/redemptions/{code['id']}/cancel", json={}, headers=shoppers["ana"]
    )
    assert response.status_code == 409
    assert response.get_json()["code_status"] == "used"


def test_cancel_refuses_a_body_and_needs_a_widget_token(client, admin, storefront, shoppers):
    reward = create_reward(client, admin, "5 off", 300)
    code = redeem(client, shoppers["ana"], reward["id"])
    url = f"/v1/me/redemptions/{code['id']}/cancel"
    assert client.post(url, json={"customer_id": "ben"}, headers=shoppers["ana"]).status_code == 422
    assert client.post(url, json={}).status_code == 401
    assert client.post(url, json={}, headers=storefront).status_code in (401, 403)
    assert available(client, shoppers["ana"]) == 700


def test_cancels_count_against_the_redeem_allowance(client, admin, shoppers, app, monkeypatch):
    monkeypatch.setitem(app.config, "WIDGET_REDEEM_RATE_LIMIT", "2/minute")
    reward = create_reward(client, admin, "1 off", 10)
    code = redeem(client, shoppers["ana"], reward["id"])
    redeem(client, shoppers["ana"], reward["id"])
    response = client.post(
        f"/v1/me/redemptions/{code['id']}/cancel", json={}, headers=shoppers["ana"]
    )
    assert response.status_code == 429
    assert available(client, shoppers["ana"]) == 980


# --- gift card balance ------------------------------------------------------------------------


def wrong_code() -> str:
    return "0000-0000-0000-" + secrets.token_hex(2).upper().replace("A", "B")


def check(client, token, code, ip):
    return client.post(
        "/v1/me/gift-card-lookup",
        json={"code": code},
        headers=token,
        environ_base={"REMOTE_ADDR": ip},
    )


def test_my_gift_card_balance_shows_what_lookup_shows(client, admin, storefront, shoppers):
    card = issue(client, admin, amount=2500)
    response = check(client, shoppers["ana"], card["code"], "198.51.100.7")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (
        body
        == client.post(
            "/v1/gift-cards/lookup", json={"code": card["code"]}, headers=storefront
        ).get_json()
    )
    assert body["balance"] == 2500 and body["last4"] == card["code"][-4:]
    assert set(body) == {"last4", "balance", "currency", "status", "expires_at"}


def test_wrong_malformed_and_disabled_codes_get_the_same_answer(client, admin, shoppers):
    card = issue(client, admin, amount=2500)
    assert (
        client.post(f"/v1/gift-cards/{card['id']}/disable", json={}, headers=admin).status_code
        == 200
    )
    answers = [
        check(client, shoppers["ana"], code, "198.51.100.8")
        for code in (wrong_code(), "not a code", card["code"])
    ]
    assert {r.status_code for r in answers} == {404}
    assert len({r.get_data() for r in answers}) == 1


def test_ten_wrong_codes_lock_the_shoppers_address_out(client, admin, shoppers):
    card = issue(client, admin, amount=2500)
    ip = "198.51.100.9"
    statuses = [check(client, shoppers["ana"], wrong_code(), ip).status_code for _ in range(11)]
    assert statuses == [404] * 10 + [429]
    locked = check(client, shoppers["ana"], card["code"], ip)
    assert locked.status_code == 429 and locked.get_json()["type"] == "rate-limited"
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    # Another member's token from the same address is locked out too: it is the address...
    assert check(client, shoppers["ben"], card["code"], ip).status_code == 429
    # ...while another shopper's address is not.
    assert check(client, shoppers["ben"], card["code"], "198.51.100.10").status_code == 200


def test_widget_and_storefront_lookups_share_the_shoppers_count(
    client, admin, storefront, shoppers
):
    card = issue(client, admin, amount=2500)
    ip = "198.51.100.11"
    for _ in range(10):
        response = client.post(
            "/v1/gift-cards/lookup", json={"code": wrong_code(), "ip": ip}, headers=storefront
        )
        assert response.status_code == 404
    assert check(client, shoppers["ana"], card["code"], ip).status_code == 429


def test_gift_card_checks_need_a_widget_token_and_a_code(client, admin, shoppers):
    card = issue(client, admin, amount=2500)
    assert client.post("/v1/me/gift-card-lookup", json={"code": card["code"]}).status_code == 401
    ip_given = client.post(
        "/v1/me/gift-card-lookup",
        json={"code": card["code"], "ip": "203.0.113.1"},
        headers=shoppers["ana"],
    )
    assert ip_given.status_code == 422  # the address counted is the request's, never a field
    assert check(client, shoppers["ana"], "", "198.51.100.12").status_code == 422


# --- PostgreSQL, many connections -------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.concurrency
def test_canceling_my_code_from_many_connections_returns_its_points_once(pg_app, pg_keys):
    from concurrent.futures import ThreadPoolExecutor

    from tests.rewards.helpers import make_member, make_reward
    from tests.rewards.test_concurrency import assert_ledger_clean

    client = pg_app.test_client()
    make_member(client, pg_keys["admin"], "c_widget_race", points=1000)
    reward = make_reward(client, pg_keys["admin"])
    token = bearer(mint(client, pg_keys["storefront"], "c_widget_race"))
    code = redeem(client, token, reward["id"])
    assert available(client, token) == 1000 - code["points_spent"]

    def cancel(i):
        # The shopper's double click and the storefront's own cancel, all at once.
        if i % 4 == 3:
            url, headers = f"/v1/redemptions/{code['id']}/cancel", pg_keys["storefront"]
        else:
            url, headers = f"/v1/me/redemptions/{code['id']}/cancel", token
        return pg_app.test_client().post(url, json={}, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(cancel, range(8)))
    assert sorted(statuses) == [200] + [409] * 7
    assert available(client, token) == 1000  # the points came back once
    assert_ledger_clean(pg_app)
