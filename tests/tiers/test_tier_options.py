"""Tier options: the tier basis (spend, points earned, paid orders), entry rewards once per tier
and period, and a tier's own birthday points."""

from datetime import UTC, datetime

from sqlalchemy import select

from loyalty.audit import AuditLog
from loyalty.ledger import LedgerEntry, find_drift
from loyalty.tiers.models import TierChange, TierEntry
from rewards.catalog.models import RewardCode
from tests import factories as f
from tests.rewards.helpers import make_reward
from tests.tiers.helpers import at, early_this_year, last_year, member, order, post_event
from tests.tiers.helpers import tier_change as moved
from tests.webhooks.helpers import create_endpoint, messages


def add_tier(client, admin, name, threshold, **extra):
    body = {"name": name, "threshold": threshold, "multiplier": "1", **extra}
    response = client.post("/v1/tiers", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def set_basis(client, admin, basis):
    response = client.put("/v1/program", json={"tier_basis": basis}, headers=admin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def refund(client, storefront, event, amount, when):
    return post_event(
        client, storefront, f.refunded(event["order"]["id"], amount=amount, occurred_at=when)
    )


def entry_codes(session, customer_id="c_1"):
    return session.scalars(
        select(RewardCode)
        .where(RewardCode.customer_id == customer_id, RewardCode.source_type == "tier_entry")
        .order_by(RewardCode.id)
    ).all()


# --- the basis ------------------------------------------------------------------------------


def test_points_basis_counts_points_earned_net_of_reversals(client, admin, storefront):
    assert set_basis(client, admin, "points")["tier_basis"] == "points"
    add_tier(client, admin, "Silver", 300)  # 300 points
    first = post_event(client, storefront, order(20_000, early_this_year(1)))  # 200 points
    assert moved(first) is None
    crossing = order(15_000, early_this_year(2))  # 350 points
    assert moved(post_event(client, storefront, crossing)) == ("Member", "Silver")
    view = member(client, storefront)
    assert (view["tier_basis"], view["qualifying_value"], view["qualifying_spend"]) == (
        "points", 350, 35_000,
    )  # fmt: skip
    # A refund reverses points, which lowers the period's points: 350 - 100 < 300.
    assert moved(refund(client, storefront, crossing, 10_000, early_this_year(3))) == (
        "Silver", "Member",
    )  # fmt: skip
    assert member(client, storefront)["qualifying_value"] == 250


def test_points_basis_counts_order_bonuses_too(client, admin, storefront):
    set_basis(client, admin, "points")
    add_tier(client, admin, "Silver", 300)
    response = client.post(
        "/v1/earning-rules",
        json={"name": "Double", "trigger": "order", "multiplier": "2"},
        headers=admin,
    )
    assert response.status_code == 201, response.get_json()
    # 200.00 earns 200 points plus the rule's bonus: past 300 with only 200.00 spent.
    body = post_event(client, storefront, order(20_000, early_this_year(1)))
    assert moved(body) == ("Member", "Silver")
    earned = sum(e["points"] for e in body["effects"] if e["kind"] in ("earn", "bonus"))
    assert earned > 300 and member(client, storefront)["qualifying_value"] == earned


def test_orders_basis_counts_paid_orders_until_refunded_in_full(client, admin, storefront):
    set_basis(client, admin, "orders")
    add_tier(client, admin, "Regular", 3)  # 3 orders
    events = [order(5_000, early_this_year(minute)) for minute in (1, 2)]
    for event in events:
        assert moved(post_event(client, storefront, event)) is None
    # An order of gift cards only has no eligible spend: it does not count.
    gift_cards = f.paid("c_1", lines=[f.line(unit_price=5_000, gift_card=True)],
                        occurred_at=early_this_year(3))  # fmt: skip
    assert moved(post_event(client, storefront, gift_cards)) is None
    third = order(5_000, early_this_year(4))
    assert moved(post_event(client, storefront, third)) == ("Member", "Regular")
    view = member(client, storefront)
    assert (view["qualifying_value"], view["next_tier"]) == (3, None)
    # A partial refund leaves the order counted; the refund that completes it does not.
    assert moved(refund(client, storefront, third, 2_000, early_this_year(5))) is None
    assert member(client, storefront)["qualifying_value"] == 3
    assert moved(refund(client, storefront, third, 3_000, early_this_year(6))) == (
        "Regular", "Member",
    )  # fmt: skip
    view = member(client, storefront)
    assert view["qualifying_value"] == 2
    assert view["next_tier"] == {
        "name": "Regular", "threshold": 3, "remaining": 1, "remaining_spend": None,
    }  # fmt: skip


def test_orders_basis_keeps_the_status_through_the_next_period(client, admin, storefront, runner):
    set_basis(client, admin, "orders")
    add_tier(client, admin, "Regular", 2)
    y = last_year()
    for month in (2, 3):
        post_event(client, storefront, order(1_000, at(y, month)))
    assert member(client, storefront)["tier"]["name"] == "Regular"
    # Reached in y: kept through y + 1, dropped at its end.
    f.run_job(runner, "close-period", datetime(y + 1, 1, 1, 0, 1, tzinfo=UTC))
    assert member(client, storefront)["tier"]["name"] == "Regular"
    assert member(client, storefront)["tier"]["ends_at"].startswith(f"{y + 2}-01-01")
    f.run_job(runner, "close-period", datetime(y + 2, 1, 1, 0, 1, tzinfo=UTC))
    assert member(client, storefront)["tier"]["name"] == "Member"


def test_a_change_of_basis_is_previewed_then_moves_members_at_once(
    client, admin, storefront, session
):
    add_tier(client, admin, "Silver", 3)  # 0.03 of spend, or 3 points, or 3 orders
    add_tier(client, admin, "Gold", 50_000)
    y = last_year()
    # "big": one order of 600.00 → Gold by spend; "often": four orders of 0.01 → Silver.
    post_event(client, storefront, order(60_000, at(y, 2), customer_id="big"))
    for month in (2, 3, 4, 5):
        post_event(client, storefront, order(1, at(y, month), customer_id="often"))
    assert member(client, storefront, "big")["tier"]["name"] == "Gold"
    assert member(client, storefront, "often")["tier"]["name"] == "Silver"
    tiers = client.get("/v1/tiers", headers=admin).get_json()["items"]
    proposed = [{k: t[k] for k in ("name", "threshold", "multiplier")} for t in tiers]

    response = client.post(
        "/v1/tiers/preview", json={"tiers": proposed, "tier_basis": "orders"}, headers=admin
    )
    assert response.status_code == 200, response.get_json()
    # By orders: big has 1 (Member), often 4 (Silver, no move).
    assert response.get_json() == {"moves": [{"from": "Gold", "to": "Member", "members": 1}]}
    assert member(client, storefront, "big")["tier"]["name"] == "Gold"  # nothing changed

    assert set_basis(client, admin, "orders")["tier_basis"] == "orders"
    assert member(client, storefront, "big")["tier"]["name"] == "Member"
    assert member(client, storefront, "often")["tier"]["name"] == "Silver"
    change = session.scalars(select(TierChange).order_by(TierChange.id.desc())).first()
    assert (change.from_tier, change.to_tier, change.reason, change.source_id) == (
        "Gold", "Member", "tier_config", "program:tier_basis",
    )  # fmt: skip
    audit = session.scalars(
        select(AuditLog).where(AuditLog.action == "program.update").order_by(AuditLog.id)
    ).all()[-1]
    assert (audit.before["tier_basis"], audit.after["tier_basis"]) == ("spend", "orders")
    # Back to spend: the same members move back.
    set_basis(client, admin, "spend")
    assert member(client, storefront, "big")["tier"]["name"] == "Gold"


def test_basis_and_tier_fields_are_validated(client, admin):
    assert client.get("/v1/program", headers=admin).get_json()["tier_basis"] == "spend"
    for bad in ("visits", "", None, 1):
        response = client.put("/v1/program", json={"tier_basis": bad}, headers=admin)
        assert response.status_code == 422, bad
        assert "tier_basis" in response.get_json()["errors"]
    response = client.post(
        "/v1/tiers/preview",
        json={"tiers": [{"name": "M", "threshold": 0, "multiplier": "1"}], "tier_basis": "x"},
        headers=admin,
    )
    assert response.status_code == 422

    reward = make_reward(client, admin)
    refused = [
        ({"entry_reward_id": 999_999}, "entry_reward_id"),
        ({"entry_reward_id": "1"}, "entry_reward_id"),
        ({"entry_reward_id": 0}, "entry_reward_id"),
        ({"birthday_points": -1}, "birthday_points"),
        ({"birthday_points": 1.5}, "birthday_points"),
        ({"birthday_reward": 5}, "birthday_reward"),
    ]
    for extra, field in refused:
        body = {"name": "VIB", "threshold": 100, "multiplier": "1", **extra}
        response = client.post("/v1/tiers", json=body, headers=admin)
        assert response.status_code == 422, (extra, response.get_json())
        assert field in str(response.get_json()["errors"]), extra
    # A retired reward can't be chosen either.
    retired = make_reward(client, admin, name="Old")
    assert client.delete(f"/v1/rewards/{retired['id']}", headers=admin).status_code in (200, 204)
    body = {"name": "VIB", "threshold": 100, "multiplier": "1", "entry_reward_id": retired["id"]}
    assert client.post("/v1/tiers", json=body, headers=admin).status_code == 422

    base = client.get("/v1/tiers", headers=admin).get_json()["items"][0]
    response = client.patch(
        f"/v1/tiers/{base['id']}", json={"entry_reward_id": reward["id"]}, headers=admin
    )
    assert response.status_code == 422  # every member starts there
    response = client.patch(f"/v1/tiers/{base['id']}", json={"birthday_points": 50}, headers=admin)
    assert response.status_code == 200 and response.get_json()["birthday_points"] == 50

    vib = add_tier(client, admin, "VIB", 100, entry_reward_id=reward["id"], birthday_points=0)
    assert (vib["entry_reward_id"], vib["birthday_points"]) == (reward["id"], 0)
    response = client.patch(f"/v1/tiers/{vib['id']}", json={"entry_reward_id": None},
                            headers=admin)  # fmt: skip
    assert response.status_code == 200 and response.get_json()["entry_reward_id"] is None
    assert client.get(f"/v1/tiers/{vib['id']}", headers=admin).get_json()["birthday_points"] == 0


# --- entry rewards --------------------------------------------------------------------------


def test_entry_reward_once_per_period_not_again_after_a_drop(client, admin, storefront, session):
    create_endpoint(client, admin, "https://hooks.example.com/l", ["reward.issued"])
    reward = make_reward(client, admin, name="Welcome to VIB", amount=1500)
    add_tier(client, admin, "VIB", 35_000, entry_reward_id=reward["id"])
    y = last_year()
    crossing = order(40_000, at(y, 3))
    assert moved(post_event(client, storefront, crossing)) == ("Member", "VIB")
    [code] = entry_codes(session)
    assert (code.reward_id, code.amount, code.points_spent, code.status) == (
        reward["id"], 1500, 0, "issued",
    )  # fmt: skip
    [message] = messages("reward.issued")
    assert (message.data["code"], message.data["source"]) == (code.code, "tier_entry")
    [entry] = session.scalars(select(TierEntry)).all()
    assert (entry.tier_name, entry.reward_code_id) == ("VIB", code.id)
    assert entry.period_starts_at == datetime(y, 1, 1, tzinfo=UTC)

    # Dropped by a refund and reached again in the same period: no second code.
    assert moved(refund(client, storefront, crossing, 40_000, at(y, 4))) == ("VIB", "Member")
    again = order(40_000, at(y, 5))
    assert moved(post_event(client, storefront, again)) == ("Member", "VIB")
    assert len(entry_codes(session)) == 1
    assert len(messages("reward.issued")) == 1

    # Dropped again, then reached in a new period: a new code.
    assert moved(refund(client, storefront, again, 40_000, at(y, 6))) == ("VIB", "Member")
    assert moved(post_event(client, storefront, order(40_000, early_this_year(5)))) == (
        "Member", "VIB",
    )  # fmt: skip
    assert len(entry_codes(session)) == 2
    periods = session.scalars(select(TierEntry.period_starts_at).order_by(TierEntry.id)).all()
    assert [p.year for p in periods] == [y, y + 1]


def test_entry_reward_for_members_moved_by_a_tier_change(client, admin, storefront, session):
    reward = make_reward(client, admin)
    for customer_id, amount in (("a", 30_000), ("b", 30_000), ("c", 1_000)):
        post_event(client, storefront, order(amount, early_this_year(1), customer_id=customer_id))
    # A new tier at 250.00: a and b reach it at once (set-based), c does not.
    add_tier(client, admin, "VIB", 25_000, entry_reward_id=reward["id"])
    assert [len(entry_codes(session, c)) for c in ("a", "b", "c")] == [1, 1, 0]
    # Moving the threshold down and up again gives nothing twice.
    vib = client.get("/v1/tiers", headers=admin).get_json()["items"][1]
    for threshold in (50_000, 25_000):
        response = client.patch(f"/v1/tiers/{vib['id']}", json={"threshold": threshold},
                                headers=admin)  # fmt: skip
        assert response.status_code == 200
    assert member(client, storefront, "a")["tier"]["name"] == "VIB"
    assert [len(entry_codes(session, c)) for c in ("a", "b", "c")] == [1, 1, 0]


def test_a_retired_entry_reward_issues_no_code(client, admin, storefront, session):
    reward = make_reward(client, admin)
    add_tier(client, admin, "VIB", 35_000, entry_reward_id=reward["id"])
    client.delete(f"/v1/rewards/{reward['id']}", headers=admin)
    assert moved(post_event(client, storefront, order(40_000, early_this_year(1)))) == (
        "Member", "VIB",
    )  # fmt: skip
    assert entry_codes(session) == []


def test_an_entry_reward_with_stock_takes_it_and_stops_when_none_is_left(
    client, admin, storefront, session
):
    reward = make_reward(client, admin, stock=1)
    add_tier(client, admin, "VIB", 35_000, entry_reward_id=reward["id"])
    for customer_id in ("first", "second"):
        body = post_event(client, storefront, order(40_000, early_this_year(1), customer_id))
        assert moved(body) == ("Member", "VIB")
    assert [len(entry_codes(session, c)) for c in ("first", "second")] == [1, 0]
    assert client.get(f"/v1/rewards/{reward['id']}", headers=admin).get_json()["stock"] == 0


# --- birthday points ------------------------------------------------------------------------


def test_a_tiers_birthday_points_replace_the_rules(client, admin, storefront, runner, session):
    response = client.post(
        "/v1/earning-rules",
        json={"name": "Birthday", "trigger": "birthday", "points": 250},
        headers=admin,
    )
    rule_id = response.get_json()["id"]
    add_tier(client, admin, "VIB", 35_000, birthday_points=1_000)
    add_tier(client, admin, "Rouge", 100_000, birthday_points=0)
    for customer_id, amount in (("member", 1_000), ("vib", 40_000), ("rouge", 110_000)):
        client.post(
            "/v1/members",
            json={"id": customer_id, "email": f"{customer_id}@example.com", "birthday": "03-10"},
            headers=storefront,
        )
        post_event(client, storefront, order(amount, at(2026, 2), customer_id=customer_id))
    before = {c: member(client, storefront, c)["points"]["available"]
              for c in ("member", "vib", "rouge")}  # fmt: skip
    out = f.run_job(runner, "birthdays", at(2026, 3, 10))
    assert "birthdays: 2 changed" in out
    assert "birthdays: 0 changed" in f.run_job(runner, "birthdays", at(2026, 3, 11))
    gained = {c: member(client, storefront, c)["points"]["available"] - before[c]
              for c in before}  # fmt: skip
    assert gained == {"member": 250, "vib": 1_000, "rouge": 0}
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.source_type == "birthday").order_by(LedgerEntry.id)
    ).all()
    assert {e.points: e.rule_id for e in entries} == {250: rule_id, 1_000: rule_id}
    [vib] = [e for e in entries if e.points == 1_000]
    assert vib.detail == {"rule": "Birthday", "trigger": "birthday", "tier": "VIB",
                          "tier_birthday_points": 1_000}  # fmt: skip


