"""Tiers and earning rules in a real Chromium: a threshold changed through the preview and
confirmed moves members; a rule created and paused; a screenshot of each page."""

import re

import pytest
from sqlalchemy import select

from loyalty.auth import create_api_key
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.tiers.models import Tier
from tests.conftest import bearer
from tests.console.conftest import browser_sign_in
from tests.tiers.helpers import early_this_year, order, post_event

pytestmark = pytest.mark.browser

# Qualifying spend this year (minor units): the demo ladder is Insider 0, VIB $350, Rouge $1,000.
SPEND = {"vib_1": 40_000, "vib_2": 42_000, "vib_3": 48_000, "rouge_1": 150_000, "low_1": 1_000}


def seed_members(app):
    """Members with known spend, through the API's order events."""
    with app.app_context():
        _row, key = create_api_key(db.session, "browser-test", ["storefront"])
        db.session.commit()
    client = app.test_client()
    for n, (customer_id, amount) in enumerate(SPEND.items()):
        post_event(client, bearer(key), order(amount, early_this_year(n + 1), customer_id))


def tiers_of(app) -> dict:
    with app.app_context():
        rows = db.session.execute(
            select(Member.customer_id, Tier.name).join(Tier, Tier.id == Member.tier_id)
        )
        return {c: t for c, t in rows if c in SPEND}


def row(page, name):
    return page.locator("tr", has=page.locator("th", has_text=re.compile(rf"^{name}")))


def test_a_threshold_changed_through_the_preview_moves_members(
    console_page, live_console, screenshot
):
    app, _base = live_console
    seed_members(app)
    assert tiers_of(app) == {
        "vib_1": "VIB", "vib_2": "VIB", "vib_3": "VIB", "rouge_1": "Rouge", "low_1": "Insider",
    }  # fmt: skip
    page = console_page("owner")
    page.goto(page.base + "/tiers")
    assert row(page, "VIB").locator("td").nth(3).inner_text() == "3"
    screenshot(page, "tiers")

    page.get_by_role("link", name="Edit VIB").click()
    assert page.get_by_label("Threshold (USD)").input_value() == "350"
    page.get_by_label("Threshold (USD)").fill("450")
    screenshot(page, "tiers-edit")
    page.get_by_role("button", name="Preview change").click()
    preview = page.locator("section.preview")
    preview.get_by_role("heading", name="Preview: who would move").wait_for()
    moves = [" ".join(t.split()) for t in preview.locator("tr.move").all_inner_texts()]
    assert moves == ["VIB → to Insider 2 members"]
    assert "Unchanged" in preview.locator("tfoot").inner_text()
    assert "4 members" in preview.locator("tfoot").inner_text()  # and the demo shopper
    assert "$450" in preview.locator(".ladder-after").inner_text()
    assert "$350" in preview.locator(".ladder-before").inner_text()
    assert tiers_of(app)["vib_1"] == "VIB"  # the preview changed nothing
    screenshot(page, "tiers-preview")

    preview.get_by_role("button", name="Apply change").click()
    page.wait_for_url("**/console/tiers")
    assert page.get_by_role("status").inner_text() == "VIB saved. 2 members moved to a new tier."
    assert row(page, "VIB").locator("td").nth(0).inner_text() == "$450"
    assert row(page, "VIB").locator("td").nth(3).inner_text() == "1"
    assert tiers_of(app) == {
        "vib_1": "Insider", "vib_2": "Insider", "vib_3": "VIB", "rouge_1": "Rouge",
        "low_1": "Insider",
    }  # fmt: skip
    screenshot(page, "tiers-applied")
    assert page.foreign_requests == []


