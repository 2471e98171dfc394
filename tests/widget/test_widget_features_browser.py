"""The widget's gift card check, reward codes, share links and languages, in Chromium: each
driven as a shopper would, with a look at the layout in long German words and right to left."""

from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from loyalty.seed import DEMO_CUSTOMER
from loyalty.types import utcnow
from tests.conftest import bearer
from tests.widget.test_widget_browser import (
    ARTIFACTS,
    MERCHANT_PAGE,
    TIMEOUT_MS,
    ServerThread,
    api,
    set_widget_origins,
    widget_token,
)

pytestmark = pytest.mark.browser

SHADOW = "document.querySelector('#loyalty-widget').shadowRoot"

# Every element of the widget whose text is wider than its box, or that sticks out of the panel;
# an input scrolls its own value, and the screen-reader-only text is clipped on purpose.
OVERFLOWING = """host => {
  const root = host.shadowRoot;
  const card = root.querySelector('.card').getBoundingClientRect();
  const bad = [];
  for (const el of root.querySelectorAll('.card *')) {
    if (el.closest('.sr') || el.tagName === 'INPUT' || el.tagName === 'STYLE') continue;
    const box = el.getBoundingClientRect();
    if (!box.width && !box.height) continue;
    const text = (el.textContent || '').trim().slice(0, 60);
    if (el.clientWidth && el.scrollWidth > el.clientWidth) bad.push(['scroll', el.tagName, text]);
    const outside = box.left < card.left - 1 || box.right > card.right + 1;
    if (outside) bad.push(['outside', el.tagName, text]);
  }
  return bad;
}"""


def open_page(browser, url, width=1280, **context):
    ctx = browser.new_context(viewport={"width": width, "height": 900}, **context)
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.locator('[data-testid="balance"]').wait_for()
    return ctx, page


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def demo_me(app, admin):
    return api(app, "get", "/v1/me", bearer(widget_token(app, admin)))


def new_reward(app, admin, name, cost):
    return api(app, "post", "/v1/rewards", admin, {
        "name": name, "kind": "amount_off", "amount": 500, "points_cost": cost,
        "code_valid_days": 30,
    })  # fmt: skip


def redeem_for_demo(app, admin, reward):
    return api(app, "post", f"/v1/members/{DEMO_CUSTOMER}/redemptions", admin,
               {"reward_id": reward["id"]})  # fmt: skip


# --- gift card balance ------------------------------------------------------------------------


def test_gift_card_balance_check(live, browser):
    app, base, admin = live
    expires = (utcnow() + timedelta(days=200)).replace(microsecond=0)
    card = api(app, "post", "/v1/gift-cards", admin,
               {"amount": 4250, "currency": "USD", "expires_at": expires.isoformat()})  # fmt: skip
    dead = api(app, "post", "/v1/gift-cards", admin, {"amount": 1000, "currency": "USD"})
    api(app, "post", f"/v1/gift-cards/{dead['id']}/disable", admin, {})
    ctx, page = open_page(browser, f"{base}/demo")

    page.get_by_label("Gift card code").fill(card["code"])
    page.get_by_role("button", name="Check balance").click()
    result = page.locator('[data-testid="gift-card-balance"]')
    result.wait_for()
    assert page.locator('[data-testid="gift-card-amount"]').inner_text() == "$42.50"
    assert f"Card ending in {card['code'][-4:]}" in result.inner_text()
    assert f"Valid until {expires:%b} {expires.day}, {expires.year}" in result.inner_text()
    shot(page, "widget-gift-card.png")

    # A wrong code and a disabled card read the same.
    messages = []
    for code in ("0000-0000-0000-0000", dead["code"]):
        page.get_by_label("Gift card code").fill(code)
        page.get_by_role("button", name="Check balance").click()
        error = page.locator('[data-testid="gift-card-error"]')
        error.wait_for()
        messages.append(error.inner_text())
        assert page.locator('[data-testid="gift-card-balance"]').count() == 0
    assert (
        messages[0]
        == messages[1]
        == ("We couldn't find a gift card with that code. Check it and try again.")
    )
    shot(page, "widget-gift-card-wrong.png")

    # Enough wrong codes lock this shopper out, and the widget says for how long.
    minutes = app.config["GIFT_CARD_LOCKOUT_MINUTES"]
    locked = f"Too many tries. Please try again in {minutes} minutes."
    checks = 0
    while page.locator('[data-testid="gift-card-error"]').inner_text() != locked:
        assert checks <= app.config["GIFT_CARD_MAX_FAILURES"]
        page.get_by_label("Gift card code").fill("0000-0000-0000-0000")
        page.get_by_role("button", name="Check balance").click()  # waits while one is asked
        page.get_by_role("button", name="Check balance").wait_for()
        page.wait_for_function(f"() => !{SHADOW}.querySelector('button[type=submit]').disabled")
        checks += 1
    # The right code, from this shopper, is refused as well until the lockout ends.
    page.get_by_label("Gift card code").fill(card["code"])
    page.get_by_role("button", name="Check balance").click()
    page.wait_for_function(f"() => !{SHADOW}.querySelector('button[type=submit]').disabled")
    assert page.locator('[data-testid="gift-card-error"]').inner_text() == locked
    assert page.locator('[data-testid="gift-card-balance"]').count() == 0
    ctx.close()


