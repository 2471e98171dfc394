"""The dashboard page: whose home it is, who may open it, and what the page carries."""

import json
import re

import pytest

from tests.console.conftest import assert_strict_csp


@pytest.mark.parametrize(
    ("role", "home"),
    [("owner", "dashboard"), ("admin", "dashboard"), ("analyst", "dashboard"),
     ("support", "members")],
)  # fmt: skip
def test_the_console_home_is_the_dashboard_for_those_who_read_reports(console_client, role, home):
    client = console_client(role)
    answer = client.get("/console/")
    assert answer.status_code == 302 and answer.headers["Location"] == f"/console/{home}"
    dashboard = client.get("/console/dashboard")
    assert dashboard.status_code == (403 if role == "support" else 200)
    nav = client.get(f"/console/{home}").get_data(as_text=True)
    assert ('href="/console/dashboard"' in nav) is (role != "support")


def test_the_page_carries_its_chart_data_as_json_and_no_inline_script_or_style(console_client):
    client = console_client("analyst")
    answer = client.get("/console/dashboard")
    assert_strict_csp(answer)
    html = answer.get_data(as_text=True)
    assert " style=" not in html and "<style" not in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    inline = [(attrs, body) for attrs, body in scripts if body.strip()]
    assert len(inline) == 1 and 'type="application/json"' in inline[0][0]
    data = json.loads(inline[0][1])
    assert set(data) == {"labels", "earned", "redeemed", "expired", "conversions"}
    assert all(len(values) == 12 for values in data.values())
    assert "vendor/chartjs/chart.umd.js" in html and "dashboard.js" in html
    assert html.count("<table") == 3 and html.count("<caption") == 3
    assert 'data-testid="data-as-of"' in html  # how fresh the order figures are


def test_no_other_page_loads_the_chart_library(console_client):
    client = console_client("owner")
    for page in ("members", "tiers", "rules", "rewards", "settings", "profile"):
        html = client.get(f"/console/{page}").get_data(as_text=True)
        assert "chartjs" not in html, page
