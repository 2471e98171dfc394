"""Reports in the console: retention for a period (the API's numbers, the CRR formula with its
S, N and E), the cohort heatmap's cells and shades, cohorts by referral and reward, RFM
segments with each segment's members and CSV, form validation, and who may read them."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest

from console.reports import heatmap, periods
from tests import factories as f
from tests.console.conftest import assert_strict_csp
from tests.test_reports import MARCH, at, enroll, history, pay, shoppers  # noqa: F401 - fixtures

ROLES = ("owner", "admin", "support", "analyst")


class Tables(HTMLParser):
    """The tables of a page, by id: rows of (tag, text, css classes, title) cells."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, list[list[tuple]]] = {}
        self._table = None
        self._cell = None
        self._hidden = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = [tag, "", (attrs.get("class") or "").split(), attrs.get("title")]
        elif tag == "span" and "visually-hidden" in (attrs.get("class") or ""):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            self._cell[1] = " ".join(self._cell[1].split())
            self._table[-1].append(tuple(self._cell))
            self._cell = None
        elif tag == "span" and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if self._cell is not None and not self._hidden:
            self._cell[1] += data


def table(html: str, table_id: str) -> list[list[tuple]]:
    return Tables(html).tables[table_id]


def texts(rows) -> list[list[str]]:
    return [[cell[1] for cell in row] for row in rows]


# --- retention -------------------------------------------------------------------------------


@pytest.mark.usefixtures("history")
def test_retention_shows_the_apis_numbers_and_the_formula(console_client, client, keys):
    page = console_client("analyst").get("/console/reports?from=2026-03-01&to=2026-04-01")
    assert page.status_code == 200
    assert_strict_csp(page)
    html = page.get_data(as_text=True)
    assert "Customer retention rate, 1 Mar 2026 – 31 Mar 2026" in html
    assert 'id="crr-value">50.00%<' in html
    assert "CRR = ((E − N) / S) × 100 = ((3 − 2) / 2) × 100 = 50.00%" in html
    assert 'data-figure="S">2<' in html and 'data-figure="N">2<' in html
    assert 'data-figure="E">3<' in html
    assert "GET /v1/reports/retention?from=2026-03-01&amp;to=2026-04-01" in html
    rows = {row[0]: row[1:] for row in texts(table(html, "retention-figures")[1:])}
    assert rows == {
        "Retention rate": ["50.00%", "100.00%", "0.00%"],
        "Customers at the start (S)": ["2", "1", "1"],
        "New customers (N)": ["2", "1", "1"],
        "Customers in the period (E)": ["3", "2", "1"],
        "Repeat purchase rate": ["66.67%", "50.00%", "100.00%"],
        "Orders per customer": ["2.00", "1.50", "3.00"],
        "Average days between orders": ["13.33", "10.00", "15.00"],
        "Customer lifetime value (CLV)": ["$110.00", "$135.00", "$60.00"],
        "Orders": ["6", "3", "3"],
        "Revenue": ["$230.00", "$170.00", "$60.00"],
        "Average order value": ["$38.33", "$56.67", "$20.00"],
    }
    # The same numbers as the API's for the same period.
    api = client.get(MARCH, headers=keys["reports"]).get_json()
    for column, block in enumerate((api, api["members"], api["non_members"])):
        assert rows["Customers at the start (S)"][column] == str(block["customers_at_start"])
        assert rows["New customers (N)"][column] == str(block["new_customers"])
        assert rows["Customers in the period (E)"][column] == str(block["customers"])
        assert rows["Retention rate"][column] == f"{block['retention_rate']}%"
        assert rows["Repeat purchase rate"][column] == f"{block['repeat_purchase_rate']}%"


@pytest.mark.usefixtures("history")
def test_retention_of_a_period_without_earlier_customers(console_client):
    html = console_client("analyst").get("/console/reports?from=2025-01-01&to=2026-01-01")
    html = html.get_data(as_text=True)
    assert 'id="crr-value">—<' in html and "(S = 0)" in html
    assert "Customer retention rate, 1 Jan 2025 – 31 Dec 2025" in html


def test_retention_defaults_to_the_last_30_days_with_presets(console_client):
    html = console_client("analyst").get("/console/reports").get_data(as_text=True)
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=29), today + timedelta(days=1)
    assert f'value="{start.isoformat()}"' in html and f'value="{end.isoformat()}"' in html
    assert 'aria-current="true">Last 30 days<' in html
    for label in ("Last quarter (Q", "Last 12 months", f">{today.year - 1}<", "so far<"):
        assert label in html


