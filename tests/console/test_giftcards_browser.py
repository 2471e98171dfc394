"""Gift cards in a real Chromium: issue a card and see its code exactly once — on the result
page, and neither after a reload, nor going back, nor on the card page, nor in the list."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from loyalty.codes import normalize_code
from loyalty.extensions import db
from loyalty.program.service import get_program
from loyalty.types import utcnow
from rewards.giftcards import service
from rewards.giftcards.models import GiftCard, GiftCardPurchase
from tests.console.conftest import browser_sign_in

pytestmark = pytest.mark.browser


class NoLimits:
    def check(self):
        pass

    def failed(self):
        pass


def seed_cards(app):
    """A few cards with history, so the pages show what they look like in use."""
    with app.app_context():
        secrets, now, program = app.config["SECRET_KEYS"], utcnow(), get_program(db.session)

        def make(amount, **extra):
            return service.issue_card(db.session, program, amount=amount, currency="USD",
                                      secrets=secrets, actor="test", now=now, **extra)  # fmt: skip

        bought = make(7500, source="stripe")
        db.session.add(
            GiftCardPurchase(
                session_id="cs_test_a1b2c3d4e5", amount=7500, currency="USD",
                purchaser_email="maria@example.com", recipient_email="jonas@example.com",
                status="completed", card_id=bought.card.id, completed_at=now,
                code_revealed_at=now,
            )
        )  # fmt: skip
        for i, order in enumerate(("1042", "1057", "1063")):
            held = service.create_hold(
                db.session, guard=NoLimits(), code_text=bought.code, amount=1500 + 500 * i,
                order_id=order, secrets=secrets, now=now, actor="test",
            )  # fmt: skip
            if i == 0:
                service.capture_hold(db.session, held.id, 1200, now, "test")
            elif i == 1:
                service.void_hold(db.session, held.id, now, "test")
        service.adjust(db.session, bought.card.id, 500, "Parcel arrived late", now, "test")
        make(2500, bonus_amount=500, note="Autumn raffle")
        disabled = make(10000)
        service.disable(db.session, disabled.card.id, now, "test")
        db.session.commit()
        return bought.card.id


def test_issue_a_gift_card_and_see_its_code_exactly_once(console_page, live_console, screenshot):
    app, _base = live_console
    bought_id = seed_cards(app)
    page = console_page("owner")
    page.goto(page.base + "/gift-cards")
    assert page.get_by_role("link", name=f"Card {bought_id}").is_visible()
    screenshot(page, "giftcards-list")

    page.get_by_role("link", name="Issue a gift card").click()
    page.get_by_label("Amount").fill("40")
    page.get_by_label("Bonus (optional)").fill("10")
    page.get_by_label("Note (optional)").fill("Thank-you for the Hamburg pop-up team")
    assert page.get_by_label("Currency").input_value() == "USD"
    screenshot(page, "giftcard-issue")
    page.get_by_role("button", name="Issue gift card").click()

    shown = page.locator("#gift-card-code")
    code = shown.inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)
    expect(page.get_by_role("button", name="Copy code")).to_be_visible()  # the script ran
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy code").click()
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == code
    assert "The card holds $50.00" in page.locator("main").inner_text()
    screenshot(page, "giftcard-code-once")
    with app.app_context():
        card = db.session.scalars(select(GiftCard).order_by(GiftCard.id.desc())).first()
        card_id, count = card.id, db.session.scalar(select(func.count()).select_from(GiftCard))
        db.session.remove()
    assert card.last4 == normalize_code(code)[-4:]

    def absent(where: str) -> None:
        text = page.content()
        for form in (code, normalize_code(code), normalize_code(code).lower()):
            assert form not in text, where

    page.reload()  # sends the same form again: it leads to the card, without the code
    page.wait_for_url(f"**/console/gift-cards/{card_id}")
    absent("after a reload")
    assert "its code was shown only then" in page.get_by_role("status").inner_text()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GiftCard)) == count
        db.session.remove()

    page.go_back()  # to the form, fresh: nothing of the card issued from it
    absent("going back")
    assert page.get_by_label("Amount").input_value() == ""
    page.goto(page.base + f"/gift-cards/{card_id}")
    absent("on the card page")
    assert page.get_by_role("heading", name=f"Gift card {card_id}").is_visible()
    page.goto(page.base + "/gift-cards")
    absent("in the list")

    page.get_by_label("Find a gift card").fill(card.last4)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"**/console/gift-cards/{card_id}")
    absent("found by its last 4")

    page.goto(page.base + f"/gift-cards/{bought_id}")
    assert "maria@example.com" in page.locator("#purchase").inner_text()
    assert "Spent $12.00 on order 1042" in page.locator("#transactions").inner_text()
    screenshot(page, "giftcard-page")
    page.get_by_role("link", name="Adjust balance").click()
    page.get_by_label("Amount").fill("-100")
    page.get_by_label("Reason").fill("Double refund")
    page.get_by_role("button", name="Adjust balance").click()
    assert "Only $43.00 can be taken away now" in page.locator("#amount-error").inner_text()
    screenshot(page, "giftcard-adjust-refused")
    page.get_by_label("Amount").fill("-5")
    page.get_by_role("button", name="Adjust balance").click()
    page.wait_for_url(f"**/console/gift-cards/{bought_id}")
    assert "Double refund" in page.get_by_role("status").inner_text()
    page.get_by_role("link", name="Disable card").click()
    screenshot(page, "giftcard-disable")
    page.get_by_role("button", name="Disable gift card").click()
    assert "can never be spent again" in page.get_by_role("status").inner_text()
    assert "not spendable (disabled)" in page.locator(".stat-main").inner_text()
    screenshot(page, "giftcard-disabled")
    assert page.foreign_requests == []


def test_without_javascript_the_code_is_shown_once_without_a_dead_copy_button(
    browser, live_console, live_admin
):
    _app, base = live_console
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.base = f"{base}/console"
    browser_sign_in(page, live_admin("admin"))
    page.goto(page.base + "/gift-cards/new")
    page.get_by_label("Amount").fill("25")
    page.get_by_role("button", name="Issue gift card").click()
    page.wait_for_load_state()  # its stylesheets too: what is hidden is decided with them
    code = page.locator("#gift-card-code").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)
    assert page.get_by_role("button", name="Copy code").count() == 0  # hidden, not just inert
    page.get_by_role("link", name="I have copied it: open the card").click()
    assert code not in page.content() and "The card holds" not in page.content()
    context.close()