def test_birthdays_on_later_days_of_the_year_move_balances_too(
    client, admin, storefront, runner, session
):
    """Each run sees only the member's own entries: a birthday given earlier in the year to
    someone else does not stop the balance of the next one (the entry and the balance move
    together)."""
    client.post("/v1/earning-rules", json={"name": "Birthday", "trigger": "birthday",
                                           "points": 100}, headers=admin)  # fmt: skip
    for customer_id, birthday in (("march", "03-10"), ("june", "06-10")):
        client.post(
            "/v1/members",
            json={"id": customer_id, "email": f"{customer_id}@example.com", "birthday": birthday},
            headers=storefront,
        )
    assert "birthdays: 1 changed" in f.run_job(runner, "birthdays", at(2026, 3, 10))
    assert "birthdays: 1 changed" in f.run_job(runner, "birthdays", at(2026, 6, 10))
    assert [member(client, storefront, c)["points"]["available"] for c in ("march", "june")] == [
        100, 100,
    ]  # fmt: skip
    assert find_drift(session) == []


# --- OpenAPI --------------------------------------------------------------------------------


def test_openapi_documents_the_tier_options(client):
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert schemas["Program"]["properties"]["tier_basis"]["enum"] == ["spend", "points", "orders"]
    for name in ("Tier", "TierUpdate"):
        properties = schemas[name]["properties"]
        assert {"entry_reward_id", "birthday_points"} <= set(properties), name
    assert "tier_basis" in schemas["Preview"]["properties"]
    member = schemas["Member"]["properties"]
    assert {"tier_basis", "qualifying_value"} <= set(member)
    assert "remaining" in schemas["NextTier"]["properties"]