def test_going_back_from_a_preview_keeps_the_values_and_the_base_tier_stays(
    console_page, live_console, screenshot
):
    page = console_page("admin")
    page.goto(page.base + "/tiers")
    assert page.get_by_role("link", name="Remove Insider").count() == 0
    page.get_by_role("link", name="Add a tier").click()
    page.get_by_label("Name").fill("Noir")
    page.get_by_label("Threshold (USD)").fill("2000")
    page.get_by_label("Points multiplier").fill("2")
    page.get_by_label("Perks").fill("Private events\nFree express shipping")
    page.get_by_role("button", name="Preview change").click()
    page.get_by_role("heading", name="Preview: who would move").wait_for()
    assert "No member would change tier." in page.locator("section.preview").inner_text()
    screenshot(page, "tiers-preview-new")
    page.get_by_role("button", name="Back").click()
    assert page.get_by_label("Threshold (USD)").input_value() == "2000"
    assert page.get_by_label("Name").input_value() == "Noir"
    page.goto(page.base + "/tiers")
    page.get_by_role("link", name="Remove Rouge").click()
    assert "removing Rouge" in page.locator("section.preview .notice").inner_text()
    assert "removed" in page.locator(".ladder-after").text_content()
    screenshot(page, "tiers-preview-remove")
    page.get_by_role("link", name="Back").click()
    page.wait_for_url("**/console/tiers")
    page.get_by_role("link", name="Edit Insider").click()
    assert page.get_by_label("Threshold (USD)").get_attribute("readonly") is not None


def test_create_and_pause_an_earning_rule(console_page, live_console, screenshot):
    app, _base = live_console
    page = console_page("owner")
    page.goto(page.base + "/rules")
    assert "2× points on skincare" in page.locator("table").inner_text()
    screenshot(page, "rules")
    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Name").fill("First order bonus")
    page.get_by_label("Earned on").select_option("first_order")
    page.get_by_label("Fixed bonus points").fill("100")
    page.get_by_label("Minimum order (USD)").fill("50")
    page.get_by_label("VIB").check()
    screenshot(page, "rule-form")
    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url("**/console/rules")
    assert page.get_by_role("status").inner_text() == "Earning rule “First order bonus” created."
    new_row = row(page, "First order bonus")
    assert new_row.locator("td").nth(0).inner_text() == (
        "100 bonus points on a first order of $50 or more for VIB members"
    )
    assert new_row.locator("td").nth(2).inner_text() == "Active"
    new_row.get_by_role("button", name="Pause First order bonus").click()
    page.wait_for_url("**/console/rules")
    assert page.get_by_role("status").inner_text() == "Earning rule “First order bonus” paused."
    assert row(page, "First order bonus").locator("td").nth(2).inner_text() == "Paused"
    screenshot(page, "rules-paused")
    with app.app_context():
        api = app.test_client()
        _row, key = create_api_key(db.session, "browser-admin", ["admin"])
        db.session.commit()
    items = api.get("/v1/earning-rules", headers=bearer(key)).get_json()["items"]
    rule = next(r for r in items if r["name"] == "First order bonus")
    assert rule["active"] is False
    assert rule["conditions"] == {"min_spend": 5000, "tiers": ["VIB"]}
    page.get_by_role("link", name="First order bonus", exact=True).click()
    page.get_by_label("Fixed bonus points").fill("")
    page.get_by_role("button", name="Save rule").click()
    assert "Give either" in page.get_by_role("alert").inner_text() or (
        "Give either" in page.locator("#points-error").inner_text()
    )
    screenshot(page, "rule-form-refused")
    assert page.foreign_requests == []


def test_without_javascript_the_preview_is_its_own_page(browser, live_console, live_admin):
    app, base = live_console
    seed_members(app)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.base = f"{base}/console"
    browser_sign_in(page, live_admin("owner"))
    page.goto(page.base + "/tiers")
    page.get_by_role("link", name="Edit Rouge").click()
    page.get_by_label("Threshold (USD)").fill("1600")
    page.get_by_role("button", name="Preview change").click()
    assert page.url.endswith("/preview")  # a page load of its own
    moves = [" ".join(t.split()) for t in page.locator("tr.move").all_inner_texts()]
    assert moves == ["Rouge → to VIB 1 member"]
    assert tiers_of(app)["rouge_1"] == "Rouge"
    page.get_by_role("button", name="Apply change").click()
    page.wait_for_url("**/console/tiers")
    assert page.get_by_role("status").inner_text() == "Rouge saved. 1 member moved to a new tier."
    assert tiers_of(app)["rouge_1"] == "VIB"
    context.close()