# --- past reward codes ------------------------------------------------------------------------


def test_reward_codes_show_their_status_and_an_unused_one_is_canceled_after_a_confirm(
    live, browser
):
    app, base, admin = live
    reward = new_reward(app, admin, "Codes test 5.00 off", 200)
    used = redeem_for_demo(app, admin, reward)
    unused = redeem_for_demo(app, admin, reward)
    canceled = redeem_for_demo(app, admin, reward)
    api(app, "post", f"/v1/redemptions/{canceled['id']}/cancel", admin, {})
    api(app, "post", "/v1/events", admin, {
        "id": "codes-evt-1", "type": "order.paid", "occurred_at": utcnow().isoformat(),
        "order": {"id": "codes-ord-1", "customer_id": DEMO_CUSTOMER, "currency": "USD",
                  "reward_codes": [used["code"]],
                  "lines": [{"sku": "ROSE-SERUM", "quantity": 1, "unit_price": 4800}]},
    })  # fmt: skip
    before = demo_me(app, admin)["points"]["available"]
    ctx, page = open_page(browser, f"{base}/demo")

    def item(code):
        return page.locator(f'[data-testid="my-code"][data-code-id="{code["id"]}"]')

    statuses = {
        code["id"]: item(code).locator('[data-testid="code-status"]').inner_text()
        for code in (used, unused, canceled)
    }
    assert statuses == {used["id"]: "Used", unused["id"]: "Ready to use",
                        canceled["id"]: "Canceled"}  # fmt: skip
    assert "Use by " in item(unused).inner_text()
    assert item(used).locator('[data-testid="cancel-code"]').count() == 0
    assert item(canceled).locator('[data-testid="cancel-code"]').count() == 0

    # Cancel asks first; "Keep it" keeps it.
    item(unused).get_by_role("button", name=f"Cancel code {unused['code']}").click()
    confirm = item(unused).locator('[data-testid="cancel-confirm"]')
    assert "200 points go back to your balance" in confirm.inner_text()
    shot(page, "widget-codes-confirm.png")
    confirm.get_by_role("button", name="Keep it").click()
    assert item(unused).locator('[data-testid="cancel-confirm"]').count() == 0
    assert demo_me(app, admin)["points"]["available"] == before

    item(unused).get_by_role("button", name=f"Cancel code {unused['code']}").click()
    item(unused).get_by_role("button", name="Yes, cancel it").click()
    notice = page.locator('[data-testid="cancel-result"]')
    notice.get_by_text("Code canceled: 200 points are back in your balance.").wait_for()
    assert item(unused).locator('[data-testid="code-status"]').inner_text() == "Canceled"
    assert page.locator('[data-testid="balance"]').inner_text() == f"{before + 200:,}"
    assert demo_me(app, admin)["points"]["available"] == before + 200
    shot(page, "widget-codes.png")
    ctx.close()


