"""Reports in a real Chromium: the cohort heatmap's cells for a known data set, the retention
report for a period (a refused period first), the segments, a segment's page and its CSV."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from loyalty.auth import create_api_key
from loyalty.extensions import db
from loyalty.orders.models import Order
from loyalty.seed import DEMO_CUSTOMER
from tests import factories as f
from tests.conftest import bearer
from tests.console.conftest import SCREENSHOTS
from tests.console.test_reports import EXPECTED_HEATMAP, seed_cohorts

pytestmark = pytest.mark.browser


# A cell's own text, without the visually hidden words for screen readers.
SHOWN_TEXT = "e => [...e.childNodes].filter(n => n.nodeType === 3).map(n => n.data).join('').trim()"


def heatmap_cells(page) -> list[list]:
    """The heatmap's body as the browser shows it: [row header, customers, (text, class)...]."""
    shown = []
    for row in page.locator("#cohort-heatmap tbody tr").all():
        cells = row.locator("td").all()
        entry = [row.locator("th").text_content(), cells[0].text_content()]
        for cell in cells[1:]:
            shade = next(c for c in cell.get_attribute("class").split() if c.startswith("heat-"))
            entry.append((cell.evaluate(SHOWN_TEXT) or None, shade))
        shown.append(entry)
    return shown