def test_the_presets():
    [days30, quarter, months12, last_year, this_year] = periods.presets(date(2026, 12, 6))
    assert (days30.start, days30.end) == (date(2026, 11, 7), date(2026, 12, 7))
    assert (quarter.label, quarter.start, quarter.end) == (
        "Last quarter (Q3 2026)",
        date(2026, 7, 1),
        date(2026, 10, 1),
    )
    assert (months12.start, months12.end) == (date(2025, 12, 7), date(2026, 12, 7))
    assert (last_year.label, last_year.start, last_year.end) == (
        "2025",
        date(2025, 1, 1),
        date(2026, 1, 1),
    )
    assert (this_year.start, this_year.end) == (date(2026, 1, 1), date(2026, 12, 7))
    january = periods.presets(date(2026, 2, 15))[1]
    assert (january.label, january.start, january.end) == (
        "Last quarter (Q4 2025)",
        date(2025, 10, 1),
        date(2026, 1, 1),
    )
    leap = periods.presets(date(2028, 2, 28))[2]  # tomorrow is 29 February
    assert (leap.start, leap.end) == (date(2027, 2, 28), date(2028, 2, 29))


@pytest.mark.parametrize(
    "query, field, message",
    [
        ("from=2026-04-01&to=2026-03-01", "to", "Must be after “From”."),
        ("from=2026-03-01&to=2026-03-01", "to", "Must be after “From”."),
        ("from=2000-01-01&to=2026-01-01", "to", "at most 3660 days"),
        ("from=2026-02-30&to=2026-04-01", "from", "Not a calendar date."),
        ("from=yesterday&to=2026-04-01", "from", "An ISO 8601 date"),
        ("from=&to=2026-04-01", "from", "Pick the first day of the period."),
        ("from=2026-03-01", "to", "Pick the day after the period"),
    ],
)
def test_a_bad_period_is_shown_beside_its_field(console_client, query, field, message):
    answer = console_client("analyst").get(f"/console/reports?{query}")
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert f'<p class="field-error" id="{field}-error">' in html
    error = html.split(f'id="{field}-error">', 1)[1].split("</p>", 1)[0]
    assert message in error
    assert 'aria-invalid="true"' in html
    assert "Customer retention rate" not in html  # no figures for a period that is not one


# --- cohorts ---------------------------------------------------------------------------------


def seed_cohorts(client, headers) -> None:
    """January: a, b, c (a again in February; b in February and March); February: d, e, f, g
    (d again in March); March: h. Retention: Jan [3, 2, 1], Feb [4, 1], Mar [1]."""
    orders = {
        "a": ["2026-01-05", "2026-02-10"],
        "b": ["2026-01-20", "2026-02-03", "2026-03-30"],
        "c": ["2026-01-31T23:59:59"],
        "d": ["2026-02-01", "2026-03-02"],
        "e": ["2026-02-14"],
        "f": ["2026-02-20"],
        "g": ["2026-02-28"],
        "h": ["2026-03-15"],
    }
    for customer, days in orders.items():
        for day in days:
            moment = at(day + ("Z" if "T" in day else "T12:00:00Z"))
            event = f.paid(customer, lines=[f.line(unit_price=2000)], occurred_at=moment)
            answer = client.post("/v1/events", json=event, headers=headers)
            assert answer.status_code == 200, answer.get_json()


# (row, column) → (text, shade) of the heatmap built by seed_cohorts.
EXPECTED_HEATMAP = [
    ["Jan 2026", "3", ("100%", "heat-9"), ("67%", "heat-6"), ("33%", "heat-3")],
    ["Feb 2026", "4", ("100%", "heat-9"), ("25%", "heat-2"), (None, "heat-none")],
    ["Mar 2026", "1", ("100%", "heat-9"), (None, "heat-none"), (None, "heat-none")],
]


def test_the_heatmap_cells(console_client, client, admin, keys):
    seed_cohorts(client, admin)
    answer = console_client("analyst").get("/console/reports/cohorts")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    rows = table(html, "cohort-heatmap")
    assert texts(rows[:1]) == [["First order", "Customers", "Month 0", "1", "2"]]
    assert all(cell[0] == "th" for cell in rows[0])
    for row, expected in zip(rows[1:], EXPECTED_HEATMAP, strict=True):
        assert row[0][:2] == ("th", expected[0]) and row[1][1] == expected[1]
        for cell, (text, shade) in zip(row[2:], expected[2:], strict=True):
            assert shade in cell[2]
            if text is not None:
                assert cell[1] == text
    assert rows[1][3][3] == "2 of 3 customers"  # Jan, month 1: the count on hover
    assert '<th scope="col">First order</th>' in html and '<th scope="row">Jan 2026</th>' in html
    assert "<caption>Retention by first-order month" in html
    # The same counts as the API's.
    api = client.get("/v1/reports/cohorts", headers=keys["reports"]).get_json()["items"]
    assert [item["retention"] for item in api] == [[3, 2, 1], [4, 1], [1]]