def test_a_refused_cancel_says_why_in_the_pages_language(live, browser):
    app, base, admin = live
    reward = new_reward(app, admin, "Codes test 5.00 off", 200)
    code = redeem_for_demo(app, admin, reward)
    ctx, page = open_page(browser, f"{base}/demo?lang=de")
    # Used at the store while the page was open: the cancel is refused (409) and says so.
    api(app, "post", "/v1/events", admin, {
        "id": "codes-evt-2", "type": "order.paid", "occurred_at": utcnow().isoformat(),
        "order": {"id": "codes-ord-2", "customer_id": DEMO_CUSTOMER, "currency": "USD",
                  "reward_codes": [code["code"]],
                  "lines": [{"sku": "ROSE-SERUM", "quantity": 1, "unit_price": 4800}]},
    })  # fmt: skip
    page.get_by_role("button", name=f"Code {code['code']} stornieren").click()
    page.get_by_role("button", name="Ja, stornieren").click()
    refused = page.locator('[data-testid="cancel-result"] [role="alert"]')
    refused.wait_for()
    assert refused.inner_text() == (
        "Der Code konnte nicht storniert werden. Das hat sich inzwischen geändert: Lade die"
        " Seite neu, um den aktuellen Stand zu sehen."
    )
    # The list was read again: the code shows as used.
    item = page.locator(f'[data-testid="my-code"][data-code-id="{code["id"]}"]')
    assert item.locator('[data-testid="code-status"]').inner_text() == "Eingelöst"
    ctx.close()


# --- referral sharing -------------------------------------------------------------------------


def test_share_links_carry_the_referral_link_and_the_native_sheet_when_there_is_one(live, browser):
    app, base, admin = live
    link = demo_me(app, admin)["referral"]["url"]
    text = f"Here's a welcome reward for your first order: {link}"
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    # A browser with a share sheet: record what the widget hands it.
    ctx.add_init_script(
        "window.__shared = []; navigator.share = d => { window.__shared.push(d);"
        " return Promise.resolve(); };"
    )
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    hosts = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.goto(f"{base}/demo")
    page.locator('[data-testid="balance"]').wait_for()
    links = page.locator('[data-testid="share-links"] a')
    hrefs = {a.get_attribute("data-via"): a.get_attribute("href") for a in links.all()}
    assert set(hrefs) == {"email", "sms", "whatsapp", "x", "facebook"}

    email = urlsplit(hrefs["email"])
    assert email.scheme == "mailto"
    assert parse_qs(email.query)["body"] == [text]
    assert parse_qs(email.query)["subject"] == ["A welcome reward for you"]
    assert hrefs["sms"] == "sms:?&body=" + quote(text, safe="-_.!~*'()")
    assert hrefs["whatsapp"] == "https://wa.me/?text=" + quote(text, safe="-_.!~*'()")
    assert hrefs["x"] == "https://x.com/intent/post?text=" + quote(text, safe="-_.!~*'()")
    facebook = urlsplit(hrefs["facebook"])
    assert facebook.netloc == "www.facebook.com" and facebook.path == "/sharer/sharer.php"
    assert parse_qs(facebook.query)["u"] == [link]
    for via in ("whatsapp", "x", "facebook"):
        anchor = page.locator(f'[data-testid="share-links"] a[data-via="{via}"]')
        assert anchor.get_attribute("target") == "_blank"
        assert anchor.get_attribute("rel") == "noopener noreferrer"
    assert page.get_by_role("link", name="Share by WhatsApp").count() == 1

    page.get_by_role("button", name="More options").click()
    page.wait_for_function("window.__shared.length === 1")
    assert page.evaluate("window.__shared[0]") == {"title": "A welcome reward for you",
                                                   "text": text}  # fmt: skip
    # The links are there to follow; the widget itself loaded nothing from those hosts.
    assert hosts == {urlsplit(base).netloc}
    shot(page, "widget-share.png")
    ctx.close()

    # No share sheet in this browser: no button for one.
    ctx = browser.new_context()
    ctx.add_init_script("delete Navigator.prototype.share; delete navigator.share;")
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/demo")
    page.locator('[data-testid="share-links"]').wait_for()
    assert page.locator('[data-testid="native-share"]').count() == 0
    ctx.close()


# --- languages --------------------------------------------------------------------------------

