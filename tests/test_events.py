"""Order events over HTTP: earning, refunds, idempotency, cancellation."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from loyalty.members.models import Member
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


def test_answer_is_sent_as_stored_in_jsonify_form_and_replayed_equal(client, storefront, session):
    """The answer is encoded once for its row and its response: the body is Flask's compact,
    sorted JSON (what jsonify sends), the row holds the same document, a replay matches."""
    import json

    from loyalty.orders.models import ProcessedEvent

    event = f.paid(lines=[f.line("S1", quantity=1, unit_price=1234)])
    response = post_event(client, storefront, event)
    assert response.status_code == 200 and response.content_type == "application/json"
    body = response.get_json()
    assert set(body) == {"event_id", "duplicate", "member", "effects"}
    assert response.get_data(as_text=True) == (
        json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"
    )
    stored = session.get(ProcessedEvent, event["id"], populate_existing=True)
    assert stored.response == body
    again = post_event(client, storefront, event).get_json()
    assert again == {**body, "duplicate": True}


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


def test_an_order_paid_or_canceled_already_is_409_and_changes_nothing(client, storefront):
    paid = f.paid(lines=[f.line(unit_price=5000)])
    assert post_event(client, storefront, paid).status_code == 200
    again = f.paid("c_other", order_id=paid["order"]["id"], lines=[f.line(unit_price=9000)])
    response = post_event(client, storefront, again)
    assert response.status_code == 409
    assert "already paid" in response.get_json()["detail"]
    assert client.get("/v1/members/c_other", headers=storefront).status_code == 404  # no enrol
    assert member(client, storefront)["points"]["pending"] == 50

    canceled = f.canceled("ord_gone")
    assert post_event(client, storefront, canceled).status_code == 200
    response = post_event(client, storefront, f.paid(order_id="ord_gone"))
    assert response.status_code == 409
    assert "canceled" in response.get_json()["detail"]
    assert member(client, storefront)["points"]["pending"] == 50


def test_paid_orders_move_last_activity_forward_only(client, storefront, session):
    def last_activity():
        session.expire_all()
        return session.scalars(select(Member.last_activity_at)).one()

    now = datetime.now(UTC).replace(microsecond=0)
    gift_card_only = f.paid(lines=[f.line(unit_price=2500, gift_card=True)], occurred_at=now)
    assert post_event(client, storefront, gift_card_only).get_json()["effects"] == []
    assert last_activity() == now  # no points, still activity
    earlier = f.paid(occurred_at=now - timedelta(days=3))
    assert post_event(client, storefront, earlier).get_json()["effects"][0]["points"] == 50
    assert last_activity() == now  # a back-dated order does not move it back
    later = now + timedelta(seconds=5)
    post_event(client, storefront, f.paid(occurred_at=later))
    assert last_activity() == later


def test_program_and_rule_changes_apply_to_the_very_next_event(client, admin, storefront):
    """The program and the earning rules are cached per worker; a change made through the
    API clears the cache when it commits, so the very next event already uses it."""
    now = datetime.now(UTC)

    def effects(customer_id="c_1", occurred_at=None):
        event = f.paid(customer_id, lines=[f.line(unit_price=10_000)], occurred_at=occurred_at)
        body = post_event(client, storefront, event).get_json()
        return [(e["kind"], e["points"], e["state"]) for e in body["effects"]], body["member"]

    assert effects()[0] == [("earn", 100, "pending")]  # program and rules now cached
    change = {"points_per_unit": "2", "pending_days": 0}
    assert client.put("/v1/program", json=change, headers=admin).status_code == 200
    assert effects()[0] == [("earn", 200, "available")]

    made = client.post(
        "/v1/earning-rules",
        json={"name": "Ten more", "trigger": "order", "points": 10,
              "ends_at": (now - timedelta(hours=1)).isoformat()},
        headers=admin,
    ).get_json()  # fmt: skip
    assert effects(occurred_at=now - timedelta(hours=2))[0] == [
        ("earn", 200, "available"),
        ("bonus", 10, "available"),
    ]
    assert effects()[0] == [("earn", 200, "available")]  # the same cached rule, expired now
    changed = client.patch(
        f"/v1/earning-rules/{made['id']}", json={"points": 20, "ends_at": None}, headers=admin
    )
    assert changed.status_code == 200
    assert effects()[0] == [("earn", 200, "available"), ("bonus", 20, "available")]
    assert client.delete(f"/v1/earning-rules/{made['id']}", headers=admin).status_code == 204
    assert effects()[0] == [("earn", 200, "available")]

    assert client.put("/v1/program", json={"auto_enroll": False}, headers=admin).status_code == 200
    assert effects("c_stranger") == ([], None)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_paid_order_on_postgresql_claims_locks_and_inserts_in_one_statement(client, storefront):
    """A known member's order.paid: the claim, the member lock and the order insert are one
    statement; then earning, tier spend, the member view and the stored answer."""
    from tests.statements import recorded

    assert post_event(client, storefront, f.paid("c_one")).status_code == 200  # enrols
    event = f.paid("c_one", lines=[f.line(unit_price=7000)])
    with recorded() as sent:
        response = post_event(client, storefront, event)
    assert response.status_code == 200
    assert response.get_json()["member"]["points"]["pending"] == 50 + 70
    sent = [s for s in sent if "SAVEPOINT" not in s]  # the tests' own transaction nesting
    assert sent[0].startswith("WITH claim AS (INSERT INTO processed_events")
    assert "FOR UPDATE" in sent[0] and "INSERT INTO orders" in sent[0]
    assert len(sent) == 5, sent  # + COMMIT: as many as pgbench's tpcb-like transaction
    again = post_event(client, storefront, event)
    assert again.status_code == 200 and again.get_json()["duplicate"] is True


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_paid_order_of_a_taken_order_id_is_a_conflict_and_changes_nothing(client, storefront):
    first = f.paid("c_two")
    assert post_event(client, storefront, first).status_code == 200
    before = member(client, storefront, "c_two")
    other = f.paid("c_two")
    other["order"]["id"] = first["order"]["id"]
    response = client.post("/v1/events", json=other, headers=storefront)
    assert response.status_code == 409 and "already paid" in response.get_json()["detail"]
    assert member(client, storefront, "c_two") == before
    retry = client.post("/v1/events", json=other, headers=storefront)
    assert retry.status_code == 409  # the event was not claimed: it is answered again, not replayed


class _SeesTheOrder:
    """Order handler for the test below: notes what `ctx.order` is on each event type, and
    marks the order the way handlers change it (assigning a field)."""

    def __init__(self):
        self.seen = []

    def _note(self, ctx):
        from sqlalchemy import inspect

        state = inspect(ctx.order)
        self.seen.append((ctx.type, type(ctx.order).__name__, state.session_id, ctx.order.id))
        ctx.order.detail = {**(ctx.order.detail or {}), ctx.type: True}

    paid = refunded = canceled = _note


def test_handlers_get_the_same_kind_of_order_on_every_event_and_their_changes_are_kept(
    client, storefront, session, monkeypatch
):
    """On order.paid, order.refunded and order.canceled alike, `ctx.order` is a plain `Order`
    with its row's id, not in the session; what a handler assigns is written with the answer."""
    from loyalty.hooks import hooks
    from loyalty.orders.models import Order

    probe = _SeesTheOrder()
    monkeypatch.setattr(hooks(), "order_handlers", [*hooks().order_handlers, probe])
    paid = f.paid("c_kind", lines=[f.line(unit_price=10_000)])
    order_id = paid["order"]["id"]
    assert post_event(client, storefront, paid).status_code == 200
    refund = f.refunded(order_id, "c_kind", amount=4000)
    assert post_event(client, storefront, refund).status_code == 200
    canceled = f.canceled("ord_never_paid", "c_kind")
    assert post_event(client, storefront, canceled).status_code == 200
    rows = {
        o.order_id: o
        for o in session.scalars(select(Order).execution_options(populate_existing=True))
    }
    paid_row, canceled_row = rows[order_id], rows["ord_never_paid"]
    assert probe.seen == [
        ("order.paid", "Order", None, paid_row.id),
        ("order.refunded", "Order", None, paid_row.id),
        ("order.canceled", "Order", None, canceled_row.id),
    ]
    # Earning's and tier spend's own marks stay beside the probe's, and the refund's numbers
    # (written with the same statement) too.
    assert {"earn", "qualifying", "order.paid", "order.refunded"} <= set(paid_row.detail)
    assert (paid_row.refunded_amount, paid_row.points_awarded, paid_row.points_reversed) == (
        4000,
        100,
        40,
    )
    assert canceled_row.detail == {"order.canceled": True}
    # A replay answers as before and changes nothing.
    assert post_event(client, storefront, refund).get_json()["duplicate"] is True
    assert len(probe.seen) == 3


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_refunds_changes_to_the_order_go_with_the_stored_answer(client, storefront):
    """On PostgreSQL the order's new refunded amount, lines and reversed points are written by
    the statement that stores the answer: no UPDATE of `orders` of their own."""
    from tests.statements import recorded, touching

    paid = f.paid("c_refund_one", lines=[f.line("S1", quantity=2, unit_price=5000)])
    assert post_event(client, storefront, paid).status_code == 200
    refund = f.refunded(paid["order"]["id"], "c_refund_one", lines=[{"sku": "S1", "quantity": 1}])
    with recorded() as sent:
        assert post_event(client, storefront, refund).status_code == 200
    [write] = [s for s in touching(sent, "orders") if not s.startswith("SELECT")]
    assert write.startswith("WITH order_changes AS (UPDATE orders SET")
    assert "UPDATE processed_events SET response" in write
    viewed = member(client, storefront, "c_refund_one")
    assert viewed["points"]["lifetime_earned"] == 100 - 50  # half the order refunded


def test_a_row_of_the_order_the_session_holds_sees_the_events_changes(client, storefront, session):
    """A caller that read the order before sending its refund through the service (as the
    Shopify connector does) holds a row that shows the refund, without reading it again."""
    from loyalty.hooks import hooks
    from loyalty.orders import service
    from loyalty.orders.models import Order
    from loyalty.orders.schemas import EventSchema

    paid = f.paid("c_held", lines=[f.line(unit_price=10_000)])
    assert post_event(client, storefront, paid).status_code == 200
    held = session.scalar(select(Order).where(Order.order_id == paid["order"]["id"]))
    assert held.refunded_amount == 0
    raw = f.refunded(paid["order"]["id"], "c_held", amount=2500)
    answer = service.process_event(
        session, hooks(), EventSchema().load(raw), service.body_hash(raw)
    )
    assert answer["effects"][0] == {
        "kind": "refund",
        "amount": 2500,
        "refund_id": raw["refund"]["id"],
    }
    assert (held.refunded_amount, held.points_reversed) == (2500, 25)
    assert not session.is_modified(held)  # as loaded: nothing more to write