def test_the_heatmap_shows_the_newest_months_unless_asked(console_client, client, admin, app):
    for month in range(1, 5):
        event = f.paid(f"m{month}", occurred_at=at(f"2026-0{month}-10T12:00:00Z"))
        assert client.post("/v1/events", json=event, headers=admin).status_code == 200
    from console.reports import views

    shown = views.COHORT_MONTHS_SHOWN
    views.COHORT_MONTHS_SHOWN = 2
    try:
        owner = console_client("analyst")
        newest = owner.get("/console/reports/cohorts").get_data(as_text=True)
        rows = table(newest, "cohort-heatmap")
        assert [row[0][1] for row in rows[1:]] == ["Mar 2026", "Apr 2026"]
        assert "2 older months are not" in newest and "months=all" in newest
        every = owner.get("/console/reports/cohorts?months=all").get_data(as_text=True)
        rows = table(every, "cohort-heatmap")
        assert [row[0][1] for row in rows[1:]] == ["Jan 2026", "Feb 2026", "Mar 2026", "Apr 2026"]
    finally:
        views.COHORT_MONTHS_SHOWN = shown


def test_the_shading_steps():
    assert [heatmap.step(n, 100) for n in (0, 9, 10, 19, 50, 89, 90, 99, 100)] == [
        0, 0, 1, 1, 5, 8, 9, 9, 9,
    ]  # fmt: skip
    assert heatmap.step(2, 3) == 6 and heatmap.step(1, 3) == 3 and heatmap.step(0, 0) == 0
    assert heatmap.legend()[0] == ("heat-0", "0–9%")
    assert heatmap.legend()[9] == ("heat-9", "90–100%")


def test_cohorts_by_referral_and_reward_are_tables(console_client, client, admin, storefront):
    from tests.rewards.helpers import make_member, make_reward, redeem

    now = datetime.now(UTC)
    pay(client, storefront, "ana", 5000, now - timedelta(days=3))
    make_member(client, admin, "cleo", points=1000)
    reward = make_reward(client, admin, name="Ten off")
    issued = redeem(client, storefront, "cleo", reward["id"]).get_json()
    used = f.paid(
        "cleo",
        lines=[f.line(unit_price=4000, discount=1000)],
        occurred_at=now - timedelta(hours=1),
        reward_codes=[issued["code"]],
    )
    assert client.post("/v1/events", json=used, headers=storefront).status_code == 200
    html = console_client("analyst").get("/console/reports/cohorts").get_data(as_text=True)
    referral = texts(table(html, "cohorts-by-referral"))
    assert referral[1] == ["Not referred", "2", "2", "$80.00", "0.00%", "1.00", "$40.00"]
    reward_rows = {row[0]: row[1:4] for row in texts(table(html, "cohorts-by-reward")[1:])}
    assert reward_rows == {
        "No reward code used": ["1", "1", "$50.00"],
        "Ten off": ["1", "1", "$30.00"],
    }


# --- segments --------------------------------------------------------------------------------


@pytest.mark.usefixtures("shoppers")
def test_segments_with_counts_and_links(console_client):
    answer = console_client("analyst").get("/console/reports/segments")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    rows = {row[0]: row[2:4] for row in texts(table(html, "segments")[1:-1])}
    # The default thresholds: the top 20% of buyers by spend (loyal) are high value.
    assert rows == {
        "New subscribers": ["1", "16.7%"],
        "Loyal, high value": ["1", "16.7%"],
        "At risk, high value": ["0", "0.0%"],
        "Low value, inactive": ["2", "33.3%"],
        "Frequent, low order value": ["1", "16.7%"],
        "Other active": ["1", "16.7%"],
    }
    assert texts(table(html, "segments")[-1:])[0][:3] == ["All members", "", "6"]
    assert 'href="/console/reports/segments/loyal_high_value"' in html
    assert 'href="/console/reports/segments/low_value_inactive/members.csv"' in html
    assert "net spend of $600.00 or more (the top 20% of buyers by spend)" in html
    assert "average order below $80.00" in html


@pytest.mark.usefixtures("shoppers")
def test_a_segment_page_lists_its_members(console_client):
    owner = console_client("owner")
    answer = owner.get("/console/reports/segments/low_value_inactive")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert 'id="segment-count">2<' in html
    rows = texts(table(html, "segment-members"))
    assert [row[0] for row in rows[1:]] == ["lapsed", "atrisk"]  # newest member first
    assert rows[1][2:] == ["300", "1", "$20.00"]
    assert 'href="/console/members/lapsed"' in html  # an owner may open members
    # An analyst sees the customer ids, without links to member pages they may not open.
    analyst = console_client("analyst").get("/console/reports/segments/low_value_inactive")
    assert "lapsed" in analyst.get_data(as_text=True)
    assert 'href="/console/members/lapsed"' not in analyst.get_data(as_text=True)
    assert owner.get("/console/reports/segments/nonsense").status_code == 404


