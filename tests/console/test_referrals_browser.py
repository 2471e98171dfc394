"""Referral review in a real Chromium: a support person approves a held referral and sees the
referrer's reward issued — on the referral's page and in the referrer's balance and activity —
and rejects another with a note; an owner reads the decisions in the audit log and changes the
referral program's settings. Screenshots of each page."""

import re

import pytest

from loyalty.auth import create_api_key
from loyalty.extensions import db
from tests.conftest import bearer
from tests.console.test_console_browser import _csp_violations
from tests.referrals.helpers import claim, code_of, enroll, order

pytestmark = pytest.mark.browser

REFERRER_IP = "203.0.113.5"
LOOKALIKE = "\u0430na@example.com"  # a Cyrillic а: reads as ana@example.com


def seed_queue(app) -> dict:
    """Ana orders from one address; friends claim her link from it (held), one with an
    address that passes for hers, one without an IP; Bea's first order arrives while hers
    waits. Returns the referrals' ids by friend."""
    with app.app_context():
        _row, key = create_api_key(db.session, "browser-test", ["admin"])
        db.session.commit()
    client, admin = app.test_client(), bearer(key)
    enroll(client, admin, "ana", "ana@example.com", name="Ana Lopez")
    order(client, admin, "ana", email="ana@example.com", days_ago=20, ip=REFERRER_IP,
          order_id="ord-ana-1")  # fmt: skip
    code = code_of(client, admin, "ana")
    ids = {}
    for friend, ip in [
        ("bea@example.com", REFERRER_IP),
        ("cleo@example.com", REFERRER_IP),
        (LOOKALIKE, "198.51.100.20"),
        ("dan@example.com", None),
    ]:
        body = claim(client, admin, code, friend, ip=ip).get_json()
        assert body["status"] == "review", body
        ids[friend] = body["referral_id"]
    order(client, admin, "bea", email="bea@example.com", days_ago=1, order_id="ord-bea-1")
    return ids


def test_approve_a_held_referral_and_see_the_referrers_reward_then_reject_one(
    console_page, live_console, screenshot
):
    app, _base = live_console
    ids = seed_queue(app)
    page = console_page("support")
    violations = _csp_violations(page)
    page.goto(page.base + "/members/ana")
    pending_before = int(page.locator(".stats div").nth(1).locator("dd").inner_text())

    page.goto(page.base + "/referrals")
    rows = page.locator("table.referrals tbody tr")
    assert rows.count() == 4
    assert "bea@example.com" in rows.first.inner_text()  # oldest first
    assert "Same IP address as the referrer" in rows.first.inner_text()
    assert "ord-ana-1" in rows.first.inner_text()
    assert "Email looks like another address" in rows.nth(2).inner_text()
    assert "No IP address" in rows.nth(3).inner_text()
    screenshot(page, "referrals-queue")

    page.get_by_role("link", name=f"Referral {ids['bea@example.com']}", exact=True).click()
    assert page.get_by_role("heading", name=f"Referral {ids['bea@example.com']}").is_visible()
    held = page.locator(".held-card")
    assert "an address the referrer's own orders came from" in held.inner_text()
    assert held.get_by_role("link", name=f"Referral {ids['cleo@example.com']}").is_visible()
    screenshot(page, "referral")

    page.get_by_label("Note (optional)").fill("Sisters at one address; checked by phone")
    page.get_by_role("button", name="Approve referral").click()
    status = page.get_by_role("status").inner_text()
    assert re.fullmatch(
        r"Approved\. The referrer's reward was issued: 500 points, pending until \d+ \w+ \d{4}\.",
        status,
    ), status
    assert "500 points · pending" in page.locator("#referrer-reward").inner_text()
    assert page.get_by_role("button", name="Approve referral").count() == 0
    screenshot(page, "referral-approved")

    page.get_by_role("link", name="ana", exact=True).first.click()
    page.wait_for_url("**/console/members/ana")
    assert int(page.locator(".stats div").nth(1).locator("dd").inner_text()) == pending_before + 500
    first_entry = page.locator("#activity tbody tr").first.inner_text()
    assert "Referral reward (friend's order ord-bea-1)" in first_entry and "+500" in first_entry

    page.goto(page.base + f"/referrals/{ids['cleo@example.com']}")
    page.get_by_role("button", name="Reject referral").click()
    assert "Say why" in page.locator("#reason-error").inner_text()
    page.get_by_label("Why reject it").fill("Same household, second account")
    page.get_by_role("button", name="Reject referral").click()
    assert page.get_by_role("status").inner_text().startswith("Rejected.")
    assert page.locator("#referral-note").inner_text() == "Same household, second account"

    page.goto(page.base + "/referrals")
    assert page.locator("table.referrals tbody tr").count() == 2
    page.get_by_role("link", name="Rejected", exact=True).click()
    assert "Same household, second account" in page.locator("table.referrals").inner_text()
    assert page.foreign_requests == [] and violations == []


def test_an_owner_reads_the_decisions_and_changes_the_settings(
    console_page, live_console, screenshot
):
    app, _base = live_console
    ids = seed_queue(app)
    support = console_page("support")
    support.goto(support.base + f"/referrals/{ids['bea@example.com']}")
    support.get_by_role("button", name="Approve referral").click()
    support.get_by_role("status").wait_for()
    support.goto(support.base + "/referrals/settings")
    assert "Not allowed" in support.content()

    page = console_page("owner")
    violations = _csp_violations(page)
    page.goto(page.base + f"/referrals/{ids[LOOKALIKE]}")
    finding = page.locator(".finding").first.inner_text()
    assert "reads as the referrer's own address, ana@example.com" in finding
    assert "Cyrillic Small Letter A" in finding
    screenshot(page, "referral-lookalike")

    page.goto(page.base + "/audit")
    page.get_by_label("What").select_option("referral.approve")
    page.get_by_role("button", name="Filter").click()
    entry = page.locator("tbody.entry").first
    assert support.email in entry.inner_text()
    entry.locator("summary").click()
    changed = entry.locator("tr.changed", has=page.locator("th", has_text=re.compile("^status")))
    assert changed.locator("td.before").inner_text() == "review"
    assert changed.locator("td.after").inner_text() == "converted"
    screenshot(page, "audit-log")

    page.goto(page.base + "/referrals/settings")
    screenshot(page, "referral-settings")
    page.get_by_label("Most referrals from one IP address in 7 days").fill("3")
    page.get_by_label("Friend's minimum order").fill("50")
    page.get_by_role("button", name="Save referral settings").click()
    assert page.get_by_role("status").inner_text() == "Referral program settings saved."
    assert page.get_by_label("Friend's minimum order").input_value() == "50.00"
    page.goto(page.base + "/audit?action=referral_program.update")
    page.locator("tbody.entry summary").first.click()
    changed = page.locator("tbody.entry").first.locator("tr.changed")
    assert [
        [" ".join(changed.nth(i).locator(cell).inner_text().split())
         for cell in ("th", "td.before", "td.after")]
        for i in range(changed.count())
    ] == [["friend_reward.min_order (changed)", "4000", "5000"],
          ["max_claims_per_ip_7d (changed)", "5", "3"]]  # fmt: skip
    assert page.foreign_requests == [] and violations == []