def test_reports_in_the_browser(console_page, live_console, screenshot):
    app, _base = live_console
    with app.app_context():
        _row, admin_key = create_api_key(db.session, "browser-admin", ["admin"])
        _row, reports_key = create_api_key(db.session, "browser-reports", ["reports"])
        db.session.commit()
        db.session.remove()
    api = app.test_client()
    seed_cohorts(api, bearer(admin_key))

    # The demo shopper's one order (6 days ago) is a cohort of its own and the latest month
    # with an order: the known rows go on with 0% up to it, the demo's row after them.
    with app.app_context():
        demo = db.session.scalar(select(func.max(Order.occurred_at)))
        db.session.remove()
    last = (demo.year - 2026) * 12 + demo.month - 1  # months from January 2026
    zero, none = ("0%", "heat-0"), (None, "heat-none")
    expected = [
        [*row[:2], *[zero if cell == none else cell for cell in row[2:]]]
        + [zero] * (last - 2 - index)
        + [none] * index
        for index, row in enumerate(EXPECTED_HEATMAP)
    ]
    expected.append([f"{demo:%b %Y}", "1", ("100%", "heat-9"), *[none] * last])

    page = console_page("analyst")
    page.goto(page.base + "/reports/cohorts")
    heading = [th.evaluate(SHOWN_TEXT) for th in page.locator("#cohort-heatmap thead th").all()]
    assert heading == ["First order", "Customers", "Month 0", *map(str, range(1, last + 1))]
    assert heatmap_cells(page) == expected
    later = page.get_by_role("columnheader", name="2 months later")
    assert later.is_visible()  # what a screen reader says of the column "2"
    jan_month_1 = page.locator("#cohort-heatmap tbody tr").first.locator("td").nth(2)
    assert jan_month_1.get_attribute("title") == "2 of 3 customers"
    # The shades as drawn: the darkest step has white text, the lightest dark text.
    darkest = page.locator("#cohort-heatmap td.heat-9").first
    assert darkest.evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
    assert darkest.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(31, 50, 130)"
    light = page.locator("#cohort-heatmap td.heat-2").first
    assert light.evaluate("e => getComputedStyle(e).color") == "rgb(29, 35, 48)"
    screenshot(page, "reports-cohorts")

    # Recent orders: active members for the segments, and figures for the last 30 days.
    now = datetime.now(UTC)
    recent = {
        "r-big": [(3, 45000), (12, 38000), (40, 52000)],
        "r-freq": [(2, 1500), (9, 1200), (16, 1800), (25, 1400)],
        "r-one": [(5, 6500)],
        "r-two": [(7, 4000), (21, 3500)],
        "a": [(4, 2500)],  # January's customer back
    }
    for customer, orders in recent.items():
        for days, amount in orders:
            event = f.paid(
                customer, lines=[f.line(unit_price=amount)], occurred_at=now - timedelta(days=days)
            )
            assert api.post("/v1/events", json=event, headers=bearer(admin_key)).status_code == 200

    page.goto(page.base + "/reports")
    page.get_by_label("From").fill("2026-04-01")
    page.get_by_label("To (not included)").fill("2026-03-01")
    page.get_by_role("button", name="Show retention").click()
    assert page.locator("#to-error").inner_text() == "Must be after “From”."
    assert page.get_by_label("To (not included)").get_attribute("aria-invalid") == "true"
    screenshot(page, "reports-retention-refused")

    page.get_by_role("link", name="Last 30 days").click()
    start = (now.date() + timedelta(days=1) - timedelta(days=30)).isoformat()
    end = (now.date() + timedelta(days=1)).isoformat()
    figures = api.get(
        f"/v1/reports/retention?from={start}&to={end}", headers=bearer(reports_key)
    ).get_json()
    assert page.locator("#crr-value").inner_text() == f"{figures['retention_rate']}%"
    for letter, key in (("S", "customers_at_start"), ("N", "new_customers"), ("E", "customers")):
        assert page.locator(f'[data-figure="{letter}"]').inner_text() == str(figures[key])
    # S: the 8 customers of January to March and r-big (40 days ago); N: r-freq, r-one, r-two
    # and the demo shopper; E: those, r-big and a (back after January).
    assert [figures[key] for key in ("customers_at_start", "new_customers", "customers")] == [
        9,
        4,
        6,
    ]
    assert figures["retention_rate"] == "22.22"
    members_rate = page.locator('tr[data-figure="repeat_purchase_rate"] td').nth(1).inner_text()
    assert members_rate == f"{figures['members']['repeat_purchase_rate']}%"
    screenshot(page, "reports-retention")

    page.get_by_role("link", name="Cohorts").click()
    screenshot(page, "reports-cohorts-with-recent")
    heatmap = page.locator('section[aria-labelledby="heatmap-title"]')
    heatmap.screenshot(path=str(SCREENSHOTS / "reports-heatmap.png"))  # docs/console.md's

    page.get_by_role("link", name="Segments").click()
    row = page.locator('#segments tr[data-segment="loyal_high_value"]')
    # High value: the 2nd of 13 buyers by spend (the demo shopper's $122.00) or more.
    assert row.locator("td").nth(1).inner_text() == "2"
    screenshot(page, "reports-segments")

    row.get_by_role("link", name="Loyal, high value", exact=True).click()
    page.wait_for_url("**/console/reports/segments/loyal_high_value")
    members = page.locator("#segment-members tbody th").all_inner_texts()
    assert members == ["r-big", DEMO_CUSTOMER]  # newest member first
    assert page.get_by_role("link", name="r-big").count() == 0  # analysts open no member page
    assert page.get_by_role("link", name="Award bonus points to this segment").count() == 0
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == "segment-loyal_high_value.csv"
    text = download.value.path().read_text(encoding="utf-8")
    assert text.splitlines()[0] == "segment,customer_id,recency_days,frequency,monetary"
    assert sorted(text.splitlines()[1:]) == [
        f"loyal_high_value,{DEMO_CUSTOMER},6,1,12200",
        "loyal_high_value,r-big,3,3,135000",
    ]
    screenshot(page, "reports-segment")

    owner = console_page("owner")
    owner.goto(owner.base + "/reports/segments/low_value_inactive")
    assert owner.get_by_role("link", name="b", exact=True).is_visible()  # owners open member pages
    screenshot(owner, "reports-segment-owner")
    assert page.foreign_requests == [] and owner.foreign_requests == []
