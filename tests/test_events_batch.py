"""`POST /v1/events/batch`: each event answered as `POST /v1/events` answers it, in order."""

import json

import pytest
from sqlalchemy import func, select

from loyalty.ledger import LedgerEntry, find_drift
from loyalty.members.models import Member
from loyalty.orders.models import Order, ProcessedEvent
from tests import factories as f
from tests.statements import recorded


def post_batch(client, headers, events):
    return client.post("/v1/events/batch", json={"events": events}, headers=headers)


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_each_event_is_answered_as_the_single_endpoint_would_in_order(client, storefront):
    first = f.paid("c_b1", lines=[f.line(unit_price=12345)])
    second = f.paid("c_b2", lines=[f.line(unit_price=5000)])
    response = post_batch(client, storefront, [first, second])
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [(first["id"], 200), (second["id"], 200)]
    assert results[0]["body"]["event_id"] == first["id"]
    assert results[0]["body"]["duplicate"] is False
    assert results[0]["body"]["member"]["points"]["pending"] == 123
    # The single endpoint replays the batch's answers as its own.
    again = client.post("/v1/events", json=first, headers=storefront)
    assert again.get_json() == {**results[0]["body"], "duplicate": True}


def test_invalid_and_refused_events_are_answered_alone_and_the_rest_applied(
    client, storefront, session
):
    good = f.paid("c_b3", lines=[f.line(unit_price=1000)])
    invalid = {**f.paid("c_b4"), "type": "order.shipped"}
    refund_unknown = f.refunded("o_never_paid", "c_b4", amount=100)
    other_currency = f.paid("c_b5", currency="EUR")
    not_an_object = 42
    late = f.paid("c_b3", lines=[f.line(unit_price=2000)])
    events = [good, invalid, refund_unknown, other_currency, not_an_object, late]
    response = post_batch(client, storefront, events)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == [200, 422, 409, 422, 422, 200]
    assert [r["id"] for r in results] == [
        good["id"], invalid["id"], refund_unknown["id"], other_currency["id"], None, late["id"]
    ]  # fmt: skip
    for problem, expected in zip(results, [None, "validation-error", "conflict",
                                           "currency-mismatch", "validation-error", None],
                                 strict=True):  # fmt: skip
        if expected:
            assert problem["body"]["type"] == expected
            assert problem["body"]["status"] == problem["status"]
    assert results[1]["body"]["errors"] == {
        "type": ["Must be one of: order.paid, order.refunded, order.canceled."]
    }
    # Each refusal is what the single endpoint answers for the same event.
    for event, result in [(refund_unknown, results[2]), (other_currency, results[3])]:
        single = client.post("/v1/events", json=event, headers=storefront)
        assert (single.status_code, single.get_json()) == (result["status"], result["body"])
    session.expire_all()
    member = session.scalars(select(Member).where(Member.customer_id == "c_b3")).one()
    assert member.points_pending == 30
    assert count(session, ProcessedEvent) == 2
    assert find_drift(session) == []


def test_duplicates_inside_a_batch_and_across_batches(client, storefront, session):
    event = f.paid("c_b6", lines=[f.line(unit_price=4000)])
    changed = {**event, "order": {**event["order"], "shipping": 1}}
    results = post_batch(client, storefront, [event, event, changed]).get_json()["results"]
    assert [r["status"] for r in results] == [200, 200, 409]
    assert results[0]["body"]["duplicate"] is False
    assert results[1]["body"] == {**results[0]["body"], "duplicate": True}
    assert "different body" in results[2]["body"]["detail"]
    again = post_batch(client, storefront, [changed, event]).get_json()["results"]
    assert [r["status"] for r in again] == [409, 200]
    assert again[1]["body"] == {**results[0]["body"], "duplicate": True}
    session.expire_all()
    assert count(session, LedgerEntry) == 1
    assert count(session, Order) == 1


def test_a_paid_order_and_its_refund_in_one_batch_apply_in_order(client, storefront, session):
    paid = f.paid("c_b7", "o_b7", lines=[f.line(unit_price=10000)])
    refund = f.refunded("o_b7", "c_b7", amount=4000)
    results = post_batch(client, storefront, [paid, refund]).get_json()["results"]
    assert [r["status"] for r in results] == [200, 200]
    assert results[1]["body"]["member"]["points"]["pending"] == 60
    reversed_first = post_batch(client, storefront, [f.refunded("o_b8", "c_b8", amount=1),
                                                     f.paid("c_b8", "o_b8")])  # fmt: skip
    assert [r["status"] for r in reversed_first.get_json()["results"]] == [409, 200]
    assert find_drift(session) == []


@pytest.mark.parametrize(
    ("envelope", "status"),
    [
        ({"events": {}}, 422),
        ({"events": []}, 422),
        ({"events": [{}] * 501}, 422),
        ({"events": [], "extra": 1}, 422),
        ({}, 422),
        ([], 422),
    ],
)
def test_an_invalid_envelope_is_a_problem_and_changes_nothing(
    client, storefront, session, envelope, status
):
    if isinstance(envelope.get("events") if isinstance(envelope, dict) else None, list) and (
        envelope["events"] == []
    ):
        envelope = {**envelope, "events": [f.paid("c_b9")]} if "extra" in envelope else envelope
    response = client.post("/v1/events/batch", json=envelope, headers=storefront)
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert count(session, ProcessedEvent) == 0


