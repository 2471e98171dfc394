"""The console in a real Chromium: signing in, roles, and a screenshot of each page."""

import time

import pyotp
import pytest

from console import totp
from console.accounts import may
from console.nav import NAV
from tests.console.conftest import PASSWORD, browser_sign_in

pytestmark = pytest.mark.browser


def shown_in_nav(app, role: str) -> list[str]:
    """The main navigation of `role`: the pages this app has that the role may open, in NAV
    order."""
    return [
        entry.label
        for entry in NAV
        if entry.endpoint in app.view_functions and may(role, entry.permission)
    ]


@pytest.mark.parametrize(("role", "home"), [("owner", "dashboard"), ("support", "members")])
def test_sign_in_lands_on_the_console_and_sign_out_leaves_it(
    live_console, new_page, live_admin, screenshot, role, home
):
    app, _base = live_console
    email = live_admin(role)
    page = new_page()
    page.goto(page.base + "/")
    assert page.url.endswith("/console/sign-in")
    screenshot(page, "sign-in")
    browser_sign_in(page, email)
    page.wait_for_url(f"**/console/{home}")
    nav = page.get_by_role("navigation", name="Main")
    expected = shown_in_nav(app, role)
    if role == "owner":  # every page
        assert expected[0] == "Dashboard" and {"Members", "Settings"} <= set(expected)
    else:  # no reports, no program configuration
        assert expected[0] == "Members" and "Dashboard" not in expected
    assert nav.get_by_role("link").all_inner_texts() == expected
    groups = nav.get_by_role("list")
    headings = [entry.group for entry in NAV if entry.label in expected]
    assert groups.count() == len(dict.fromkeys(headings))  # one list under each heading
    assert nav.get_by_role("link", name=expected[0]).get_attribute("aria-current") == "page"
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


def _csp_violations(page) -> list[str]:
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


def test_docs_load_offline_with_no_request_to_another_host(new_page, screenshot):
    page = new_page()
    violations = _csp_violations(page)
    answer = page.goto(page.base.removesuffix("/console") + "/docs")
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    page.get_by_role("heading", name="Loyalty API").wait_for()
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 20  # every operation of the document
    screenshot(page, "docs", full_page=False)
    assert page.foreign_requests == []
    assert violations == []


def test_repeated_wrong_passwords_lock_the_account(live_console, new_page, live_admin, screenshot):
    app, _base = live_console
    app.config["CONSOLE_SIGN_IN_MAX_FAILURES"] = 3  # this test's own app
    email = live_admin("admin")
    page = new_page()
    for _ in range(3):
        browser_sign_in(page, email, "a wrong password")
        assert page.get_by_role("alert").inner_text() == "The email or the password is wrong."
    browser_sign_in(page, email, PASSWORD)  # the right one, too late
    assert page.get_by_role("alert").inner_text().startswith("Too many failed sign-ins.")
    assert page.url.endswith("/console/sign-in")
    screenshot(page, "sign-in-locked")


def test_totp_enrolment_then_sign_in_with_a_code(console_page, new_page, screenshot):
    page = console_page("owner")
    violations = _csp_violations(page)
    page.get_by_role("link", name=page.email).click()
    page.wait_for_url("**/console/profile")
    screenshot(page, "profile")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    page.wait_for_url("**/console/profile/totp")
    qr = page.locator(".qr svg")
    assert qr.is_visible() and qr.bounding_box()["width"] >= 150
    secret = page.get_by_test_id("totp-secret").inner_text()
    screenshot(page, "totp-setup")
    page.get_by_label("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    assert "That code is wrong or expired" in page.locator("#code-error").inner_text()
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url("**/console/profile")
    assert page.get_by_role("status").inner_text().startswith("Two-step sign-in is on")
    assert violations == [] and page.foreign_requests == []

    other = new_page()
    browser_sign_in(other, page.email)
    other.wait_for_url("**/console/sign-in/code")
    screenshot(other, "sign-in-code")
    other.get_by_label("Code from your authenticator app").fill("000000")
    other.get_by_role("button", name="Verify").click()
    assert "That code is wrong" in other.locator("#code-error").inner_text()
    # the enrolment spent this step's code; the next step's is good
    code = pyotp.TOTP(secret).at(time.time() + totp.STEP_SECONDS)
    other.get_by_label("Code from your authenticator app").fill(code)
    other.get_by_role("button", name="Verify").click()
    other.wait_for_url("**/console/dashboard")
    assert other.get_by_text(page.email).is_visible()


def test_every_page_renders_under_the_csp_without_a_violation(console_page, screenshot):
    page = console_page("owner")
    violations = _csp_violations(page)
    pages = (
        "dashboard", "reports", "reports/cohorts", "reports/segments", "members", "referrals",
        "referrals/settings", "gift-cards", "gift-cards/new", "tiers", "rules", "rewards",
        "settings", "webhooks", "webhooks/new", "api-keys", "api-keys/new", "audit", "profile",
    )  # fmt: skip
    for name in pages:
        answer = page.goto(f"{page.base}/{name}")
        assert answer.status == 200, name
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        screenshot(page, f"page-{name.replace('/', '-')}")
    page.goto(page.base + "/no-such-page")
    screenshot(page, "not-found")
    assert violations == []
    assert page.foreign_requests == []
