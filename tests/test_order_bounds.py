"""Orders are bounded (MAX_ORDER_AMOUNT per line and per order, MAX_POINTS earned per order)
and the totals they add up to (balances, lifetime points, a period's qualifying spend) stop
far below a BIGINT's range: past a bound the event is a 422 that changes nothing, where it used
to be accepted (a 10^17 line earning 10^15 points) or to overflow into a 500."""

import pytest
from sqlalchemy import select, update

from loyalty import models
from loyalty.extensions import db
from loyalty.inputs import INT64_MAX
from loyalty.schemas import MAX_POINTS
from loyalty.tiers.models import TierSpend
from loyalty.types import MAX_RUNNING_TOTAL
from rewards.giftcards.models import GiftCard
from tests import factories as f
from tests import refusals
from tests.refusals import refused

LIMIT = 100_000_000_000  # MAX_ORDER_AMOUNT's default
LINE_0 = ("order", "lines", "0", "unit_price")
TABLES = [models.Member, models.LedgerEntry, models.Order, models.ProcessedEvent, TierSpend]


def row_counts():
    return refusals.row_counts(TABLES)


def order(customer="c_big", n=0, **kwargs):
    return f.paid(customer, order_id=f"o_big_{n}", event_id=f"e_big_{n}", **kwargs)


