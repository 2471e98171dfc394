"""Win-back rules in a real Chromium: a rule made on the rule page reads in plain words, and
its award shows in words on the member's activity; a screenshot of each."""

from datetime import UTC, datetime, timedelta

import pytest

from loyalty.auth import create_api_key
from loyalty.earning import lapses
from loyalty.extensions import db
from tests import factories as f
from tests.conftest import bearer

pytestmark = pytest.mark.browser


def test_create_a_win_back_rule_and_see_its_award_on_the_member(
    console_page, live_console, screenshot
):
    app, _base = live_console
    page = console_page("owner")
    page.goto(page.base + "/rules/new")
    page.get_by_label("Name").fill("Come back")
    page.get_by_label("Earned on").select_option("lapse")
    page.get_by_label("Fixed bonus points").fill("200")
    page.get_by_label("Days without a paid order").fill("90")
    screenshot(page, "rule-form-lapse")
    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url("**/console/rules")
    listed = page.locator("tr", has=page.get_by_role("rowheader", name="Come back"))
    assert listed.locator("td").nth(0).inner_text() == (
        "200 points to members who haven't ordered for 90 days, once each time"
    )
    screenshot(page, "rules-with-lapse")

    with app.app_context():
        _row, key = create_api_key(db.session, "browser-storefront", ["storefront"])
        db.session.commit()
    last_order = datetime(2026, 1, 1, 12, tzinfo=UTC)
    event = f.paid("c_quiet", occurred_at=last_order, email="quiet@example.com")
    answer = app.test_client().post("/v1/events", json=event, headers=bearer(key))
    assert answer.status_code == 200, answer.get_json()
    with app.app_context():
        assert lapses.lapsing_members(db.session, last_order + timedelta(days=91), 1000) == 1
        db.session.commit()
    page.goto(page.base + "/members/c_quiet")
    first_entry = page.locator("#activity tbody tr").first
    assert (
        "Win-back rule “Come back”: no paid order for 91 days (the last on 1 Jan 2026)"
        in first_entry.inner_text()
    )
    assert "+200" in first_entry.inner_text()
    screenshot(page, "member-win-back-award")
    assert page.foreign_requests == []
