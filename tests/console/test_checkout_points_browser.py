"""Points at checkout in a real Chromium: switched on from the settings page, and a checkout
discount on the member page (its code, its activity line); a screenshot of each."""

import pytest

from loyalty.auth import create_api_key
from loyalty.extensions import db
from loyalty.seed import DEMO_CUSTOMER
from tests.conftest import bearer

pytestmark = pytest.mark.browser


def test_switch_on_points_at_checkout_and_see_a_discount_on_the_member(
    console_page, live_console, screenshot
):
    app, _base = live_console
    page = console_page("owner")
    page.goto(page.base + "/settings")
    # The demo program has it on at the catalog's rate.
    assert "Now: 100 points take $2.00 off; a code takes at most 50% of the cart" in (
        page.locator("main").inner_text()
    )
    page.get_by_label("Shoppers can spend points at checkout").check()
    page.get_by_label("Value of one point (in the currency's smallest unit)").fill("0.5")
    page.get_by_label("Fewest points per code").fill("200")
    page.get_by_label("Points step").fill("100")
    page.get_by_label("Largest share of the cart (%)").fill("40")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url("**/console/settings")
    assert page.get_by_role("status").inner_text() == "Program settings saved."
    assert "Now: 200 points take $1.00 off; a code takes at most 40% of the cart" in (
        page.locator("main").inner_text()
    )
    page.get_by_role("group", name="Points at checkout").scroll_into_view_if_needed()
    screenshot(page, "settings-checkout-points")

    with app.app_context():
        _row, key = create_api_key(db.session, "browser-storefront", ["storefront"])
        db.session.commit()
    answer = app.test_client().post(
        f"/v1/members/{DEMO_CUSTOMER}/checkout-discounts",
        json={"points": 600, "cart_subtotal": 9000},
        headers=bearer(key),
    )
    assert answer.status_code == 201, answer.get_json()
    made = answer.get_json()
    page.goto(page.base + f"/members/{DEMO_CUSTOMER}")
    row = page.locator("#codes tr", has_text=made["code"])
    assert "Points at checkout: $3.00 off" in row.inner_text()
    assert "Active" in row.inner_text()
    first_entry = page.locator("#activity tbody tr").first
    assert "Points at checkout: $3.00 off a cart of $90.00" in first_entry.inner_text()
    assert "−600" in first_entry.inner_text() or "-600" in first_entry.inner_text()
    screenshot(page, "member-checkout-discount")
    assert page.foreign_requests == []
