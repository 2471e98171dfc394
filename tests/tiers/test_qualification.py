"""Qualifying spend, immediate upgrades, refunds, retained status and the period close."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from loyalty.members.service import find_member
from loyalty.tiers import service as tiers
from loyalty.tiers.models import TierChange, TierSpend
from tests import factories as f
from tests.statements import of_handler, touching
from tests.tiers.helpers import (
    at,
    beauty_insider,
    early_this_year,
    last_year,
    member,
    order,
    post_event,
    tier_change,
)


def close_period(runner, when: datetime):
    result = runner.invoke(args=["loyalty", "jobs", "close-period", "--now", when.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output


def earned(body):
    return sum(e["points"] for e in body["effects"] if e["kind"] == "earn")


def test_a_year_of_orders_upgrades_on_crossing_and_retains_into_next_year(
    client, admin, storefront, runner, session
):
    beauty_insider(client, admin)
    y = last_year()

    first = post_event(client, storefront, order(20_000, at(y, 2)))
    assert (earned(first), tier_change(first)) == (200, None)
    # Crossing 350.00: the upgrade happens on this event, which still earns at ×1.
    crossing = post_event(client, storefront, order(20_000, at(y, 3)))
    assert earned(crossing) == 200
    assert tier_change(crossing) == ("Member", "VIB")
    assert crossing["member"]["tier"]["name"] == "VIB"
    # The next order earns at VIB's ×1.25.
    assert earned(post_event(client, storefront, order(10_000, at(y, 4)))) == 125
    big_order = order(60_000, at(y, 5))  # 1,100.00 in total → Rouge
    big = post_event(client, storefront, big_order)
    assert (earned(big), tier_change(big)) == (750, ("VIB", "Rouge"))
    assert earned(post_event(client, storefront, order(10_000, at(y, 6)))) == 150  # ×1.5

    # A refund in the same year lowers that year's spend and the tier reached with it.
    refund = post_event(
        client,
        storefront,
        f.refunded(big_order["order"]["id"], amount=30_000, occurred_at=at(y, 7)),
    )
    assert tier_change(refund) == ("Rouge", "VIB")
    shopper = find_member(session, "c_1")
    assert tiers.standing(session, shopper, now=at(y, 8))["qualifying_spend"] == 90_000

    # Next year: VIB is retained whatever this year's spend, until the end of this year.
    small = post_event(client, storefront, order(5_000, early_this_year(60)))
    assert (earned(small), tier_change(small)) == (62, None)  # floor(50 × 1.25)
    view = member(client, storefront)
    assert view["tier"]["name"] == "VIB"
    assert view["tier"]["ends_at"].startswith(f"{y + 2}-01-01T00:00:00")
    assert view["qualifying_spend"] == 5_000
    assert view["next_tier"] == {
        "name": "Rouge",
        "threshold": 100_000,
        "remaining": 95_000,
        "remaining_spend": 95_000,
    }

    # The close of year y keeps VIB (reached in y); the close of y+1 downgrades, once.
    assert "close-period: 0 changed" in close_period(runner, datetime(y + 1, 1, 1, tzinfo=UTC))
    assert member(client, storefront)["tier"]["name"] == "VIB"
    assert "close-period: 1 changed" in close_period(runner, datetime(y + 2, 1, 1, tzinfo=UTC))
    assert member(client, storefront)["tier"]["name"] == "Member"
    # Twice, or late, gives the same tiers and records nothing more.
    assert "close-period: 0 changed" in close_period(runner, datetime(y + 2, 1, 1, tzinfo=UTC))
    assert "close-period: 0 changed" in close_period(runner, datetime(y + 2, 3, 9, tzinfo=UTC))
    history = client.get("/v1/members/c_1/tier-changes", headers=storefront).get_json()["items"]
    assert [(c["from"], c["to"], c["reason"]) for c in history] == [
        ("VIB", "Member", "period_close"),
        ("Rouge", "VIB", "refund"),
        ("VIB", "Rouge", "order"),
        ("Member", "VIB", "order"),
    ]
    assert session.scalar(select(TierChange.direction).order_by(TierChange.id.desc())) == (
        "downgrade"
    )


def test_refund_never_drops_below_the_retained_tier(client, admin, storefront, session):
    beauty_insider(client, admin)
    y = last_year()
    post_event(client, storefront, order(40_000, at(y, 3)))  # VIB reached in y
    big_order = order(110_000, early_this_year(30))
    assert tier_change(post_event(client, storefront, big_order)) == ("VIB", "Rouge")
    refund = post_event(
        client,
        storefront,
        f.refunded(big_order["order"]["id"], amount=110_000, occurred_at=early_this_year(40)),
    )
    # This year's spend is back to 0, but VIB reached last year still holds.
    assert tier_change(refund) == ("Rouge", "VIB")
    view = member(client, storefront)
    assert (view["tier"]["name"], view["qualifying_spend"]) == ("VIB", 0)


def test_refund_reduces_the_spend_of_the_period_the_order_counted_in(
    client, admin, storefront, session
):
    beauty_insider(client, admin)
    y = last_year()
    paid = order(40_000, at(y, 12, 30))
    post_event(client, storefront, paid)
    post_event(client, storefront, order(10_000, early_this_year(10)))
    # Refunded this year, the order still counted last year: last year's row goes down.
    post_event(
        client,
        storefront,
        f.refunded(paid["order"]["id"], amount=15_000, occurred_at=early_this_year(20)),
    )
    shopper = find_member(session, "c_1")
    rows = session.scalars(
        select(TierSpend).where(TierSpend.member_id == shopper.id).order_by(TierSpend.starts_at)
    ).all()
    assert [(r.starts_at.year, r.spend) for r in rows] == [(y, 25_000), (y + 1, 10_000)]
    assert member(client, storefront)["tier"]["name"] == "Member"


def test_gift_cards_tax_and_shipping_never_count(client, admin, storefront):
    beauty_insider(client, admin)
    event = f.paid(
        lines=[f.line(unit_price=30_000), f.line("GC", unit_price=50_000, gift_card=True)],
        shipping=5_000,
        tax=5_000,
        occurred_at=early_this_year(5),
    )
    post_event(client, storefront, event)
    view = member(client, storefront)
    assert (view["qualifying_spend"], view["tier"]["name"]) == (30_000, "Member")
    assert view["tier"]["ends_at"] is None  # the base tier never ends


def test_rolling_365_counts_membership_years(client, admin, storefront, session):
    beauty_insider(client, admin)
    program = client.get("/v1/program", headers=admin).get_json()
    program["qualifying_period"] = "rolling_365"
    assert client.put("/v1/program", json=program, headers=admin).status_code == 200
    # 400 days ago, whatever today is: the first membership year has ended, the second runs.
    enrolled = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    year = timedelta(days=365)
    post_event(client, storefront, order(20_000, enrolled))  # enrolls the member
    crossing = post_event(client, storefront, order(20_000, enrolled + timedelta(days=364)))
    assert tier_change(crossing) == ("Member", "VIB")  # day 364: the same membership year
    post_event(client, storefront, order(10_000, enrolled + timedelta(days=366)))
    shopper = find_member(session, "c_1")
    rows = session.scalars(
        select(TierSpend).where(TierSpend.member_id == shopper.id).order_by(TierSpend.starts_at)
    ).all()
    assert [(r.starts_at, r.ends_at, r.keeps_until, r.spend) for r in rows] == [
        (enrolled, enrolled + year, enrolled + 2 * year, 40_000),
        (enrolled + year, enrolled + 2 * year, enrolled + 3 * year, 10_000),
    ]
    view = member(client, storefront)
    assert (view["tier"]["name"], view["qualifying_spend"]) == ("VIB", 10_000)
    assert view["tier"]["ends_at"].startswith((enrolled + 2 * year).date().isoformat())


def test_standing_of_a_member_without_orders(client, storefront, session):
    response = client.post(
        "/v1/members", json={"id": "c_9", "email": "nine@example.com"}, headers=storefront
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["tier"]["name"] == "Member"
    assert body["qualifying_spend"] == 0
    assert body["next_tier"] is None  # only the base tier exists


def test_calendar_year_follows_the_program_timezone(client, admin, storefront, session):
    program = client.get("/v1/program", headers=admin).get_json()
    program["timezone"] = "America/Los_Angeles"
    assert client.put("/v1/program", json=program, headers=admin).status_code == 200
    y = last_year()
    # 05:00 UTC on 1 January is still 31 December in Los Angeles: it counts in year y.
    post_event(client, storefront, order(10_000, datetime(y + 1, 1, 1, 5, tzinfo=UTC)))
    shopper = find_member(session, "c_1")
    row = session.scalars(select(TierSpend).where(TierSpend.member_id == shopper.id)).one()
    assert row.starts_at == datetime(y, 1, 1, 8, tzinfo=UTC)  # midnight PST
    assert row.ends_at == datetime(y + 1, 1, 1, 8, tzinfo=UTC)
    assert row.keeps_until == datetime(y + 2, 1, 1, 8, tzinfo=UTC)


def test_demo_seed_builds_beauty_insider(client, admin, storefront, runner):
    result = runner.invoke(args=["loyalty", "seed-demo"])
    assert result.exit_code == 0, result.output
    listed = client.get("/v1/tiers", headers=admin).get_json()["items"]
    assert [(t["name"], t["threshold"], t["multiplier"]) for t in listed] == [
        ("Insider", 0, "1"),
        ("VIB", 35_000, "1.25"),
        ("Rouge", 100_000, "1.5"),
    ]
    rules = client.get("/v1/earning-rules", headers=admin).get_json()["items"]
    assert sorted((r["trigger"], r["multiplier"], r["points"]) for r in rules) == [
        ("birthday", None, 250),
        ("order", "2", None),
    ]
    # The skincare week is on now: a skincare line earns double.
    event = f.paid(lines=[f.line("CREAM", unit_price=4_000, category="skincare")])
    body = post_event(client, storefront, event)
    assert [(e["kind"], e["points"]) for e in body["effects"][:2]] == [("earn", 40), ("bonus", 40)]
    assert body["member"]["tier"]["name"] == "Insider"


def test_tier_changes_are_paginated_newest_first(client, admin, storefront):
    beauty_insider(client, admin)
    post_event(client, storefront, order(40_000, early_this_year(1)))
    post_event(client, storefront, order(70_000, early_this_year(2)))
    first = client.get("/v1/members/c_1/tier-changes?limit=1", headers=storefront).get_json()
    assert [(c["from"], c["to"], c["direction"]) for c in first["items"]] == [
        ("VIB", "Rouge", "upgrade")
    ]
    rest = client.get(
        f"/v1/members/c_1/tier-changes?limit=1&cursor={first['next_cursor']}", headers=storefront
    ).get_json()
    assert [(c["from"], c["to"]) for c in rest["items"]] == [("Member", "VIB")]
    assert rest["next_cursor"] is None
    missing = client.get("/v1/members/nobody/tier-changes", headers=storefront)
    assert missing.status_code == 404


def test_rolling_365_status_ends_with_the_following_membership_year(
    client, admin, storefront, runner
):
    beauty_insider(client, admin)
    program = client.get("/v1/program", headers=admin).get_json()
    program["qualifying_period"] = "rolling_365"
    assert client.put("/v1/program", json=program, headers=admin).status_code == 200
    enrolled = at(last_year(), 1, 10)
    post_event(client, storefront, order(40_000, enrolled))  # VIB in membership year 0
    assert member(client, storefront)["tier"]["name"] == "VIB"
    # Kept through membership year 1; the close after it (its own date) downgrades.
    assert "0 changed" in close_period(runner, enrolled + timedelta(days=729))
    assert "1 changed" in close_period(runner, enrolled + timedelta(days=730))
    assert "0 changed" in close_period(runner, enrolled + timedelta(days=731))
    assert member(client, storefront)["tier"]["name"] == "Member"


def test_an_order_that_keeps_the_tier_counts_spend_and_evaluates_it_in_one_statement(
    client, admin, storefront, session
):
    beauty_insider(client, admin)
    first = order(10_000, early_this_year(5))
    second = order(10_000, early_this_year(6))
    with of_handler(tiers.TierQualification) as calls:
        post_event(client, storefront, first)  # the year's first spend: the upsert inserts
        body = post_event(client, storefront, second)  # and then adds
        # A refund lowers the period with one UPDATE ... RETURNING.
        refund = post_event(client, storefront, f.refunded(second["order"]["id"], amount=1))
        # Nothing eligible: nothing to count, nothing to send.
        post_event(client, storefront, f.paid(lines=[f.line("GC", gift_card=True)]))
    assert (tier_change(body), tier_change(refund)) == (None, None)
    # The spend change also evaluates the formula: no SELECT of tiers or spend rows, no flush.
    assert [[s.split(" ")[0] for s in call] for call in calls] == [
        ["INSERT"],
        ["INSERT"],
        ["UPDATE"],
        [],
    ]
    assert all(touching(call, "tier_spend") == call for call in calls)
    assert member(client, storefront)["qualifying_spend"] == 19_999


def test_an_order_applies_a_downgrade_the_period_close_has_not_made_yet(
    client, admin, storefront, session, monkeypatch
):
    beauty_insider(client, admin)
    y = last_year()
    with monkeypatch.context() as clock:  # back then: the events evaluate the tier at (y, 7)
        clock.setattr(tiers, "utcnow", lambda: at(y, 7))
        rouge = post_event(client, storefront, order(110_000, at(y - 1, 6)))
        assert tier_change(rouge) == ("Member", "Rouge")
        post_event(client, storefront, order(40_000, at(y, 6)))  # VIB's worth in y
    # Rouge reached in y - 1 lasted until this new year, and no period close ran since. A
    # small order now moves Rouge → VIB: the formula, not just its own period's spend.
    body = post_event(client, storefront, order(1_000, early_this_year(5)))
    assert tier_change(body) == ("Rouge", "VIB")
    change = session.scalars(select(TierChange).order_by(TierChange.id.desc())).first()
    assert (change.reason, change.direction, change.qualifying_spend) == (
        "order",
        "downgrade",
        40_000,
    )
    assert member(client, storefront)["tier"]["name"] == "VIB"
