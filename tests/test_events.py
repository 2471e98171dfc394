"""Order events over HTTP: earning, refunds, idempotency, cancellation."""

from datetime import UTC, datetime, timedelta

from tests import factories as f


def post_event(client, headers, event):
    return client.post("/v1/events", json=event, headers=headers)


def member(client, headers, customer_id="c_1"):
    return client.get(f"/v1/members/{customer_id}", headers=headers).get_json()


def test_paid_order_earns_pending_points_on_eligible_spend_only(client, storefront):
    event = f.paid(
        lines=[
            f.line("S1", quantity=2, unit_price=5050, discount=100),
            f.line("GC", quantity=1, unit_price=2500, gift_card=True),
        ],
        shipping=500,
        tax=800,
    )
    response = post_event(client, storefront, event)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["duplicate"] is False
    # (2 × 50.50 − 1.00) = 100.00 eligible → 100 points; gift card, tax, shipping excluded.
    assert body["effects"][0] == {
        **body["effects"][0],
        "kind": "earn",
        "points": 100,
        "state": "pending",
    }
    assert body["member"]["points"] == {"available": 0, "pending": 100, "lifetime_earned": 100}


def test_same_event_replays_same_answer_and_different_body_conflicts(client, storefront):
    event = f.paid()
    first = post_event(client, storefront, event).get_json()
    again = post_event(client, storefront, event)
    assert again.status_code == 200
    assert again.get_json() == {**first, "duplicate": True}
    assert member(client, storefront)["points"]["pending"] == 50
    changed = {**event, "order": {**event["order"], "shipping": 1}}
    conflict = post_event(client, storefront, changed)
    assert conflict.status_code == 409
    assert conflict.get_json()["type"] == "conflict"
    assert conflict.content_type == "application/problem+json"


def test_refunds_reverse_proportionally_and_last_one_takes_the_remainder(client, storefront):
    event = f.paid(lines=[f.line("A", quantity=3, unit_price=3333)])  # 99.99 → 99 points
    post_event(client, storefront, event)
    order_id = event["order"]["id"]
    r1 = post_event(client, storefront, f.refunded(order_id, lines=[{"sku": "A", "quantity": 1}]))
    assert r1.status_code == 200
    assert r1.get_json()["effects"][-1]["points"] == -33  # floor(99 × 3333 / 9999)
    r2 = post_event(client, storefront, f.refunded(order_id, amount=3333))
    r3 = post_event(client, storefront, f.refunded(order_id, lines=[{"sku": "A", "quantity": 1}]))
    assert r2.status_code == r3.status_code == 200
    points = member(client, storefront)["points"]
    assert points == {"available": 0, "pending": 0, "lifetime_earned": 0}
    too_much = post_event(client, storefront, f.refunded(order_id, amount=1))
    assert too_much.status_code == 422


def test_refund_after_maturity_claws_back_available_points(client, storefront, runner):
    when = datetime.now(UTC) - timedelta(days=40)
    event = f.paid(occurred_at=when, lines=[f.line(unit_price=10000)])
    post_event(client, storefront, event)
    result = runner.invoke(args=["loyalty", "jobs", "mature-points"])
    assert result.exit_code == 0, result.output
    assert member(client, storefront)["points"]["available"] == 100
    response = post_event(client, storefront, f.refunded(event["order"]["id"], amount=4000))
    assert [e["kind"] for e in response.get_json()["effects"]] == ["refund", "clawback"]
    assert member(client, storefront)["points"] == {
        "available": 60,
        "pending": 0,
        "lifetime_earned": 60,
    }


def test_refund_of_unknown_order_is_409_and_changes_nothing(client, storefront):
    response = post_event(client, storefront, f.refunded("nope", amount=100))
    assert response.status_code == 409
    retry = f.paid(order_id="nope")
    assert post_event(client, storefront, retry).status_code == 200


def test_other_currency_is_refused(client, storefront):
    response = post_event(client, storefront, f.paid(currency="EUR"))
    assert response.status_code == 422
    assert response.get_json()["type"] == "currency-mismatch"
    assert client.get("/v1/members/c_1", headers=storefront).status_code == 404