# The demo shopper's 1,500 points, "0 clicks" (French: 0 is singular), a money amount.
LANGUAGES = {
    "en": ("Your tier", "1,500", "points", "0 clicks", "$122.00", "Check balance"),
    "fr": ("Votre niveau", "1\u202f500", "points", "0 clic", "122,00\u00a0$US", "Voir le solde"),
    "de": ("Deine Stufe", "1.500", "Punkte", "0 Klicks", "122,00\u00a0$", "Guthaben abfragen"),
    "es": ("Tu nivel", "1500", "puntos", "0 clics", "122,00\u00a0US$", "Consultar saldo"),
}


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_the_widget_speaks_the_pages_language(live, browser, lang):
    app, base, admin = live
    tier, balance, unit, clicks, money, check = LANGUAGES[lang]
    assert demo_me(app, admin)["points"]["available"] == 1500
    ctx, page = open_page(browser, f"{base}/demo?lang={lang}")
    root = page.locator("#loyalty-widget")
    assert page.locator('[data-testid="balance"]').inner_text() == balance
    assert root.locator(".unit").inner_text() == unit
    assert root.get_by_text(tier, exact=True).count() == 1
    stats = page.locator('[data-testid="referral-stats"]').inner_text()
    assert clicks in stats.split("\n")
    assert money in page.locator('[data-testid="next-tier"]').inner_text()
    assert page.get_by_role("button", name=check).count() == 1
    shot(page, f"widget-{lang}.png")
    ctx.close()


def test_one_point_and_many_agree_with_their_number(live, browser):
    app, base, admin = live
    api(app, "post", f"/v1/members/{DEMO_CUSTOMER}/adjustments", admin,
        {"points": -1499, "reason": "leave one"})  # fmt: skip
    for lang, unit in (("en", "point"), ("fr", "point"), ("de", "Punkt"), ("es", "punto")):
        ctx, page = open_page(browser, f"{base}/demo?lang={lang}")
        assert page.locator("#loyalty-widget .unit").inner_text() == unit
        ctx.close()


MERCHANT_LOCALE = MERCHANT_PAGE.replace("<html>", '<html lang="{lang}">').replace(
    'data-target="#rewards"', 'data-target="#rewards" {attrs}'
)


@pytest.mark.parametrize(
    ("lang", "attrs", "expected"),
    [
        ("fr-CA", "", "Votre niveau"),  # a regional tag reads its language
        ("pt-BR", "", "Your tier"),  # a language not shipped reads English
        ("en", 'data-locale="de-AT"', "Deine Stufe"),  # the attribute wins over the page
        ("", "", "Your tier"),
    ],
)
def test_the_language_comes_from_the_page_or_the_attribute(live, browser, lang, attrs, expected):
    app, base, admin = live
    token = widget_token(app, admin)
    page_html = MERCHANT_LOCALE.format(api=base, token=token, lang=lang, attrs=attrs)

    def merchant(_environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page_html.encode()]

    with ServerThread(merchant) as shop:
        set_widget_origins(app, admin, [shop.url])
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(shop.url)
        page.locator('[data-testid="balance"]').wait_for()
        assert page.locator("#rewards").get_by_text(expected, exact=True).count() == 1
        page.close()


def test_an_action_award_reads_as_its_rules_name(live, browser):
    app, base, admin = live
    api(app, "post", "/v1/earning-rules", admin, {
        "name": "Product review", "trigger": "action", "points": 50,
        "conditions": {"action_type": "review"},
    })  # fmt: skip
    api(app, "post", f"/v1/members/{DEMO_CUSTOMER}/actions", admin,
        {"id": "rv-browser-1", "type": "review", "occurred_at": utcnow().isoformat()})  # fmt: skip
    ctx, page = open_page(browser, f"{base}/demo")
    page.get_by_text("Recent activity").click()
    what = page.locator('[data-testid="activity-what"]').all_inner_texts()
    assert what[0] == "Product review"
    ctx.close()


# --- layout: long German words on a phone, right to left -------------------------------------


def fill_every_section(page, app, admin, gift_code):
    """Open what opens: a cancel question, a gift card balance, the activity."""
    first = page.locator('[data-testid="cancel-code"]').first
    first.click()
    page.locator('[data-testid="cancel-confirm"]').wait_for()
    page.locator('[data-testid="gift-card-code"]').fill(gift_code)
    page.locator('[data-testid="gift-card-code"]').press("Enter")
    page.locator('[data-testid="gift-card-balance"]').wait_for()
    page.locator("#loyalty-widget summary").click()


