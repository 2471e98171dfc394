"""The widget's tier progress in the unit tiers count, in a real browser."""

from tests.conftest import bearer
from tests.widget import test_widget_browser as widget

live = widget.live  # the demo app served for real: (app, url, admin headers)
pytestmark = widget.pytestmark


def test_tier_progress_is_shown_in_points_when_tiers_count_points(live, browser):
    app, base, admin = live
    widget.api(app, "put", "/v1/program", admin, {"tier_basis": "points"})
    me = widget.api(app, "get", "/v1/me", bearer(widget.widget_token(app, admin)))
    assert me["tier_basis"] == "points" and me["next_tier"]["remaining_spend"] is None
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(widget.TIMEOUT_MS)
    page.goto(f"{base}/demo")
    next_tier = page.locator('[data-testid="next-tier"]').inner_text()
    remaining = f"{me['next_tier']['remaining']:,} points more to reach {me['next_tier']['name']}"
    assert remaining in next_tier, next_tier
    assert "$" not in next_tier and "null" not in next_tier
    progress = page.locator('[data-testid="tier-progress"]')
    expected = min(100, me["qualifying_value"] * 100 // me["next_tier"]["threshold"])
    assert progress.get_attribute("aria-valuenow") == str(expected)
    widget.ARTIFACTS.mkdir(exist_ok=True)
    page.locator('[data-testid="next-tier"]').screenshot(
        path=str(widget.ARTIFACTS / "widget-tier-points.png")
    )
    page.close()
