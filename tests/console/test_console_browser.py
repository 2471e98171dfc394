"""The console in a real Chromium: signing in, roles, and a screenshot of each page."""

import pytest

from tests.console.conftest import browser_sign_in

pytestmark = pytest.mark.browser


def test_sign_in_lands_on_the_console_and_sign_out_leaves_it(new_page, live_admin, screenshot):
    email = live_admin("owner")
    page = new_page()
    page.goto(page.base + "/")
    assert page.url.endswith("/console/sign-in")
    screenshot(page, "sign-in")
    browser_sign_in(page, email)
    page.wait_for_url("**/console/members")
    assert page.get_by_role("navigation", name="Main").get_by_role("link").all_inner_texts() == [
        "Members", "Tiers", "Earning rules", "Rewards", "Settings",
    ]  # fmt: skip
    assert page.get_by_text(email).is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in")
    assert page.get_by_text("You are signed out.").is_visible()
    assert page.foreign_requests == []


def test_a_wrong_password_is_refused_on_the_page(new_page, live_admin, screenshot):
    email = live_admin("owner")
    page = new_page()
    browser_sign_in(page, email, "not the right one")
    assert page.get_by_role("alert").inner_text() == "The email or the password is wrong."
    assert page.url.endswith("/console/sign-in")
    screenshot(page, "sign-in-wrong-password")


def test_an_owner_changes_the_program_settings(console_page, screenshot):
    page = console_page("owner")
    page.goto(page.base + "/settings")
    screenshot(page, "settings")
    page.get_by_label("Pending days").fill("21")
    page.get_by_role("button", name="Save settings").click()
    assert page.get_by_role("status").inner_text() == "Program settings saved."
    assert page.get_by_label("Pending days").input_value() == "21"
    page.get_by_label("Pending days").fill("99999")
    page.get_by_role("button", name="Save settings").click()
    assert "Must be greater than or equal to 0 and less than or equal to 3650." in (
        page.locator("#pending_days-error").inner_text()
    )
    screenshot(page, "settings-refused")


def test_support_gets_the_403_page_on_settings(console_page, screenshot):
    page = console_page("support")
    answer = page.goto(page.base + "/settings")
    assert answer.status == 403
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    assert "Settings" not in page.get_by_role("navigation", name="Main").inner_text()
    screenshot(page, "forbidden")