@pytest.mark.parametrize(
    ("query", "width", "name"),
    [
        ("lang=de", 375, "widget-de-phone.png"),
        ("lang=de", 1280, "widget-de-wide.png"),
        ("lang=es&dir=rtl", 375, "widget-rtl-phone.png"),
        ("lang=fr&dir=rtl", 1280, "widget-rtl.png"),
    ],
)
def test_no_text_overflows_in_long_words_or_right_to_left(live, browser, query, width, name):
    app, base, admin = live
    reward = new_reward(app, admin, "Geschenkverpackung mit handgeschriebener Grußkarte", 100)
    redeem_for_demo(app, admin, reward)
    card = api(app, "post", "/v1/gift-cards", admin, {"amount": 123456, "currency": "USD"})
    ctx, page = open_page(browser, f"{base}/demo?{query}", width=width)
    fill_every_section(page, app, admin, card["code"])
    host = page.locator("#loyalty-widget")
    assert host.evaluate(OVERFLOWING) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    if "rtl" in query:
        # The page reads right to left; the panel, in a left-to-right language, reads left to
        # right, with each value in its sentences isolated (FSI … PDI) from the page's direction.
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        assert (
            host.evaluate("h => getComputedStyle(h.shadowRoot.querySelector('.card')).direction")
            == "ltr"
        )
        confirm = page.locator('[data-testid="cancel-confirm"] p').inner_text()
        assert "\u2068" in confirm and "\u2069" in confirm
        if width > 800:  # side by side: the panel is on the page's left, the start of a rtl row
            aside = page.locator("aside").bounding_box()
            account = page.locator(".panel").bounding_box()
            assert aside["x"] < account["x"]
    shot(page, name)
    ctx.close()


def test_the_overflow_check_sees_an_overflow(live, browser):
    """The check above is not blind: a word too long for its box is reported."""
    app, base, admin = live
    ctx, page = open_page(browser, f"{base}/demo", width=375)
    host = page.locator("#loyalty-widget")
    host.evaluate(
        "h => { const s = h.shadowRoot.querySelector('.title');"
        " s.style.whiteSpace = 'nowrap'; s.style.overflow = 'hidden';"
        " s.textContent = 'Donaudampfschifffahrtsgesellschaftskapitänsmütze'.repeat(3); }"
    )
    assert [tag for _kind, tag, _text in host.evaluate(OVERFLOWING)] == ["H2"]
    ctx.close()


# --- points at checkout: the cart page's slider -----------------------------------------------


def checkout_terms(app, admin, **terms):
    api(app, "put", "/v1/program", admin, {"checkout_points": terms})


def slider_text(page):
    return page.locator('[data-testid="slider-value"]').inner_text()