def test_a_segment_page_pages(console_client, client, admin, app):
    for index in range(5):
        enroll(client, admin, f"sub-{index}")
    from console.reports import views

    size = views.MEMBERS_PAGE_SIZE
    views.MEMBERS_PAGE_SIZE = 3
    try:
        owner = console_client("owner")
        first = owner.get("/console/reports/segments/new_subscribers").get_data(as_text=True)
        assert [row[0] for row in texts(table(first, "segment-members"))[1:]] == [
            "sub-4",
            "sub-3",
            "sub-2",
        ]
        link = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
        second = owner.get(link.replace("&amp;", "&")).get_data(as_text=True)
        assert [row[0] for row in texts(table(second, "segment-members"))[1:]] == [
            "sub-1",
            "sub-0",
        ]
        assert 'rel="next"' not in second and "First page" in second
        assert owner.get("/console/reports/segments/new_subscribers?cursor=x").status_code == 404
    finally:
        views.MEMBERS_PAGE_SIZE = size


@pytest.mark.usefixtures("shoppers")
def test_the_award_action_shows_when_its_page_exists_and_the_role_may(console_client, monkeypatch):
    from console.reports import views

    path = "/console/reports/segments/loyal_high_value"
    owner, analyst = console_client("owner"), console_client("analyst")
    if views.AWARD_ENDPOINT not in owner.application.view_functions:
        assert "Award bonus points" not in owner.get(path).get_data(as_text=True)
        # Stand in for the award page with a page that exists.
        monkeypatch.setattr(views, "AWARD_ENDPOINT", "console.members.index")
        link = 'href="/console/members?segment=loyal_high_value"'
    else:
        link = 'href="/console/segment-awards/new?segment=loyal_high_value"'
    html = owner.get(path).get_data(as_text=True)
    assert f'<a class="btn btn-primary" {link}>Award bonus points to this segment</a>' in html
    assert "Award bonus points" not in analyst.get(path).get_data(as_text=True)
    assert "Award bonus points" not in console_client("support").get(path).get_data(as_text=True)


@pytest.mark.usefixtures("shoppers")
def test_a_segments_csv(console_client, client, keys):
    path = "/console/reports/segments/low_value_inactive/members.csv"
    answer = console_client("analyst").get(path)
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="segment-low_value_inactive.csv"'
    )
    text = answer.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["segment"], r["customer_id"], r["frequency"], r["monetary"]) for r in rows] == [
        ("low_value_inactive", "atrisk", "1", "50000"),
        ("low_value_inactive", "lapsed", "1", "2000"),
    ]
    assert [r["recency_days"] for r in rows] == ["200", "300"]
    api = client.get(
        "/v1/reports/segments?format=csv&segment=low_value_inactive", headers=keys["reports"]
    )
    assert api.get_data(as_text=True) == text  # the API's file, byte for byte
    missing = console_client("analyst").get("/console/reports/segments/nope/members.csv")
    assert missing.status_code == 404


# --- who may read them -----------------------------------------------------------------------

PAGES = (
    "/console/reports",
    "/console/reports?from=2026-03-01&to=2026-04-01",
    "/console/reports/cohorts",
    "/console/reports/segments",
    "/console/reports/segments/new_subscribers",
    "/console/reports/segments/new_subscribers/members.csv",
)


@pytest.mark.usefixtures("history")
def test_support_opens_no_report(console_client):
    client = console_client("support")
    for path in PAGES:
        assert client.get(path).status_code == 403, path


@pytest.mark.parametrize("role", ("owner", "admin", "analyst"))
@pytest.mark.usefixtures("history")
def test_every_role_with_reports_reads_every_report_page(console_client, role):
    client = console_client(role)
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
        assert_strict_csp(answer)
    nav = client.get("/console/reports").get_data(as_text=True)
    assert 'href="/console/reports" class="active" aria-current="page">Reports<' in nav


def test_reports_are_read_only_and_need_a_sign_in(console_client, app):
    analyst = console_client("analyst")
    for path in PAGES:
        assert analyst.post(path).status_code in (400, 405)  # no form: CSRF, or not allowed
    anonymous = app.test_client()
    for path in PAGES:
        answer = anonymous.get(path)
        assert answer.status_code == 302 and "/console/sign-in" in answer.headers["Location"]
