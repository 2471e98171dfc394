"""The reward catalog in a real Chromium: create a reward, see it listed, retire it."""

import pytest

pytestmark = pytest.mark.browser


def test_create_a_reward_and_retire_it(console_page, screenshot):
    page = console_page("owner")
    page.goto(page.base + "/rewards")
    assert page.get_by_role("cell", name="Free shipping").first.is_visible()
    screenshot(page, "rewards")

    page.get_by_role("link", name="New reward").click()
    page.get_by_label("Name").fill("Spring 15% off")
    page.get_by_label("Kind").select_option("percent_off")
    page.get_by_label("Percent off").fill("150")
    page.get_by_label("Cost in points").fill("750")
    page.get_by_label("Stock").fill("25")
    page.get_by_label("Minimum tier").select_option("VIB")
    page.get_by_role("button", name="Create reward").click()
    assert "less than or equal to 100" in page.locator("#percent-error").inner_text()
    screenshot(page, "reward-form-refused")

    page.get_by_label("Percent off").fill("15")
    page.get_by_role("button", name="Create reward").click()
    assert page.get_by_role("status").inner_text() == "Reward “Spring 15% off” created."
    row = page.get_by_role("row").filter(has_text="Spring 15% off")
    assert "15% off" in row.inner_text() and "750" in row.inner_text()
    assert "25" in row.inner_text() and "VIB" in row.inner_text()

    row.get_by_role("link", name="Spring 15% off").click()
    screenshot(page, "reward-form")
    page.get_by_role("link", name="Retire reward").click()
    page.get_by_role("button", name="Retire reward").click()
    assert "retired" in page.get_by_role("status").inner_text()
    assert page.get_by_role("row").filter(has_text="Spring 15% off").count() == 0
    page.get_by_role("link", name="Retired rewards (1)").click()
    assert page.get_by_role("row").filter(has_text="Spring 15% off").count() == 1
    assert page.foreign_requests == []