def test_the_cart_slider_snaps_to_the_step_shows_the_money_and_applies_a_code(live, browser):
    app, base, admin = live
    # The demo's terms: 1 point = 0.02, from 100 points in steps of 50, at most half the cart.
    available = demo_me(app, admin)["points"]["available"]
    assert available == 1500
    ctx, page = open_page(
        browser, f"{base}/demo/cart", permissions=["clipboard-read", "clipboard-write"]
    )
    assert page.locator('[data-testid="cart-subtotal"]').inner_text() == "$122.00"
    slider = page.get_by_label("Points to use")
    # 122.00 × 50 % = 61.00 would take 3,050 points: the 1,500 available are the end.
    assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("100", "1500")
    assert slider.get_attribute("step") == "50"
    assert slider_text(page) == "1,500 points = $30.00 off"
    assert page.locator('[data-testid="slider-range"]').inner_text() == (
        "Between 100 and 1,500 points on this cart"
    )
    slider.focus()
    page.keyboard.press("ArrowLeft")
    assert slider_text(page) == "1,450 points = $29.00 off"
    assert slider.get_attribute("aria-valuetext") == "1,450 points = $29.00 off"
    page.keyboard.press("Home")
    assert slider_text(page) == "100 points = $2.00 off"
    for _ in range(12):
        page.keyboard.press("ArrowRight")
    assert slider_text(page) == "700 points = $14.00 off"
    shot(page, "widget-cart-slider.png")

    page.evaluate(
        "window.__codes = []; document.querySelector('#loyalty-widget')"
        ".addEventListener('loyalty:checkout-code', e => window.__codes.push(e.detail))"
    )
    page.get_by_role("button", name="Apply $14.00 off").click()
    made = page.locator('[data-testid="checkout-code"]')
    made.wait_for()
    assert "Your code for $14.00 off this order:" in made.inner_text()
    code = made.locator('[data-testid="reward-code"]').inner_text()
    assert page.evaluate("window.__codes") == [{"code": code, "amount": 1400, "points": 700}]
    page.wait_for_function(
        f"() => {SHADOW}.querySelector('[data-testid=balance]').textContent === '800'"
    )
    codes = api(app, "get", f"/v1/members/{DEMO_CUSTOMER}/redemptions", admin)["items"]
    assert [(c["code"], c["amount"], c["points_spent"]) for c in codes] == [(code, 1400, 700)]
    # The slider's end follows the new balance; the code is in the list, cancelable.
    assert slider.get_attribute("max") == "800"
    mine = page.locator(f'[data-testid="my-code"][data-code-id="{codes[0]["id"]}"]')
    assert mine.locator('[data-testid="code-status"]').inner_text() == "Ready to use"
    assert mine.locator('[data-testid="cancel-code"]').count() == 1
    made.get_by_role("button", name=f"Copy code {code}").click()
    made.get_by_text("Code copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == code
    shot(page, "widget-cart-code.png")
    ctx.close()


def test_the_slider_is_bounded_by_the_share_of_the_cart_and_priced_exactly(live, browser):
    app, base, admin = live
    # 10 % of 122.00 is 12.20: at 1.5 cents a point, 813 points (below the 1,500 available),
    # snapped down to the step of 50: 800 points, 12.00 off.
    checkout_terms(app, admin, value_per_point="1.5", max_share_of_cart=10)
    ctx, page = open_page(browser, f"{base}/demo/cart")
    slider = page.get_by_label("Points to use")
    assert slider.get_attribute("max") == "800"
    assert slider_text(page) == "800 points = $12.00 off"
    ctx.close()

    checkout_terms(app, admin, value_per_point="0.29", max_share_of_cart=50)
    ctx, page = open_page(browser, f"{base}/demo/cart")
    slider = page.get_by_label("Points to use")
    slider.focus()
    page.keyboard.press("Home")
    # floor(100 × 0.29) = 29 cents exactly (a float would say 28.999…).
    assert slider_text(page) == "100 points = $0.29 off"
    page.get_by_role("button", name="Apply $0.29 off").click()
    page.locator('[data-testid="checkout-code"]').wait_for()
    codes = api(app, "get", f"/v1/members/{DEMO_CUSTOMER}/redemptions", admin)["items"]
    assert [(c["amount"], c["points_spent"]) for c in codes] == [(29, 100)]
    ctx.close()


def test_the_slider_says_why_it_is_not_there(live, browser):
    app, base, admin = live
    api(app, "post", f"/v1/members/{DEMO_CUSTOMER}/adjustments", admin,
        {"points": -1450, "reason": "spent elsewhere"})  # fmt: skip
    ctx, page = open_page(browser, f"{base}/demo/cart")
    assert page.locator('[data-testid="slider-unavailable"]').inner_text() == (
        "Collect 100 points to use them on an order."
    )
    assert page.locator('[data-testid="points-slider"]').count() == 0
    ctx.close()

    checkout_terms(app, admin, enabled=False)
    ctx, page = open_page(browser, f"{base}/demo/cart")
    assert page.locator('[data-testid="checkout-points"]').count() == 0
    # The account page never shows it: it has no cart.
    page.goto(f"{base}/demo")
    page.locator('[data-testid="balance"]').wait_for()
    assert page.locator('[data-testid="checkout-points"]').count() == 0
    ctx.close()


@pytest.mark.parametrize(
    ("query", "width", "expected", "name"),
    [
        ("lang=de", 375, "1.500 Punkte = 30,00\u00a0$ Rabatt", "widget-cart-de-phone.png"),
        ("lang=fr&dir=rtl", 1280, "1\u202f500 points = 30,00\u00a0$US de réduction",
         "widget-cart-rtl.png"),
    ],
)  # fmt: skip
def test_the_cart_slider_in_other_languages_fits(live, browser, query, width, expected, name):
    app, base, admin = live
    ctx, page = open_page(browser, f"{base}/demo/cart?{query}", width=width)
    assert slider_text(page).replace("\u2068", "").replace("\u2069", "") == expected
    page.locator('[data-testid="apply-points"]').click()
    page.locator('[data-testid="checkout-code"]').wait_for()
    page.locator('[data-testid="cancel-code"]').first.click()
    assert page.locator("#loyalty-widget").evaluate(OVERFLOWING) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    shot(page, name)
    ctx.close()
