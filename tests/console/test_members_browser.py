"""Members in a real Chromium: find a member, adjust their points, see the ledger entry and
the audit row; a refused adjustment shows the API's explanation."""

import pytest
from sqlalchemy import select

from loyalty.audit import AuditLog
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.members import service as members
from loyalty.seed import DEMO_CUSTOMER
from rewards.catalog import service as catalog
from rewards.catalog.models import Reward

pytestmark = pytest.mark.browser


def test_find_a_member_adjust_points_and_see_the_entry_and_the_audit_row(
    console_page, live_console, screenshot
):
    app, _base = live_console
    with app.app_context():
        for i, name in enumerate(["ana", "ben", "chloe", "dev", "emma"]):
            email = f"{name}@example.com"
            member, _ = members.enroll(db.session, hooks(), f"cus-{1001 + i}", email)
            members.adjust(db.session, member, 120 * (i + 1), "Welcome points", "cli")
        shopper = members.get_member(db.session, DEMO_CUSTOMER)
        shipping = db.session.scalar(select(Reward.id).where(Reward.name == "Free shipping"))
        code = catalog.redeem(db.session, shopper, shipping).code
        db.session.commit()
        db.session.remove()
    page = console_page("support")
    page.goto(page.base + "/members")
    assert page.get_by_role("link", name=DEMO_CUSTOMER).is_visible()
    screenshot(page, "members-list")

    page.get_by_label("Find a member").fill(DEMO_CUSTOMER)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"**/console/members/{DEMO_CUSTOMER}")
    assert page.get_by_role("heading", name=f"Member {DEMO_CUSTOMER}").is_visible()
    available = page.locator(".stats div").first.locator("dd").inner_text()
    assert available == "1,250"  # 1,500 less the 250 of free shipping
    assert code in page.locator("#codes").inner_text()
    assert "more to VIB" in page.locator("#tier-progress-text").inner_text()

    page.get_by_role("link", name="Adjust points").click()
    page.get_by_label("Points").fill("-999999")
    page.get_by_label("Reason").fill("Typo")
    page.get_by_role("button", name="Adjust points").click()
    assert page.get_by_role("alert").inner_text() == "This needs 999999 available points."
    screenshot(page, "member-adjust-refused")

    page.get_by_label("Points").fill("250")
    page.get_by_label("Reason").fill("Parcel arrived late")
    page.get_by_role("button", name="Adjust points").click()
    page.wait_for_url(f"**/console/members/{DEMO_CUSTOMER}")
    assert page.get_by_role("status").inner_text() == "+250 points: Parcel arrived late"
    assert page.locator(".stats div").first.locator("dd").inner_text() == "1,500"
    first_entry = page.locator("#activity tbody tr").first
    assert "Parcel arrived late" in first_entry.inner_text()
    assert "+250" in first_entry.inner_text()
    with app.app_context():
        audit = db.session.scalar(
            select(AuditLog).where(AuditLog.action == "member.adjust").order_by(AuditLog.id.desc())
        )
        actor = audit.actor
        assert audit.after["points"] == 250 and audit.after["reason"] == "Parcel arrived late"
        db.session.remove()
    assert actor.startswith("admin:")
    change = page.locator("#changes tbody tr").first.inner_text()
    assert actor in change and "Adjusted +250 points: Parcel arrived late" in change
    screenshot(page, "member")
    assert page.foreign_requests == []


def test_typing_an_email_lists_the_member_without_a_reload(console_page):
    page = console_page("support")
    page.goto(page.base + "/members")
    page.get_by_label("Find a member").press_sequentially("DEMO@example.com")
    results = page.locator("#results")
    results.get_by_text("No member has").or_(results.get_by_role("link")).first.wait_for()
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 1")
    assert page.url.endswith("/console/members")  # the list changed in place
    assert results.get_by_role("link", name=DEMO_CUSTOMER).is_visible()


def test_an_owner_erases_a_member_after_typing_their_id(console_page, live_console, screenshot):
    app, _base = live_console
    with app.app_context():
        members.enroll(db.session, hooks(), "leaving-1", "leaving@example.com", name="Lea Ving")
        db.session.commit()
        db.session.remove()
    page = console_page("owner")
    page.goto(page.base + "/members/leaving-1")
    page.get_by_role("link", name="Erase member").click()
    page.get_by_label("Type the customer id to confirm").fill("leaving-2")
    page.get_by_role("button", name="Erase this member").click()
    assert "nothing was erased" in page.locator("#confirm-error").inner_text()
    screenshot(page, "member-erase-refused")
    page.get_by_label("Type the customer id to confirm").fill("leaving-1")
    page.get_by_role("button", name="Erase this member").click()
    page.wait_for_url("**/console/members")
    assert "Member leaving-1 erased" in page.get_by_role("status").inner_text()
    assert page.get_by_role("link", name="leaving-1").count() == 0
    assert page.foreign_requests == []
