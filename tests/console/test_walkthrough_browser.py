"""The README's console walkthrough, in a real Chromium, on a fresh `make run`.

The server starts exactly as `make run` starts it (tests/test_readme.py: a fresh SQLite file,
`flask db upgrade`, `flask loyalty seed-demo` with the demo history, `flask run`), and each
test follows one of the README's two days step by step, by the names the README gives the
links, buttons and fields: a support person's (find a member, fix a balance, review the held
referrals) and a marketer's (the dashboard, retention for the last 12 months, cohorts, a
segment, its CSV, bonus points for it). What each step should change is read back through the
API with a key of the test's own. Screenshots: test-artifacts/console/walkthrough-*.png.
"""

import csv
import io
import json
import re
import subprocess
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT
from tests.console.conftest import SCREENSHOTS
from tests.test_readme import FLASK, served_as_make_run
from tests.widget.test_widget_browser import TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

README = (ROOT / "README.md").read_text()
CONSOLE = " ".join(README[README.index("## Console") : README.index("## Where to go next")].split())
SEGMENT = "At risk, high value"
WAIT = {"timeout": TIMEOUT_MS}  # a shared machine: a page can take a while


@pytest.fixture(scope="module")
def made_run(tmp_path_factory):
    """A fresh `make run` (the demo history on, as `make run` has it); yields (base, env,
    owner's password, admin API key for the test's own checks)."""
    with served_as_make_run(tmp_path_factory.mktemp("make-run"), DEMO_HISTORY="1") as (
        base,
        env,
        seeded,
    ):
        password = re.search(r"Sign in as owner@example\.com with the password (\S+)", seeded)
        assert password, seeded
        key = cli(env, "api-keys", "create", "--name", "walkthrough-check", "--scope", "admin")
        yield base, env, password.group(1), key.strip().splitlines()[-1]


def cli(env, *args) -> str:
    return subprocess.run(
        [str(FLASK), "--app", "wsgi", *args], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip


def api(base: str, key: str, path: str) -> dict:
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        f"{base}{path}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        return json.load(answer)


def points(base: str, key: str, customer_id: str) -> dict:
    return api(base, key, f"/v1/members/{customer_id}")["points"]


def whole(text: str) -> int:
    return int(text.strip().replace(",", ""))


@pytest.fixture
def open_page(browser, made_run):
    base = made_run[0]

    def make():
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.foreign_requests = []
        page.on(
            "request",
            lambda r: None if r.url.startswith(base) else page.foreign_requests.append(r.url),
        )
        return page

    return make


def shot(page, step: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"walkthrough-{step}.png"), full_page=True)


def sign_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/console")  # the address the README gives
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/sign-in" not in url)


def nav(page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def test_the_readme_names_what_this_walk_clicks():
    """The walk below clicks what the README's steps name: keep the two in step."""
    for name in [
        "admins create --email support@example.com --role support",
        "**Members**", "**Find a member**", "`demo-shopper`", "**Search**", "**Adjust points**",
        "**Points**", "**Reason**", "**Activity**", "**Referrals**", "**In review**",
        "**No IP address**", "**Note (optional)**", "**Approve referral**",
        "**Email looks like another address**", "**Why reject it**", "**Reject referral**",
        "**Dashboard**", "**Reports**", "**Last 12 months**", "**Cohorts**", "**Segments**",
        f"**{SEGMENT}**", "**Download CSV**", "**Award bonus points to this segment**",
        "**Points per member**", "**Preview**", "**Confirm: award", "**Done**",
        "docs/console-dashboard.png",
    ]:  # fmt: skip
        assert name in CONSOLE, name


def test_a_support_persons_day(made_run, open_page):
    base, env, _owner_password, key = made_run
    created = cli(env, "admins", "create", "--email", "support@example.com", "--role", "support")
    lines = created.strip().splitlines()
    assert lines[0] == "Created admin support@example.com (support). Password, shown only now:"
    page = open_page()
    sign_in(page, base, "support@example.com", lines[-1])
    home = page.get_by_role("heading", name="Members", exact=True)  # support's home
    expect(home).to_be_visible(**WAIT)
    shot(page, "support-1-members")

    # Find a member, fix a balance.
    before = points(base, key, "demo-shopper")
    page.get_by_label("Find a member").fill("demo-shopper")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="Member demo-shopper")).to_be_visible(**WAIT)
    shown = page.locator(".stats div").first.locator("dd").inner_text()
    assert whole(shown) == before["available"]
    shot(page, "support-2-member")
    page.get_by_role("link", name="Adjust points").click()
    page.get_by_label("Points").fill("250")
    page.get_by_label("Reason").fill("Parcel arrived damaged: goodwill points")
    shot(page, "support-3-adjust")
    page.get_by_role("button", name="Adjust points").click()
    page.wait_for_url(re.compile(r".*/console/members/demo-shopper$"))
    expect(page.get_by_role("status").first).to_be_visible(**WAIT)
    after = points(base, key, "demo-shopper")
    assert after["available"] == before["available"] + 250
    assert whole(page.locator(".stats div").first.locator("dd").inner_text()) == after["available"]
    activity = page.get_by_role("region", name="Activity")
    first = activity.locator("tbody tr").first
    assert "Parcel arrived damaged: goodwill points" in first.inner_text()
    assert "+250" in first.inner_text()
    shot(page, "support-4-adjusted")

    # Review the referrals the fraud rules held.
    nav(page, "Referrals")
    expect(page.get_by_role("link", name="In review")).to_have_attribute(
        "aria-current", "page", **WAIT
    )
    rows = page.locator("table.referrals tbody tr")
    expect(rows).to_have_count(3, **WAIT)
    shot(page, "support-5-queue")

    held = rows.filter(has_text="No IP address")
    referrer = held.locator("td").nth(1).inner_text().strip()
    referrer_before = points(base, key, referrer)
    held.get_by_role("link", name=re.compile(r"^Referral \d+$")).click()
    assert "No IP address" in page.locator(".held-card").inner_text()
    assert "demo-held1-o1" in page.locator("main").inner_text()  # the friend has ordered
    shot(page, "support-6-referral")
    page.get_by_label("Note (optional)").fill("Ordered from the app, which sends no IP; fine")
    page.get_by_role("button", name="Approve referral").click()
    status = page.get_by_role("status").inner_text()
    assert re.fullmatch(
        r"Approved\. The referrer's reward was issued: 500 points, pending until \d+ \w+ \d{4}\.",
        status,
    ), status
    shot(page, "support-7-approved")
    referrer_after = points(base, key, referrer)
    assert referrer_after["pending"] == referrer_before["pending"] + 500
    page.get_by_role("link", name=referrer).first.click()
    referral_entry = page.get_by_role("region", name="Activity").locator("tbody tr").first
    assert "+500" in referral_entry.inner_text()
    assert "Pending" in referral_entry.inner_text()
    shot(page, "support-8-referrer")

    nav(page, "Referrals")
    lookalike = page.locator("table.referrals tbody tr").filter(
        has_text="Email looks like another address"
    )
    lookalike.get_by_role("link", name=re.compile(r"^Referral \d+$")).click()
    referral_id = page.url.rsplit("/", 1)[1]
    page.get_by_label("Why reject it").fill("The referrer's own address with Cyrillic letters")
    page.get_by_role("button", name="Reject referral").click()
    assert page.get_by_role("status").inner_text().startswith("Rejected.")
    rejected = api(base, key, f"/v1/referrals/{referral_id}")
    assert rejected["status"] == "rejected"
    shot(page, "support-9-rejected")
    nav(page, "Referrals")
    left = page.locator("table.referrals tbody tr")
    expect(left).to_have_count(1, **WAIT)  # one left for tomorrow
    assert page.foreign_requests == []


