"""Earning rules: how overlapping bonuses combine, refunds of bonuses, sign-up, birthdays."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from loyalty.ledger import LedgerEntry, find_drift
from tests import factories as f
from tests.tiers.helpers import beauty_insider, early_this_year, member, post_event


def rule(client, admin, **body):
    response = client.post("/v1/earning-rules", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def basket(customer_id="c_1", **kwargs):
    return f.paid(
        customer_id,
        lines=[
            f.line("SERUM", unit_price=10_000, category="skincare"),
            f.line("LIP", unit_price=5_000, category="makeup"),
        ],
        **kwargs,
    )


def bonus_points(body):
    return {e["rule_id"]: e["points"] for e in body["effects"] if e["kind"] == "bonus"}


def test_overlapping_rules_combine_as_documented(client, admin, storefront, session):
    now = datetime.now(UTC)
    skincare = rule(client, admin, name="2× skincare", trigger="order", multiplier="2",
                    conditions={"categories": ["skincare"]})  # fmt: skip
    serum = rule(client, admin, name="3× serum", trigger="order", multiplier="3",
                 conditions={"skus": ["SERUM"]})  # fmt: skip
    big = rule(client, admin, name="50 over 100.00", trigger="order", points=50,
               conditions={"min_spend": 10_000})  # fmt: skip
    rule(client, admin, name="Too expensive", trigger="order", points=999,
         conditions={"min_spend": 20_000})  # fmt: skip
    rule(client, admin, name="Later", trigger="order", points=999,
         starts_at=(now + timedelta(days=1)).isoformat())  # fmt: skip
    rule(client, admin, name="Off", trigger="order", points=999, active=False)
    beauty_insider(client, admin)
    rule(client, admin, name="Rouge only", trigger="order", points=999,
         conditions={"tiers": ["Rouge"]})  # fmt: skip

    body = post_event(client, storefront, basket())
    # Base 150; 2× skincare adds 100 on the 100.00 serum, 3× serum adds 200 more (bonuses add:
    # the serum line earns 1 + 1 + 2 = 4×); the 50 fixed points add.
    assert [e["kind"] for e in body["effects"]] == ["earn", "bonus", "bonus", "bonus"]
    assert body["effects"][0]["points"] == 150
    assert bonus_points(body) == {skincare["id"]: 100, serum["id"]: 200, big["id"]: 50}
    assert body["member"]["points"]["pending"] == 500
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.kind == "bonus").order_by(LedgerEntry.id)
    ).all()
    assert [(e.rule_id, e.points) for e in entries] == [
        (skincare["id"], 100),
        (serum["id"], 200),
        (big["id"], 50),
    ]
    assert entries[0].detail["rule_multiplier"] == "2"
    assert entries[0].detail["matching_amount"] == 10_000


def test_bonus_multipliers_apply_on_top_of_the_tier_multiplier(client, admin, storefront):
    beauty_insider(client, admin)
    post_event(client, storefront, f.paid(lines=[f.line(unit_price=40_000)],
                                          occurred_at=early_this_year(1)))  # fmt: skip
    double = rule(client, admin, name="2×", trigger="order", multiplier="2")
    body = post_event(client, storefront, f.paid(lines=[f.line(unit_price=10_000)]))
    # VIB ×1.25: base 125, and the 2× rule doubles it.
    assert body["effects"][0]["points"] == 125
    assert bonus_points(body) == {double["id"]: 125}


def test_refund_reverses_bonuses_with_the_numbers_recorded_at_earn_time(
    client, admin, storefront, session
):
    double = rule(client, admin, name="2×", trigger="order", multiplier="2")
    event = f.paid(lines=[f.line(unit_price=10_000)])
    assert bonus_points(post_event(client, storefront, event)) == {double["id"]: 100}
    # The rule changes (and then disappears) after the order: the reversal must not care.
    changed = client.patch(
        f"/v1/earning-rules/{double['id']}", json={"multiplier": "10"}, headers=admin
    )
    assert changed.status_code == 200 and changed.get_json()["multiplier"] == "10"
    half = post_event(client, storefront, f.refunded(event["order"]["id"], amount=5_000))
    assert [e["points"] for e in half["effects"] if e["kind"] == "reversal"] == [-100]
    assert client.delete(f"/v1/earning-rules/{double['id']}", headers=admin).status_code == 204
    rest = post_event(client, storefront, f.refunded(event["order"]["id"], amount=5_000))
    assert [e["points"] for e in rest["effects"] if e["kind"] == "reversal"] == [-100]
    assert member(client, storefront)["points"] == {
        "available": 0,
        "pending": 0,
        "lifetime_earned": 0,
    }
    assert find_drift(session) == []


def test_first_order_rule_applies_once(client, admin, storefront):
    welcome = rule(client, admin, name="Welcome", trigger="first_order", points=100)
    first = post_event(client, storefront, f.paid())
    second = post_event(client, storefront, f.paid())
    assert bonus_points(first) == {welcome["id"]: 100}
    assert bonus_points(second) == {}


def test_signup_bonus_is_available_at_once_and_names_its_rule(client, admin, storefront):
    signup = rule(client, admin, name="Join", trigger="signup", points=200)
    response = client.post(
        "/v1/members", json={"id": "c_2", "email": "two@example.com"}, headers=storefront
    )
    assert response.status_code == 201
    assert response.get_json()["points"] == {
        "available": 200,
        "pending": 0,
        "lifetime_earned": 200,
    }
    again = client.post(
        "/v1/members", json={"id": "c_2", "email": "two@example.com"}, headers=storefront
    )
    assert again.status_code == 200 and again.get_json()["points"]["available"] == 200
    items = client.get("/v1/members/c_2/activity", headers=storefront).get_json()["items"]
    assert [(e["kind"], e["points"], e["rule_id"]) for e in items] == [("bonus", 200, signup["id"])]


def _birthdays(runner, now: datetime):
    result = runner.invoke(args=["loyalty", "jobs", "birthdays", "--now", now.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output


def test_birthday_bonus_once_a_year_and_only_for_its_tiers(
    client, admin, storefront, runner, session
):
    beauty_insider(client, admin)
    gift = rule(client, admin, name="Birthday", trigger="birthday", points=250)
    rouge = rule(client, admin, name="Rouge birthday", trigger="birthday", points=1000,
                 conditions={"tiers": ["Rouge"]})  # fmt: skip
    now = datetime(2026, 3, 10, 9, tzinfo=UTC)
    for customer_id, birthday in (("today", "03-10"), ("last_week", "03-03"), ("later", "04-01")):
        client.post(
            "/v1/members",
            json={"id": customer_id, "email": f"{customer_id}@example.com", "birthday": birthday},
            headers=storefront,
        )
    assert "birthdays: 2 changed" in _birthdays(runner, now)
    assert "birthdays: 0 changed" in _birthdays(runner, now + timedelta(days=1))
    points = {c: member(client, storefront, c)["points"]["available"]
              for c in ("today", "last_week", "later")}  # fmt: skip
    assert points == {"today": 250, "last_week": 250, "later": 0}
    # Next year, again once; a missed day is still given within the look-back window.
    assert "birthdays: 3 changed" in _birthdays(runner, datetime(2027, 4, 1, 20, tzinfo=UTC))
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.source_type == "birthday").order_by(LedgerEntry.id)
    ).all()
    assert all(e.rule_id == gift["id"] for e in entries)
    assert sorted(e.source_id for e in entries) == ["2026", "2026", "2027", "2027", "2027"]
    assert rouge["id"] not in {e.rule_id for e in entries}
    assert find_drift(session) == []


def test_leap_day_birthdays_are_celebrated_on_28_february(client, admin, storefront, runner):
    rule(client, admin, name="Birthday", trigger="birthday", points=100)
    client.post(
        "/v1/members",
        json={"id": "leap", "email": "leap@example.com", "birthday": "02-29"},
        headers=storefront,
    )
    assert "birthdays: 1 changed" in _birthdays(runner, datetime(2027, 2, 28, 12, tzinfo=UTC))
    assert "birthdays: 0 changed" in _birthdays(runner, datetime(2027, 3, 1, 12, tzinfo=UTC))


def test_invalid_rules_are_refused(client, admin):
    beauty_insider(client, admin)
    cases = [
        ({"name": "x", "trigger": "order"}, "points"),
        ({"name": "x", "trigger": "order", "points": 5, "multiplier": "2"}, "points"),
        ({"name": "x", "trigger": "signup", "multiplier": "2"}, "multiplier"),
        ({"name": "x", "trigger": "birthday", "points": 5, "conditions": {"skus": ["A"]}},
         "conditions"),
        ({"name": "x", "trigger": "order", "points": 5, "conditions": {"tiers": ["Gold"]}},
         "conditions"),
        ({"name": "x", "trigger": "order", "multiplier": "1"}, "multiplier"),
        ({"name": "x", "trigger": "order", "multiplier": 2}, "multiplier"),
        ({"name": "x", "trigger": "weekly", "points": 5}, "trigger"),
        ({"name": "x", "trigger": "order", "points": 5, "starts_at": "2026-02-01T00:00:00Z",
          "ends_at": "2026-01-01T00:00:00Z"}, "ends_at"),
    ]  # fmt: skip
    for body, field in cases:
        response = client.post("/v1/earning-rules", json=body, headers=admin)
        assert response.status_code == 422, body
        assert field in response.get_json()["errors"], (body, response.get_json())
    assert client.get("/v1/earning-rules", headers=admin).get_json()["items"] == []


def test_rules_are_listed_and_tier_renames_follow(client, admin):
    beauty_insider(client, admin)
    made = rule(client, admin, name="VIB bonus", trigger="order", points=10,
                conditions={"tiers": ["VIB"]})  # fmt: skip
    vib = [t for t in client.get("/v1/tiers", headers=admin).get_json()["items"]
           if t["name"] == "VIB"][0]  # fmt: skip
    # A tier a rule depends on can't vanish under it; a rename carries over.
    assert client.delete(f"/v1/tiers/{vib['id']}", headers=admin).status_code == 409
    client.patch(f"/v1/tiers/{vib['id']}", json={"name": "Very Important"}, headers=admin)
    listed = client.get("/v1/earning-rules?limit=1", headers=admin).get_json()
    assert listed["items"][0]["id"] == made["id"]
    assert listed["items"][0]["conditions"] == {"tiers": ["Very Important"]}


def test_tier_condition_uses_the_tier_before_the_event(client, admin, storefront):
    beauty_insider(client, admin)
    vib_bonus = rule(client, admin, name="VIB 100", trigger="order", points=100,
                     conditions={"tiers": ["VIB", "Rouge"]})  # fmt: skip
    crossing = post_event(client, storefront, f.paid(lines=[f.line(unit_price=40_000)]))
    assert bonus_points(crossing) == {}  # still Member when this order was placed
    after = post_event(client, storefront, f.paid(lines=[f.line(unit_price=1_000)]))
    assert bonus_points(after) == {vib_bonus["id"]: 100}


def test_rules_keep_their_tiers_by_id_through_a_rename(client, admin, storefront, session):
    beauty_insider(client, admin)
    made = rule(client, admin, name="Top tiers", trigger="order", points=100,
                conditions={"tiers": ["Rouge", "VIB"], "min_spend": 500})  # fmt: skip
    assert made["conditions"] == {"tiers": ["Rouge", "VIB"], "min_spend": 500}  # order kept
    post_event(client, storefront, f.paid(lines=[f.line(unit_price=40_000)]))  # reaches VIB
    vib = [t for t in client.get("/v1/tiers", headers=admin).get_json()["items"]
           if t["name"] == "VIB"][0]  # fmt: skip
    renamed = client.patch(f"/v1/tiers/{vib['id']}", json={"name": "Very Important"},
                           headers=admin)  # fmt: skip
    assert renamed.status_code == 200
    # The rule row is not rewritten (its tiers are ids); it still applies to the renamed tier.
    after = client.get(f"/v1/earning-rules/{made['id']}", headers=admin).get_json()
    assert after["updated_at"] == made["updated_at"]
    assert after["conditions"] == {"tiers": ["Rouge", "Very Important"], "min_spend": 500}
    body = post_event(client, storefront, f.paid(lines=[f.line(unit_price=1_000)]))
    assert bonus_points(body) == {made["id"]: 100}
    # Deleting a tier a rule names is refused (409 naming the rule), even by its new name.
    refused = client.delete(f"/v1/tiers/{vib['id']}", headers=admin)
    assert refused.status_code == 409
    assert refused.get_json()["rule_ids"] == [made["id"]]
    # Once the rule names other tiers, the tier can go.
    changed = client.patch(f"/v1/earning-rules/{made['id']}",
                           json={"conditions": {"tiers": ["Rouge"]}}, headers=admin)  # fmt: skip
    assert changed.status_code == 200 and changed.get_json()["conditions"] == {"tiers": ["Rouge"]}
    assert client.delete(f"/v1/tiers/{vib['id']}", headers=admin).status_code == 204