@pytest.mark.parametrize(
    ("lines", "extra", "where"),
    [
        # 10^6 × 10^11: what was accepted with 10^15 pending points.
        ([f.line(quantity=1_000_000, unit_price=LIMIT)], {}, LINE_0),
        ([f.line(quantity=2, unit_price=LIMIT // 2 + 1)], {}, LINE_0),
        # The discount does not make a line's quantity × unit_price smaller.
        ([f.line(quantity=3, unit_price=LIMIT // 2, discount=LIMIT)], {},
         LINE_0),
        ([f.line(unit_price=LIMIT // 2 + 1), f.line(sku="S2", unit_price=LIMIT // 2)], {},
         ("order", "lines")),
        ([f.line(unit_price=LIMIT - 2)], {"shipping": 1, "tax": 2}, ("order", "lines")),
    ],
)  # fmt: skip
def test_an_order_or_line_above_the_limit_is_refused_and_changes_nothing(
    client, storefront, lines, extra, where
):
    before = row_counts()
    body = refused(client.post("/v1/events", json=order(lines=lines, **extra),
                               headers=storefront), *where)  # fmt: skip
    assert str(LIMIT) in str(body["errors"])
    assert row_counts() == before


def test_an_order_at_the_limit_is_accepted_and_earns_the_most_points(client, storefront):
    lines = [f.line(quantity=4, unit_price=LIMIT // 8), f.line(sku="S2", unit_price=LIMIT // 2)]
    response = client.post("/v1/events", json=order(lines=lines), headers=storefront)
    assert response.status_code == 200, response.get_data(as_text=True)
    # 10^11 cents at 1 point per dollar: exactly the most one order may earn.
    assert response.json["member"]["points"]["pending"] == MAX_POINTS
    assert response.json["member"]["qualifying_spend"] == LIMIT
    refund = f.refunded("o_big_0", "c_big", amount=LIMIT // 4)
    assert client.post("/v1/events", json=refund, headers=storefront).status_code == 200


def test_the_order_limit_is_configuration(app, client, storefront, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_ORDER_AMOUNT", 10_000)
    before = row_counts()
    event = order(lines=[f.line(unit_price=9_000)], shipping=1_001)
    body = refused(client.post("/v1/events", json=event, headers=storefront), "order", "lines")
    assert "10000" in body["errors"]["order"]["lines"][0]
    assert row_counts() == before
    event = order(n=1, lines=[f.line(unit_price=9_000)], shipping=1_000)
    assert client.post("/v1/events", json=event, headers=storefront).status_code == 200


def test_an_order_earning_more_than_max_points_is_refused_and_changes_nothing(
    client, admin, storefront
):
    assert (
        client.put("/v1/program", json={"points_per_unit": "2"}, headers=admin).status_code == 200
    )
    before = row_counts()
    event = order(lines=[f.line(unit_price=LIMIT // 2 + 100)])
    body = refused(client.post("/v1/events", json=event, headers=storefront), "order")
    assert "1000000002" in body["detail"] and str(MAX_POINTS) in body["detail"]
    assert row_counts() == before
    # The same order at half the rate is fine.
    assert (
        client.put("/v1/program", json={"points_per_unit": "1"}, headers=admin).status_code == 200
    )
    assert client.post("/v1/events", json=event, headers=storefront).status_code == 200


def test_bonus_points_count_toward_an_orders_max_points(client, admin, storefront):
    rule = {"name": "ten more", "trigger": "order", "points": 10}
    assert client.post("/v1/earning-rules", json=rule, headers=admin).status_code == 201
    before = row_counts()
    event = order(lines=[f.line(unit_price=LIMIT)])
    refused(client.post("/v1/events", json=event, headers=storefront), "order")
    assert row_counts() == before
    event = order(n=1, lines=[f.line(unit_price=LIMIT - 1_000)])  # 10^9 - 10 points + 10
    response = client.post("/v1/events", json=event, headers=storefront)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["member"]["points"]["pending"] == MAX_POINTS


def member_pk(customer_id):
    return db.session.scalar(
        select(models.Member.id).where(models.Member.customer_id == customer_id)
    )


@pytest.mark.parametrize("spend", [MAX_RUNNING_TOTAL - 4_999, INT64_MAX - 10])
def test_qualifying_spend_never_passes_the_running_total_limit(client, storefront, spend):
    assert client.post("/v1/events", json=order(), headers=storefront).status_code == 200
    pk = member_pk("c_big")
    db.session.execute(update(TierSpend).where(TierSpend.member_id == pk).values(spend=spend))
    db.session.commit()
    before = row_counts()
    event = order(n=1, lines=[f.line(unit_price=5_000)])
    body = refused(client.post("/v1/events", json=event, headers=storefront), "order")
    assert "qualifying spend" in body["detail"]
    assert row_counts() == before
    assert db.session.scalar(select(TierSpend.spend).where(TierSpend.member_id == pk)) == spend
    # Up to the limit is still counted.
    event = order(n=2, lines=[f.line(unit_price=4_999)])
    if spend <= MAX_RUNNING_TOTAL:
        assert client.post("/v1/events", json=event, headers=storefront).status_code == 200
        assert db.session.scalar(select(TierSpend.spend)) == MAX_RUNNING_TOTAL


@pytest.mark.parametrize("column", ["points_pending", "points_lifetime"])
@pytest.mark.parametrize("start", [MAX_RUNNING_TOTAL - 4, INT64_MAX - 2])
def test_balances_never_pass_the_running_total_limit(client, admin, storefront, column, start):
    assert client.post("/v1/events", json=order(), headers=storefront).status_code == 200
    pk = member_pk("c_big")
    db.session.execute(update(models.Member).where(models.Member.id == pk).values({column: start}))
    db.session.commit()
    before = row_counts()
    event = order(n=1, lines=[f.line(unit_price=500)])  # 5 points, pending
    body = refused(client.post("/v1/events", json=event, headers=storefront), "points")
    assert str(MAX_RUNNING_TOTAL) in body["detail"]
    adjust = {"points": 5, "reason": "goodwill"}  # available and lifetime
    response = client.post("/v1/members/c_big/adjustments", json=adjust, headers=admin)
    if column == "points_lifetime":
        refused(response, "points")
        assert row_counts() == before
    else:  # only the balances an entry moves are held to the limit
        assert response.status_code == 201, response.get_data(as_text=True)
    stored = db.session.scalar(select(getattr(models.Member, column)).where(models.Member.id == pk))
    assert stored == start


@pytest.mark.parametrize("balance", [MAX_RUNNING_TOTAL - 99, INT64_MAX - 10])
def test_gift_card_credits_never_pass_the_running_total_limit(client, admin, balance):
    card = client.post("/v1/gift-cards", json={"amount": 1, "currency": "USD"}, headers=admin).json
    moved = {"balance": balance, "adjusted_amount": balance - 1}  # the balance still adds up
    db.session.execute(update(GiftCard).where(GiftCard.id == card["id"]).values(moved))
    db.session.commit()
    path = f"/v1/gift-cards/{card['id']}/adjustments"
    response = client.post(path, json={"amount": 100, "reason": "goodwill"}, headers=admin)
    refused(response, "amount")
    assert db.session.scalar(select(GiftCard.balance).where(GiftCard.id == card["id"])) == balance
    response = client.post(path, json={"amount": -100, "reason": "correction"}, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["balance"] == balance - 100


@pytest.mark.parametrize("bound", ["points_pending", "points_lifetime", "spend"])
def test_a_batch_holds_the_running_total_limits_as_the_single_endpoint(client, storefront, bound):
    """The plain paid orders of a batch are applied in groups (one statement for their
    entries, one for their spend: docs/performance.md): a member at a limit is refused there
    as alone, the others of the group applied."""
    first = [order(), f.paid("c_small", order_id="o_small_0", event_id="e_small_0")]
    assert (
        client.post("/v1/events/batch", json={"events": first}, headers=storefront).status_code
        == 200
    )
    pk = member_pk("c_big")
    if bound == "spend":
        start = MAX_RUNNING_TOTAL - 4_999
        db.session.execute(update(TierSpend).where(TierSpend.member_id == pk).values(spend=start))
    else:
        start = MAX_RUNNING_TOTAL - 4
        db.session.execute(
            update(models.Member).where(models.Member.id == pk).values({bound: start})
        )
    db.session.commit()
    events = [order(n=1, lines=[f.line(unit_price=5_000)]),
              f.paid("c_small", order_id="o_small_1", event_id="e_small_1")]  # fmt: skip
    response = client.post("/v1/events/batch", json={"events": events}, headers=storefront)
    assert response.status_code == 200
    big, small = response.json["results"]
    assert big["status"] == 422, big
    assert ("qualifying spend" if bound == "spend" else str(MAX_RUNNING_TOTAL)) in big["body"][
        "detail"
    ]
    assert small["status"] == 200, small
    if bound == "spend":
        stored = db.session.scalar(select(TierSpend.spend).where(TierSpend.member_id == pk))
    else:
        stored = db.session.scalar(
            select(getattr(models.Member, bound)).where(models.Member.id == pk)
        )
    assert stored == start
