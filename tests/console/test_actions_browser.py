"""Action rules in a real Chromium: a capped rule created on the rule page reads in plain words,
and an action's award shows on the member's activity; a screenshot of each."""

from datetime import UTC, datetime

import pytest

from loyalty.auth import create_api_key
from loyalty.extensions import db
from loyalty.seed import DEMO_CUSTOMER
from tests.conftest import bearer

pytestmark = pytest.mark.browser


def test_create_a_capped_review_rule_and_see_an_award_on_the_member(
    console_page, live_console, screenshot
):
    app, _base = live_console
    page = console_page("owner")
    page.goto(page.base + "/rules/new")
    page.get_by_label("Name").fill("Product reviews")
    page.get_by_label("Earned on").select_option("action")
    page.get_by_label("Fixed bonus points").fill("50")
    page.get_by_label("Action", exact=True).fill("review")
    page.get_by_label("At most a month").fill("3")
    screenshot(page, "rule-form-action")
    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url("**/console/rules")
    assert page.get_by_role("status").inner_text() == "Earning rule “Product reviews” created."
    listed = page.locator("tr", has=page.get_by_role("rowheader", name="Product reviews"))
    assert listed.locator("td").nth(0).inner_text() == (
        "50 points per product review, at most 3 a month"
    )
    screenshot(page, "rules-with-action")

    with app.app_context():
        _row, key = create_api_key(db.session, "browser-storefront", ["storefront"])
        db.session.commit()
    review = {"id": "rv-1", "type": "review", "occurred_at": datetime.now(UTC).isoformat()}
    answer = app.test_client().post(
        f"/v1/members/{DEMO_CUSTOMER}/actions", json=review, headers=bearer(key)
    )
    assert answer.status_code == 200 and answer.get_json()["effects"][0]["points"] == 50
    page.goto(page.base + f"/members/{DEMO_CUSTOMER}")
    first_entry = page.locator("#activity tbody tr").first
    assert "Review (action rv-1): 50 points — rule “Product reviews”" in first_entry.inner_text()
    assert "+50" in first_entry.inner_text()
    screenshot(page, "member-action-award")
    assert page.foreign_requests == []
