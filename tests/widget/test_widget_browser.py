"""The widget in a real browser: the system Chromium, driven by Playwright, against the real app.

The app runs in a thread (werkzeug) on a freshly migrated SQLite file with the demo program
seeded, exactly what `make run` serves. Screenshots land in test-artifacts/ (gitignored).
"""

import threading
from datetime import timedelta

import pytest
from werkzeug.serving import make_server

from loyalty.auth import create_api_key
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.seed import DEMO_CUSTOMER, seed_demo_program
from loyalty.types import utcnow
from tests.conftest import ROOT, bearer, make_app, migrate

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 15_000  # an upper bound for slow machines, never a measurement


class ServerThread:
    """A WSGI app served on 127.0.0.1 on a free port, in a daemon thread."""

    def __init__(self, wsgi_app):
        self.server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


@pytest.fixture
def live(tmp_path):
    """The demo app on a migrated SQLite file, served for real; yields (app, url, headers)."""
    url = f"sqlite:///{tmp_path / 'widget.sqlite3'}"
    migrate(make_app(url))
    app = make_app(url)
    with app.app_context():
        seed_demo_program(db.session, hooks())
        _row, admin = create_api_key(db.session, "browser-admin", ["admin"])
        db.session.commit()
    with ServerThread(app) as server:
        yield app, server.url, bearer(admin)
    with app.app_context():
        db.engine.dispose()


def api(app, method, path, headers, json=None):
    response = getattr(app.test_client(), method)(path, headers=headers, json=json)
    assert response.status_code < 300, (path, response.get_json())
    return response.get_json()


def widget_token(app, headers, customer_id=DEMO_CUSTOMER):
    return api(app, "post", "/v1/widget-tokens", headers, {"customer_id": customer_id})["token"]


def set_widget_origins(app, headers, origins):
    program = api(app, "get", "/v1/program", headers)
    api(app, "put", "/v1/program", headers, {**program, "widget_origins": origins})


