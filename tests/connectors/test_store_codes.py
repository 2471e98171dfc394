"""Reward codes become the store's discount codes: the outbox written with the redemption, the
`sync-store-codes` job against local fakes of Shopify's Admin GraphQL API and WooCommerce's REST
coupons, and the code coming back on a paid order."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from connectors.discounts import PlatformCodeTask
from loyalty.codes import normalize_code
from loyalty.config import ConfigError, store_code_settings
from loyalty.members.models import Member
from rewards.catalog import service
from tests import factories as f
from tests.connectors.fake_platforms import (
    SHOPIFY_TOKEN,
    THROTTLED,
    WOO_KEY,
    WOO_SECRET,
    FakeShopify,
    FakeWooCommerce,
)
from tests.rewards.helpers import make_member, make_reward, redeem

_PLATFORM_CONFIG = (
    "SHOPIFY_SHOP", "SHOPIFY_ADMIN_TOKEN", "SHOPIFY_API_BASE", "WOOCOMMERCE_URL",
    "WOOCOMMERCE_KEY", "WOOCOMMERCE_SECRET", "STORE_CODES_MAX_ATTEMPTS",
)  # fmt: skip


@pytest.fixture
def restore_config(app):
    before = {name: app.config[name] for name in _PLATFORM_CONFIG}
    yield app.config
    app.config.update(before)


@pytest.fixture
def shopify(app, restore_config):
    with FakeShopify() as fake:
        app.config.update(
            SHOPIFY_SHOP="example.myshopify.com",
            SHOPIFY_ADMIN_TOKEN=SHOPIFY_TOKEN,
            SHOPIFY_API_BASE=fake.url,
        )
        yield fake


@pytest.fixture
def woo(app, restore_config):
    with FakeWooCommerce() as fake:
        app.config.update(
            WOOCOMMERCE_URL=fake.url, WOOCOMMERCE_KEY=WOO_KEY, WOOCOMMERCE_SECRET=WOO_SECRET
        )
        yield fake


def sync(runner, at: datetime | None = None) -> None:
    f.run_job(runner, "sync-store-codes", at or datetime.now(UTC) + timedelta(seconds=1))


def redeemed(client, admin, storefront, points=5000, **reward):
    make_member(client, admin, points=points)
    made = make_reward(client, admin, **reward)
    response = redeem(client, storefront, "c_1", made["id"])
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def listed(client, storefront) -> dict:
    items = client.get("/v1/members/c_1/redemptions", headers=storefront).get_json()["items"]
    return {item["id"]: item for item in items}


def task(session, code_id, action="create") -> PlatformCodeTask:
    session.expire_all()
    return session.scalar(
        select(PlatformCodeTask).where(
            PlatformCodeTask.reward_code_id == code_id, PlatformCodeTask.action == action
        )
    )


# --- Shopify ------------------------------------------------------------------------------------


def test_redemption_becomes_a_one_time_shopify_discount_after_the_job(
    client, admin, storefront, runner, shopify
):
    body = redeemed(client, admin, storefront, amount=1000, min_order=2000, code_valid_days=30)
    assert body["platform"] == {"name": "shopify", "status": "pending"}
    assert shopify.requests == []  # nothing is sent from the request itself

    sync(runner)
    [sent] = shopify.mutations("discountCodeBasicCreate")
    assert sent["path"] == "/admin/api/2026-01/graphql.json"
    assert sent["headers"]["X-Shopify-Access-Token"] == SHOPIFY_TOKEN
    values = sent["json"]["variables"]["basicCodeDiscount"]
    assert values["code"] == body["code"]
    assert values["usageLimit"] == 1 and values["appliesOncePerCustomer"] is True
    assert values["customerGets"] == {
        "value": {"discountAmount": {"amount": "10.00", "appliesOnEachItem": False}},
        "items": {"all": True},
    }
    assert values["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "20.00"}}
    assert values["context"] == {"all": "ALL"}
    assert datetime.fromisoformat(values["endsAt"]) == datetime.fromisoformat(body["expires_at"])
    assert datetime.fromisoformat(values["startsAt"]) == datetime.fromisoformat(body["created_at"])
    assert listed(client, storefront)[body["id"]]["platform"] == {
        "name": "shopify",
        "status": "created",
    }
    sync(runner)  # done is done: nothing is sent twice
    assert len(shopify.requests) == 1


def test_percent_and_free_shipping_take_their_own_shopify_shapes(
    client, admin, storefront, runner, shopify
):
    percent = redeemed(client, admin, storefront, kind="percent_off", amount=None, percent=15)
    ship = make_reward(client, admin, name="Ship", kind="free_shipping", amount=None)
    shipping = redeem(client, storefront, "c_1", ship["id"]).get_json()
    sample = make_reward(client, admin, name="S", kind="free_product", amount=None, sku="SMP")
    product = redeem(client, storefront, "c_1", sample["id"]).get_json()
    sync(runner)
    basic = shopify.by_code(percent["code"])
    assert basic["mutation"] == "discountCodeBasicCreate"
    assert basic["input"]["customerGets"]["value"] == {"percentage": 0.15}
    free = shopify.by_code(shipping["code"])
    assert free["mutation"] == "discountCodeFreeShippingCreate"
    assert free["input"]["destination"] == {"all": True}
    assert free["input"]["usageLimit"] == 1 and "customerGets" not in free["input"]
    assert "minimumRequirement" not in free["input"]
    # A free product has no equivalent there: no discount, and no platform state.
    assert shopify.by_code(product["code"]) is None and "platform" not in product
    views = listed(client, storefront)
    assert views[shipping["id"]]["platform"]["status"] == "created"
    assert "platform" not in views[product["id"]]


def test_cancel_deletes_the_shopify_discount(client, admin, storefront, runner, shopify, session):
    body = redeemed(client, admin, storefront)
    sync(runner)
    node_id = task(session, body["id"]).platform_id
    assert node_id in shopify.discounts
    canceled = client.post(f"/v1/redemptions/{body['id']}/cancel", json={}, headers=storefront)
    assert canceled.status_code == 200
    assert shopify.mutations("discountCodeDelete") == []  # after the commit, from the job
    sync(runner)
    [sent] = shopify.mutations("discountCodeDelete")
    assert sent["json"]["variables"] == {"id": node_id}
    assert shopify.discounts == {}
    assert task(session, body["id"], "delete").status == "done"


def test_a_code_canceled_before_the_job_never_reaches_shopify(
    client, admin, storefront, runner, shopify, session
):
    body = redeemed(client, admin, storefront)
    client.post(f"/v1/redemptions/{body['id']}/cancel", json={}, headers=storefront)
    sync(runner)
    assert shopify.requests == []
    assert task(session, body["id"]).status == "canceled"
    assert "platform" not in listed(client, storefront)[body["id"]]


def test_expiry_deletes_the_shopify_discount(client, admin, storefront, runner, shopify, session):
    redeemed(client, admin, storefront, code_valid_days=1)
    sync(runner)
    later = datetime.now(UTC) + timedelta(days=2)
    f.run_job(runner, "expire-codes", later)
    f.run_job(runner, "sync-store-codes", later)
    assert len(shopify.mutations("discountCodeDelete")) == 1 and shopify.discounts == {}


def test_a_429_is_tried_again_after_retry_after_and_not_before(
    client, admin, storefront, runner, shopify, session
):
    body = redeemed(client, admin, storefront)
    shopify.answers.append(
        (429, {"Retry-After": "30.0"}, {"errors": "Exceeded 2 calls per second"})
    )
    now = datetime.now(UTC) + timedelta(seconds=1)
    sync(runner, now)
    row = task(session, body["id"])
    assert (row.status, row.attempts) == ("pending", 0)  # slowing down is not a failed attempt
    sync(runner, now + timedelta(seconds=29))
    assert len(shopify.requests) == 1
    sync(runner, now + timedelta(seconds=31))
    assert len(shopify.requests) == 2 and task(session, body["id"]).status == "done"


@pytest.mark.parametrize("wait", ["inf", "nan", "1e12"])
def test_a_retry_after_out_of_range_waits_the_longest_backoff_not_forever(
    client, admin, storefront, runner, shopify, session, app, monkeypatch, wait
):
    """A Retry-After no date can hold (or no number at all) crashed the job with the task
    still claimed; it is held to STORE_CODES_RETRY_MAX_SECONDS."""
    monkeypatch.setitem(app.config, "STORE_CODES_RETRY_MAX_SECONDS", 600.0)
    body = redeemed(client, admin, storefront)
    shopify.answers.append((429, {"Retry-After": wait}, {"errors": "Exceeded"}))
    now = datetime.now(UTC) + timedelta(seconds=1)
    sync(runner, now)
    row = task(session, body["id"])
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.next_attempt_at <= now + timedelta(seconds=600)
    sync(runner, now + timedelta(seconds=601))
    assert task(session, body["id"]).status == "done"


def test_graphql_throttled_waits_for_the_cost_to_be_restored(
    client, admin, storefront, runner, shopify, session
):
    body = redeemed(client, admin, storefront)
    shopify.answers.append((200, {}, THROTTLED))  # 10 points wanted, 0 there, 2 a second back
    now = datetime.now(UTC) + timedelta(seconds=1)
    sync(runner, now)
    sync(runner, now + timedelta(seconds=4))
    assert len(shopify.requests) == 1
    assert listed(client, storefront)[body["id"]]["platform"]["status"] == "pending"
    sync(runner, now + timedelta(seconds=5))
    assert task(session, body["id"]).status == "done"


def test_user_errors_fail_the_code_with_shopify_s_words(
    client, admin, storefront, runner, shopify, session
):
    body = redeemed(client, admin, storefront)
    refused = {
        "codeDiscountNode": None,
        "userErrors": [{"field": ["basicCodeDiscount", "endsAt"], "code": "INVALID",
                        "message": "Ends at needs to be after starts_at"}],
    }  # fmt: skip
    shopify.answers.append((200, {}, {"data": {"discountCodeBasicCreate": refused}}))
    sync(runner)
    platform = listed(client, storefront)[body["id"]]["platform"]
    assert platform == {
        "name": "shopify",
        "status": "failed",
        "error": "Shopify: basicCodeDiscount.endsAt: Ends at needs to be after starts_at (INVALID)",
    }
    sync(runner, datetime.now(UTC) + timedelta(days=1))  # final: never tried again
    assert len(shopify.requests) == 1


def test_a_shopify_discount_created_by_a_lost_attempt_is_taken_over(
    client, admin, storefront, runner, shopify, session
):
    body = redeemed(client, admin, storefront)
    node_id = "gid://shopify/DiscountCodeNode/999"
    shopify.discounts[node_id] = {"id": node_id, "mutation": "discountCodeBasicCreate",
                                  "input": {"code": body["code"]}}  # fmt: skip
    sync(runner)
    assert [list(r["json"]["variables"]) for r in shopify.requests] == [
        ["basicCodeDiscount"],  # answered TAKEN
        ["code"],  # codeDiscountNodeByCode
    ]
    assert task(session, body["id"]).platform_id == node_id
    assert listed(client, storefront)[body["id"]]["platform"]["status"] == "created"


def test_server_errors_back_off_then_give_up(client, admin, storefront, runner, shopify, session):
    shopify_config = client.application.config
    shopify_config["STORE_CODES_MAX_ATTEMPTS"] = 2
    body = redeemed(client, admin, storefront)
    shopify.answers += [(503, {}, {"errors": "Service unavailable"})] * 2
    now = datetime.now(UTC) + timedelta(seconds=1)
    sync(runner, now)
    row = task(session, body["id"])
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "Shopify: HTTP 503")
    sync(runner, now + timedelta(seconds=29))  # backoff: STORE_CODES_RETRY_SECONDS = 30
    assert len(shopify.requests) == 1
    sync(runner, now + timedelta(seconds=31))
    assert listed(client, storefront)[body["id"]]["platform"] == {
        "name": "shopify",
        "status": "failed",
        "error": "Shopify: HTTP 503",
    }


def test_a_rolled_back_redemption_never_reaches_shopify(
    client, admin, storefront, runner, shopify, session
):
    make_member(client, admin, points=5000)
    reward = make_reward(client, admin)
    member = session.scalar(select(Member).where(Member.customer_id == "c_1"))
    with pytest.raises(RuntimeError), session.begin_nested():
        service.redeem(session, member, reward["id"])
        assert session.scalar(select(func.count()).select_from(PlatformCodeTask)) == 1
        raise RuntimeError("the redeeming transaction fails after the code was written")
    assert session.scalar(select(func.count()).select_from(PlatformCodeTask)) == 0
    sync(runner)
    assert shopify.requests == []


def test_no_platform_configured_changes_nothing(client, admin, storefront, runner, session):
    body = redeemed(client, admin, storefront)
    assert "platform" not in body
    assert session.scalar(select(func.count()).select_from(PlatformCodeTask)) == 0
    sync(runner)


# --- WooCommerce ---------------------------------------------------------------------------------


def test_redemption_becomes_a_woocommerce_coupon_and_is_deleted_on_cancel(
    client, admin, storefront, runner, woo, session
):
    body = redeemed(client, admin, storefront, amount=1250, min_order=3000, code_valid_days=10)
    assert body["platform"] == {"name": "woocommerce", "status": "pending"}
    sync(runner)
    [sent] = woo.requests
    assert (sent["method"], sent["path"]) == ("POST", "/wp-json/wc/v3/coupons")
    assert sent["headers"]["Authorization"].startswith("Basic ")
    coupon = sent["json"]
    assert coupon["code"] == body["code"]
    assert (coupon["discount_type"], coupon["amount"]) == ("fixed_cart", "12.50")
    assert (coupon["usage_limit"], coupon["free_shipping"], coupon["minimum_amount"]) == (
        1,
        False,
        "30.00",
    )
    expires = datetime.fromisoformat(body["expires_at"]).astimezone(UTC)
    assert coupon["date_expires_gmt"] == expires.strftime("%Y-%m-%dT%H:%M:%S")
    assert listed(client, storefront)[body["id"]]["platform"]["status"] == "created"
    coupon_id = task(session, body["id"]).platform_id
    assert int(coupon_id) in woo.coupons

    client.post(f"/v1/redemptions/{body['id']}/cancel", json={}, headers=storefront)
    sync(runner)
    assert (woo.requests[-1]["method"], woo.requests[-1]["path"]) == (
        "DELETE",
        f"/wp-json/wc/v3/coupons/{coupon_id}?force=true",
    )
    assert woo.coupons == {}


def test_woocommerce_percent_and_free_shipping(client, admin, storefront, runner, woo):
    percent = redeemed(client, admin, storefront, kind="percent_off", amount=None, percent=20)
    ship = make_reward(client, admin, name="Ship", kind="free_shipping", amount=None)
    shipping = redeem(client, storefront, "c_1", ship["id"]).get_json()
    sync(runner)
    made = woo.by_code(percent["code"])
    assert (made["discount_type"], made["amount"], made["free_shipping"]) == (
        "percent",
        "20",
        False,
    )
    free = woo.by_code(shipping["code"])
    assert (free["discount_type"], free["amount"], free["free_shipping"]) == (
        "fixed_cart",
        "0",
        True,
    )


def test_woocommerce_rate_limit_then_refusal(client, admin, storefront, runner, woo, session):
    body = redeemed(client, admin, storefront)
    woo.answers.append((429, {"Retry-After": "60"}, {"code": "rate_limited", "message": "Slow"}))
    now = datetime.now(UTC) + timedelta(seconds=1)
    sync(runner, now)
    sync(runner, now + timedelta(seconds=59))
    assert len(woo.requests) == 1
    sync(runner, now + timedelta(seconds=61))
    assert task(session, body["id"]).status == "done"

    # Another code that the shop refuses (one of its own holds it) and that is not ours.
    other = redeem(client, storefront, "c_1", body["reward"]["id"]).get_json()
    woo.answers.append(
        (400, {}, {"code": "woocommerce_rest_coupon_code_already_exists",
                   "message": "The coupon code already exists", "data": {"status": 400}})
    )  # fmt: skip
    sync(runner, now + timedelta(seconds=62))
    assert listed(client, storefront)[other["id"]]["platform"] == {
        "name": "woocommerce",
        "status": "failed",
        "error": "WooCommerce: The coupon code already exists"
        " (woocommerce_rest_coupon_code_already_exists)",
    }


def test_a_coupon_created_by_a_lost_attempt_is_taken_over(
    client, admin, storefront, runner, woo, session
):
    body = redeemed(client, admin, storefront)
    woo.coupons[7] = {"id": 7, "code": body["code"].lower()}  # our earlier, unanswered attempt
    sync(runner)
    assert task(session, body["id"]).platform_id == "7"
    assert listed(client, storefront)[body["id"]]["platform"]["status"] == "created"


def test_the_code_on_a_paid_woocommerce_order_is_consumed_once(
    client, admin, storefront, runner, woo, session
):
    body = redeemed(client, admin, storefront, amount=1000)
    sync(runner)
    typed = woo.by_code(body["code"])["code"]  # as the order's coupon_lines report it
    assert typed == body["code"].lower() and normalize_code(typed) == body["code"]
    first = f.paid("c_1", lines=[f.line(unit_price=5000)], reward_codes=[typed])
    answer = client.post("/v1/events", json=first, headers=storefront).get_json()
    assert [e["kind"] for e in answer["effects"] if e["kind"].startswith("reward_code")] == [
        "reward_code_used"
    ]
    again = f.paid("c_1", lines=[f.line(unit_price=5000)], reward_codes=[typed])
    answer = client.post("/v1/events", json=again, headers=storefront).get_json()
    [rejected] = [e for e in answer["effects"] if e["kind"].startswith("reward_code")]
    assert (rejected["kind"], rejected["reason"]) == ("reward_code_rejected", "used")
    assert listed(client, storefront)[body["id"]]["status"] == "used"


def test_a_code_used_on_another_channel_is_taken_off_the_store(
    client, admin, storefront, runner, shopify, session
):
    """Used at the till (an order through `POST /v1/events`), the code would still be a live
    discount on the shop, good for a second discount there: it is deleted as an ended one is."""
    body = redeemed(client, admin, storefront, amount=1000)
    sync(runner)
    assert len(shopify.discounts) == 1
    paid = f.paid("c_1", lines=[f.line(unit_price=5000)], reward_codes=[body["code"]])
    assert client.post("/v1/events", json=paid, headers=storefront).status_code == 200
    assert task(session, body["id"], "delete").status == "pending"
    sync(runner)
    assert shopify.discounts == {}
    assert task(session, body["id"], "delete").status == "done"


# --- configuration ----------------------------------------------------------------------------


def test_woocommerce_credentials_never_go_over_plain_http():
    with pytest.raises(ConfigError):
        store_code_settings({"WOOCOMMERCE_URL": "http://shop.example.com"})
    for url in ("https://shop.example.com/", "http://127.0.0.1:8080", "http://localhost"):
        assert store_code_settings({"WOOCOMMERCE_URL": url})["WOOCOMMERCE_URL"] == url.rstrip("/")


def test_the_shopify_admin_token_goes_only_to_a_shop_over_https():
    """The token travels in a header on every call: the same rule as WOOCOMMERCE_URL's key
    pair, and a shop name that is a host name, not a way to point the client elsewhere."""
    for env in ({"SHOPIFY_API_BASE": "http://shop.example.com"},
                {"SHOPIFY_SHOP": "evil.example/x?"}, {"SHOPIFY_SHOP": "me@evil.example"},
                {"SHOPIFY_SHOP": "evil.example:8080"}):  # fmt: skip
        with pytest.raises(ConfigError):
            store_code_settings(env)
    assert store_code_settings({"SHOPIFY_SHOP": "Example.myshopify.com"})["SHOPIFY_SHOP"]
    assert (
        store_code_settings({"SHOPIFY_API_BASE": "http://127.0.0.1:8080/"})["SHOPIFY_API_BASE"]
        == "http://127.0.0.1:8080"
    )


def test_the_widget_reads_its_own_redemption_until_the_store_has_it(
    client, admin, storefront, runner, shopify
):
    body = redeemed(client, admin, storefront)
    make_member(client, admin, "c_2")

    def token(customer_id):
        minted = client.post("/v1/widget-tokens", json={"customer_id": customer_id},
                             headers=storefront)  # fmt: skip
        return {"Authorization": f"Bearer {minted.get_json()['token']}"}

    mine = client.get(f"/v1/me/redemptions/{body['id']}", headers=token("c_1"))
    assert mine.status_code == 200
    assert mine.get_json()["platform"] == {"name": "shopify", "status": "pending"}
    sync(runner)
    mine = client.get(f"/v1/me/redemptions/{body['id']}", headers=token("c_1")).get_json()
    assert (mine["code"], mine["platform"]["status"]) == (body["code"], "created")
    others = client.get(f"/v1/me/redemptions/{body['id']}", headers=token("c_2"))
    assert others.status_code == 404 and others.get_json()["type"] == "not-found"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_redirect_is_an_answer_and_the_credentials_stay_with_the_store(method):
    """The key pair and the Admin token go to the configured store only: a redirect (a moved
    site, a hijacked one) is not followed with them to wherever it points."""
    from connectors.platform_api import request_json

    with FakeWooCommerce() as store, FakeWooCommerce() as elsewhere:
        store.answers.append((302, {"Location": f"{elsewhere.url}/collect"}, {}))
        response = request_json(
            method, f"{store.url}/wp-json/wc/v3/coupons?code=R1",
            {"Authorization": "Basic Y2tfZmFrZTpjc19mYWtl"}, None, 5,
        )  # fmt: skip
        assert response.status == 302
        assert elsewhere.requests == []


# --- points at checkout -------------------------------------------------------------------------


def checkout_discount(client, admin, storefront, points=400, cart_subtotal=3000):
    terms = {"enabled": True, "value_per_point": "2.5", "min_points": 100, "step": 100,
             "max_share_of_cart": 50, "code_valid_hours": 24}  # fmt: skip
    assert (
        client.put("/v1/program", json={"checkout_points": terms}, headers=admin).status_code == 200
    )
    make_member(client, admin, points=5000)
    response = client.post(
        "/v1/members/c_1/checkout-discounts",
        json={"points": points, "cart_subtotal": cart_subtotal},
        headers=storefront,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_checkout_discount_becomes_a_shopify_discount_like_any_code(
    client, admin, storefront, runner, shopify
):
    body = checkout_discount(client, admin, storefront)  # 400 points × 2.5 = 10.00 off
    assert body["platform"] == {"name": "shopify", "status": "pending"}
    sync(runner)
    values = shopify.by_code(body["code"])["input"]
    assert values["usageLimit"] == 1
    assert values["customerGets"]["value"] == {
        "discountAmount": {"amount": "10.00", "appliesOnEachItem": False}
    }
    # 10.00 is 50% of 20.00: the code asks for at least that.
    assert values["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "20.00"}}
    assert datetime.fromisoformat(values["endsAt"]) == datetime.fromisoformat(body["expires_at"])
    assert listed(client, storefront)[body["id"]]["platform"]["status"] == "created"


def test_a_checkout_discount_becomes_a_woocommerce_coupon_gone_when_it_expires(
    client, admin, storefront, runner, woo
):
    body = checkout_discount(client, admin, storefront, points=300, cart_subtotal=5000)
    sync(runner)
    coupon = woo.by_code(body["code"])
    assert (coupon["discount_type"], coupon["amount"], coupon["minimum_amount"]) == (
        "fixed_cart", "7.50", "15.00",
    )  # fmt: skip
    later = datetime.now(UTC) + timedelta(hours=25)
    f.run_job(runner, "expire-codes", later)
    sync(runner, later)
    assert woo.coupons == {}
    member = client.get("/v1/members/c_1", headers=storefront).get_json()
    assert member["points"]["available"] == 5000  # its points came back