def test_a_body_above_the_limit_is_413_and_changes_nothing(app, client, storefront, session):
    limit = app.config["MAX_CONTENT_LENGTH"]
    lines = [f.line(f"S{n}", category="x" * 128) for n in range(20)]
    events = [f.paid(f"c_big{i}", lines=lines) for i in range(500)]
    body = json.dumps({"events": events})
    assert len(body) > limit
    response = client.post(
        "/v1/events/batch",
        data=body,
        headers={**storefront, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert count(session, ProcessedEvent) == 0


def test_the_batch_needs_a_storefront_or_admin_key(client, keys):
    event = f.paid("c_b10")
    assert post_batch(client, keys["reports"], [event]).status_code == 403
    assert post_batch(client, {}, [event]).status_code == 401
    assert post_batch(client, keys["admin"], [event]).status_code == 200


@pytest.mark.parametrize("orders_each", [1, 2])
def test_plain_paid_orders_of_members_take_a_few_statements_whatever_their_number(
    app, client, storefront, session, backend, monkeypatch, orders_each
):
    """The members' plain paid orders are applied in groups (docs/performance.md, "Order
    events in batches"): on PostgreSQL the statements do not grow with the events; with
    `EVENT_BATCH_FAST_PATH` off, each event sends its own."""
    customers = [f"c_g{orders_each}_{n}" for n in range(30)]
    enrolled = post_batch(client, storefront, [f.paid(c) for c in customers])
    assert enrolled.status_code == 200

    def orders(price):
        return [f.paid(c, lines=[f.line(unit_price=price + n)])
                for _ in range(orders_each) for n, c in enumerate(customers)]  # fmt: skip

    with recorded() as sent:
        grouped = post_batch(client, storefront, orders(1000))
    assert grouped.status_code == 200
    results = grouped.get_json()["results"]
    assert [r["status"] for r in results] == [200] * len(results)
    assert [r["body"]["effects"][0]["points"] for r in results] == [
        10 for _ in range(orders_each) for _n in customers
    ]
    if backend == "postgresql":
        assert len(sent) <= 16 * orders_each, sent
    monkeypatch.setitem(app.config, "EVENT_BATCH_FAST_PATH", False)
    with recorded() as alone:
        assert post_batch(client, storefront, orders(3000)).status_code == 200
    assert len(alone) >= 3 * len(results)
    assert find_drift(session) == []


def test_an_order_recorded_before_is_refused_in_a_group_and_the_rest_stand(
    client, storefront, session
):
    """The orders of a group are inserted at its end: one recorded meanwhile by another
    event is found there, its event refused (409) alone and the others applied."""
    taken = f.paid("c_g2", "o_g_taken")
    assert client.post("/v1/events", json=taken, headers=storefront).status_code == 200
    events = [f.paid("c_g1", "o_g1"), f.paid("c_g2", "o_g_taken"), f.paid("c_g3", "o_g3")]
    results = post_batch(client, storefront, events).get_json()["results"]
    assert [r["status"] for r in results] == [200, 409, 200]
    assert "already paid" in results[1]["body"]["detail"]
    orders = session.scalars(select(Order.order_id).where(Order.order_id.like("o_g%")))
    assert sorted(orders) == ["o_g1", "o_g3", "o_g_taken"]
    assert results[0]["body"]["member"]["points"]["pending"] == 50
    assert find_drift(session) == []


def test_overlapping_batches_still_collect_every_few_seconds(monkeypatch):
    """Threads whose batches overlap with no gap never give the collector back: a batch that
    ends while another runs collects when none has for `COLLECT_EVERY_SECONDS`."""
    import gc
    import weakref

    from loyalty.orders import batch

    now = [1000.0]
    monkeypatch.setattr(batch, "_clock", lambda: now[0])

    class Cycle:
        pass

    def garbage():
        made = Cycle()
        made.me = made  # only the cyclic collector frees it
        return weakref.ref(made)

    assert gc.isenabled()
    with batch.collector_paused():  # another thread's batch, running throughout
        with batch.collector_paused():
            early = garbage()
        assert early() is not None  # ended before the interval: nothing collected
        now[0] += batch.COLLECT_EVERY_SECONDS
        with batch.collector_paused():
            late = garbage()
        assert early() is None and late() is None
        assert not gc.isenabled()  # still paused for the batch that runs on
    assert gc.isenabled()


def test_the_garbage_collector_is_paused_during_a_batch_and_restored(app, monkeypatch):
    import gc

    from loyalty.orders import batch

    seen = []
    monkeypatch.setattr(batch, "_apply_events", lambda *_a: seen.append(gc.isenabled()) or [])
    assert gc.isenabled()
    with batch.collector_paused():  # nested, as two threads' batches would be
        batch.apply_events(None, None, [])
        assert not gc.isenabled()
    assert gc.isenabled() and seen == [False]
    with pytest.raises(RuntimeError), batch.collector_paused():
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:  # off before the batch: still off after it
        batch.apply_events(None, None, [])
        assert not gc.isenabled()
    finally:
        gc.enable()
    monkeypatch.setitem(app.config, "EVENT_BATCH_GC_PAUSE", False)
    with app.app_context():
        batch.apply_events(None, None, [])
    assert seen == [False, False, True]