def test_demo_page_shows_balance_tier_redeems_and_copies(live, browser):
    app, base, admin = live
    me = api(app, "get", "/v1/me", bearer(widget_token(app, admin)))
    available = me["points"]["available"]
    assert available > 0 and me["points"]["pending"] > 0  # the demo seed gave the shopper points
    reward = api(app, "post", "/v1/rewards", admin, {
        "name": "Browser test 5.00 off", "kind": "amount_off", "amount": 500,
        "points_cost": 300, "code_valid_days": 30,
    })  # fmt: skip

    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/demo")

    balance = page.locator('[data-testid="balance"]')
    assert balance.inner_text() == f"{available:,}"
    assert page.locator('[data-testid="tier"]').inner_text() == me["tier"]["name"]
    progress = page.locator('[data-testid="tier-progress"]')
    expected_percent = me["qualifying_spend"] * 100 // me["next_tier"]["threshold"]
    assert progress.get_attribute("aria-valuenow") == str(expected_percent)
    assert me["next_tier"]["name"] in progress.get_attribute("aria-label")
    pending = page.locator('[data-testid="pending"]').inner_text()
    assert f"{me['points']['pending']:,} pending" in pending

    # The widget lives in a shadow root: the page's loud `button` style doesn't reach it.
    in_shadow = page.evaluate(
        "() => !!document.querySelector('#loyalty-widget').shadowRoot"
        " && document.querySelectorAll('.card, [data-testid]').length === 0"
    )
    assert in_shadow
    item = page.locator(f'[data-testid="reward"][data-reward-id="{reward["id"]}"]')
    button = item.locator('[data-testid="redeem"]')
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 230, 0)"

    # Redeem from the keyboard: the first press asks to confirm, the second spends.
    button.focus()
    page.keyboard.press("Enter")
    assert button.inner_text() == "Confirm"
    page.keyboard.press("Enter")
    code = page.locator('[data-testid="reward-code"]')
    code.wait_for()
    shown_code = code.inner_text()
    assert shown_code
    expected = f"{available - reward['points_cost']:,}"
    page.wait_for_function(
        "expected => { const host = document.querySelector('#loyalty-widget');"
        " return host.shadowRoot.querySelector('[data-testid=balance]').textContent === expected }",
        arg=expected,
    )
    codes = api(app, "get", f"/v1/members/{DEMO_CUSTOMER}/redemptions", admin)["items"]
    assert [c["code"] for c in codes] == [shown_code]
    after = api(app, "get", f"/v1/members/{DEMO_CUSTOMER}", admin)["points"]["available"]
    assert after == available - reward["points_cost"]

    # Copy the code: it lands on the clipboard and the live region says so.
    page.locator('[data-testid="redeemed"] button').click()
    page.get_by_text("Code copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == shown_code

    # The referral link: shown, and copied with one press.
    link = page.locator('[data-testid="referral-link"]')
    assert link.input_value() == me["referral"]["url"]
    page.get_by_role("button", name="Copy link").click()
    page.get_by_text("Link copied to clipboard").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == me["referral"]["url"]

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "widget.png"), full_page=True)

    # Readable on a phone: nothing wider than the screen, buttons at least 44 px tall.
    phone = context.new_page()
    phone.set_viewport_size({"width": 375, "height": 812})
    phone.goto(f"{base}/demo")
    phone.locator('[data-testid="balance"]').wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    heights = phone.locator('[data-testid="redeem"]').evaluate_all(
        "buttons => buttons.map(b => b.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= 44
    phone.screenshot(path=str(ARTIFACTS / "widget-phone.png"), full_page=True)
    context.close()


MERCHANT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Another store</h1><div id="rewards"></div>
<script src="{api}/widget.js" data-token="{token}" data-target="#rewards"></script></body></html>"""


def test_widget_on_another_origin_works_only_when_the_program_allows_it(live, browser):
    app, base, admin = live
    token = widget_token(app, admin)

    def merchant(_environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [MERCHANT_PAGE.format(api=base, token=token).encode()]

    with ServerThread(merchant) as shop:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        set_widget_origins(app, admin, [shop.url])
        page.goto(shop.url)
        page.locator('[data-testid="balance"]').wait_for()

        set_widget_origins(app, admin, ["https://somewhere-else.example"])
        page.reload()
        page.get_by_text("We couldn't load your rewards right now.").wait_for()
        assert page.locator('[data-testid="balance"]').count() == 0
        page.close()


def test_widget_script_is_self_contained(live):
    app, _base, _admin = live
    response = app.test_client().get("/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    source = response.get_data(as_text=True)
    assert "attachShadow" in source and "/v1/me" in source
    assert "lk_" not in source and "import " not in source  # no API key, no modules to fetch


def test_demo_page_is_not_served_in_production(live, monkeypatch):
    app, _base, _admin = live
    monkeypatch.setitem(app.config, "LOYALTY_ENV", "production")
    assert app.test_client().get("/demo").status_code == 404
    assert app.test_client().post("/demo/widget-token").status_code == 404


def test_demo_token_endpoint_renews_the_demo_shoppers_token(live):
    app, _base, _admin = live
    client = app.test_client()
    body = client.post("/demo/widget-token").get_json()
    me = client.get("/v1/me", headers=bearer(body["token"])).get_json()
    assert me["id"] == DEMO_CUSTOMER


def test_widget_renews_an_expired_token_from_the_merchants_server(live, browser):
    app, base, admin = live
    fresh = widget_token(app, admin)
    renewals = []

    def merchant(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/loyalty-token":
            renewals.append(1)
            start_response("200 OK", [("Content-Type", "application/json")])
            return [f'{{"token": "{fresh}"}}'.encode()]
        page = MERCHANT_PAGE.format(api=base, token="expired-or-tampered").replace(
            'data-target="#rewards"', 'data-target="#rewards" data-token-url="/loyalty-token"'
        )
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page.encode()]

    with ServerThread(merchant) as shop:
        set_widget_origins(app, admin, [shop.url])
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(shop.url)
        page.locator('[data-testid="balance"]').wait_for()
        assert len(renewals) == 1  # the panel's parallel requests share one renewal
        page.close()


def test_widget_shows_the_code_once_the_store_has_created_it(live, browser):
    from connectors.discounts import sync_store_codes
    from tests.connectors.fake_platforms import SHOPIFY_TOKEN, FakeShopify

    app, base, admin = live
    reward = api(app, "post", "/v1/rewards", admin, {
        "name": "Store code 5.00 off", "kind": "amount_off", "amount": 500,
        "points_cost": 100, "code_valid_days": 30,
    })  # fmt: skip
    with FakeShopify() as shopify:
        app.config.update(
            SHOPIFY_SHOP="example.myshopify.com",
            SHOPIFY_ADMIN_TOKEN=SHOPIFY_TOKEN,
            SHOPIFY_API_BASE=shopify.url,
        )
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{base}/demo")
        button = page.locator(f'[data-testid="reward"][data-reward-id="{reward["id"]}"]').locator(
            '[data-testid="redeem"]'
        )
        button.click()
        button.click()
        page.locator('[data-testid="code-activating"]').wait_for()
        # Not usable at the store yet: the code is not shown, and a poll or two changes nothing.
        page.wait_for_timeout(2000)
        assert page.locator('[data-testid="reward-code"]').count() == 0
        assert page.locator('[data-testid="code-activating"]').count() == 1
        page.screenshot(path=str(ARTIFACTS / "widget-activating.png"), full_page=True)

        with app.app_context():
            assert sync_store_codes(db.session, utcnow() + timedelta(seconds=1), 0) == 1
        code = page.locator('[data-testid="reward-code"]')
        code.wait_for()
        assert shopify.by_code(code.inner_text()) is not None
        assert page.locator('[data-testid="code-activating"]').count() == 0
        page.screenshot(path=str(ARTIFACTS / "widget-store-code.png"), full_page=True)
        page.close()


def test_the_demo_share_link_lands_on_the_friends_offer_and_the_first_order_converts(
    live, browser, monkeypatch
):
    """The widget's share link, opened by a friend: the demo storefront's welcome page with
    the friend's offer (no landing URL is set), a claim that shows the friend's code, and the
    friend's first order with that code converting the referral."""
    app, base, admin = live
    monkeypatch.setitem(app.config, "LOYALTY_PUBLIC_URL", base)  # the links name this server
    me = api(app, "get", "/v1/me", bearer(widget_token(app, admin)))
    share_url = me["referral"]["url"]
    assert share_url == f"{base}/r/{me['referral']['code']}"

    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(share_url)
    assert page.url.startswith(f"{base}/welcome?")
    assert page.locator('[data-testid="ref"]').inner_text() == me["referral"]["code"]
    offer = page.locator('[data-testid="offer"]').inner_text()
    assert "off your first order" in offer
    page.get_by_label("Your email").fill("friend@example.com")
    page.get_by_role("button", name="Get my code").click()
    code = page.locator('[data-testid="friend-code"]').inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "referral-welcome.png"), full_page=True)
    page.close()

    body = api(app, "post", "/v1/events", admin, {
        "id": "friend-evt-1", "type": "order.paid", "occurred_at": utcnow().isoformat(),
        "order": {"id": "friend-ord-1", "customer_id": "friend", "email": "friend@example.com",
                  "currency": "USD", "reward_codes": [code], "ip": "198.51.100.20",
                  "lines": [{"sku": "ROSE-SERUM", "quantity": 1, "unit_price": 4800}]},
    })  # fmt: skip
    kinds = {effect["kind"]: effect for effect in body["effects"]}
    assert kinds["reward_code_used"]["code"] == code
    referrals = api(app, "get", f"/v1/members/{DEMO_CUSTOMER}/referrals", admin)
    assert referrals["conversions"] == 1
