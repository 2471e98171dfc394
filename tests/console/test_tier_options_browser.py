"""A tier's entry reward and birthday points, and what tiers count, in a real Chromium: set
through the previews, applied, screenshots of each page."""

import pytest
from sqlalchemy import select

from loyalty.extensions import db
from loyalty.program.models import Program
from loyalty.tiers.models import Tier
from rewards.catalog.models import Reward
from tests.console.test_program_browser import row, seed_members, tiers_of

pytestmark = pytest.mark.browser


def test_tier_rewards_and_the_basis_through_their_previews(console_page, live_console, screenshot):
    app, _base = live_console
    seed_members(app)
    with app.app_context():
        reward = db.session.scalars(
            select(Reward).where(Reward.deleted_at.is_(None)).order_by(Reward.id)
        ).first()
        reward_name = reward.name
    page = console_page("owner")
    page.goto(page.base + "/tiers")
    page.get_by_role("link", name="Edit VIB").click()
    page.get_by_label("Entry reward").select_option(label=reward_name)
    page.get_by_label("Birthday points").fill("500")
    screenshot(page, "tiers-options-form")
    page.get_by_role("button", name="Preview change").click()
    preview = page.locator("section.preview")
    preview.get_by_role("heading", name="Preview: who would move").wait_for()
    after = preview.locator(".ladder-after").inner_text()
    assert f"Entry reward: {reward_name}" in after and "Birthday: 500 points" in after
    screenshot(page, "tiers-options-preview")
    preview.get_by_role("button", name="Apply change").click()
    page.wait_for_url("**/console/tiers")
    assert row(page, "VIB").locator("td").nth(4).inner_text() == reward_name
    assert row(page, "VIB").locator("td").nth(5).inner_text() == "500 points"
    with app.app_context():
        vib = db.session.scalar(select(Tier).where(Tier.name == "VIB"))
        assert (vib.entry_reward_id, vib.birthday_points) == (reward.id, 500)

    # What tiers count: paid orders (one each, so nobody reaches VIB's 35,000).
    page.get_by_label("Qualify members for tiers by").select_option(label="Paid orders")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("section.preview")
    preview.get_by_role("heading", name="Preview: who would move").wait_for()
    moves = [" ".join(t.split()) for t in preview.locator("tr.move").all_inner_texts()]
    assert "VIB → to Insider 3 members" in moves and "Rouge → to Insider 1 member" in moves
    assert "35,000 orders" in preview.inner_text()
    assert tiers_of(app)["vib_1"] == "VIB"  # the preview changed nothing
    screenshot(page, "tiers-basis-preview")
    preview.get_by_role("button", name="Apply change").click()
    page.wait_for_url("**/console/tiers")
    assert page.get_by_role("status").inner_text().startswith("Tiers now count paid orders.")
    assert set(tiers_of(app).values()) == {"Insider"}
    with app.app_context():
        assert db.session.get(Program, 1).tier_basis == "orders"
    assert row(page, "VIB").locator("td").nth(0).inner_text() == "35,000 orders"
    screenshot(page, "tiers-basis-applied")
    assert page.foreign_requests == []