def test_a_marketers_day(made_run, open_page):
    base, _env, owner_password, key = made_run
    page = open_page()
    sign_in(page, base, "owner@example.com", owner_password)
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible(**WAIT)
    page.locator("canvas").first.wait_for()
    page.wait_for_timeout(600)  # the charts' short animation
    shot(page, "marketer-1-dashboard")

    # Retention for the last 12 months: the CRR with its S, N and E, as the API has them.
    nav(page, "Reports")
    page.get_by_role("link", name="Last 12 months").click()
    preset = page.get_by_role("link", name="Last 12 months")
    expect(preset).to_have_attribute("aria-current", "true", **WAIT)
    start = page.get_by_label("From", exact=True).input_value()
    end = page.get_by_label("To (not included)").input_value()
    report = api(base, key, f"/v1/reports/retention?from={start}&to={end}")
    figure = {k: whole(page.locator(f'[data-figure="{k}"]').inner_text()) for k in "SNE"}
    assert figure == {
        "S": report["customers_at_start"],
        "N": report["new_customers"],
        "E": report["customers"],
    }
    assert figure["S"] > 0 and figure["E"] > figure["N"] > 0  # two years of demo history
    assert page.locator("#crr-value").inner_text() == f"{report['retention_rate']}%"
    assert "CRR = ((E − N) / S) × 100 = " in page.locator(".formula").inner_text()
    shot(page, "marketer-2-retention")

    page.get_by_role("link", name="Cohorts", exact=True).click()
    heatmap = page.locator("#cohort-heatmap")
    expect(heatmap.locator("tbody tr")).to_have_count(24, **WAIT)  # the newest two years of cohorts
    shot(page, "marketer-3-cohorts")

    # A segment, its members as CSV, and bonus points for each of them.
    page.get_by_role("link", name="Segments", exact=True).click()
    shot(page, "marketer-4-segments")
    page.get_by_role("link", name=SEGMENT, exact=True).click()
    expect(page.get_by_role("heading", name=SEGMENT)).to_be_visible(**WAIT)
    count = whole(page.locator(".segment-count strong").inner_text())
    assert count > 0
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(rows) == count
    assert {row["segment"] for row in rows} == {"at_risk_high_value"}
    members = [row["customer_id"] for row in rows]
    before = {member: points(base, key, member)["available"] for member in members}
    shot(page, "marketer-5-segment")

    page.get_by_role("link", name="Award bonus points to this segment").click()
    page.get_by_label("Points per member").fill("300")
    page.get_by_label("Reason").fill("We miss you: 300 points toward your next reward")
    page.get_by_role("button", name="Preview").click()
    assert whole(page.get_by_test_id("preview-members").inner_text()) == count
    assert whole(page.get_by_test_id("preview-points").inner_text()) == 300 * count
    shot(page, "marketer-6-preview")
    page.get_by_role("button", name=f"Confirm: award {300 * count:,} points").click()
    page.wait_for_url(re.compile(r".*/console/segment-awards/\d+$"))
    page.get_by_text("Done", exact=True).wait_for()
    assert f"{count} of {count} members done" in page.locator(".progress-count").inner_text()
    shot(page, "marketer-7-done")

    after = {member: points(base, key, member)["available"] for member in members}
    assert after == {member: before[member] + 300 for member in members}
    activity = api(base, key, f"/v1/members/{members[0]}/activity")["items"][0]
    assert activity["points"] == 300
    assert page.foreign_requests == []
