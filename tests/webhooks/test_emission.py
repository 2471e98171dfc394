"""Events go into the outbox in the transaction of the change, one message per event and one
delivery per live endpoint subscribed to its type — and cost no SQL while nobody subscribes."""

from datetime import UTC, datetime, timedelta

import pytest

from loyalty import webhooks
from loyalty.errors import Conflict
from loyalty.hooks import hooks
from tests import factories as f
from tests.referrals import helpers as referrals
from tests.rewards.helpers import make_member, make_reward, redeem
from tests.statements import recorded, touching
from tests.tiers.helpers import beauty_insider, post_event, tier_change
from tests.webhooks.helpers import count_deliveries, create_endpoint, messages, run_job

URL = "https://hooks.example.com/loyalty"
WEBHOOK_TABLES = ("webhook_endpoints", "webhook_messages", "webhook_deliveries")


def test_an_order_writes_one_message_and_a_delivery_per_subscribed_endpoint(
    client, admin, storefront
):
    first = create_endpoint(client, admin, URL, ["points.earned"])
    create_endpoint(client, admin, URL + "/2", ["points.earned", "tier.changed"])
    create_endpoint(client, admin, URL + "/3", ["gift_card.issued"])  # not this type
    gone = create_endpoint(client, admin, URL + "/4", ["points.earned"])
    assert client.delete(f"/v1/webhook-endpoints/{gone['id']}", headers=admin).status_code == 204
    occurred = datetime(2026, 3, 1, 12, tzinfo=UTC)
    event = f.paid("c_w", lines=[f.line(unit_price=12_345)], occurred_at=occurred)
    post_event(client, storefront, event)

    [message] = messages()
    assert message.type == "points.earned"
    assert message.data == {
        "customer_id": "c_w",
        "order_id": event["order"]["id"],
        "points": 123,
        "state": "pending",
        "matures_at": (occurred + timedelta(days=30)).isoformat(),
        "occurred_at": occurred.isoformat(),
    }
    assert count_deliveries() == 2
    listed = client.get(f"/v1/webhook-endpoints/{first['id']}/deliveries", headers=admin)
    [delivery] = listed.get_json()["items"]
    assert delivery["message_id"] == f"msg_{message.id}"
    assert (delivery["status"], delivery["attempts"]) == ("pending", 0)


class _FailsAfterEarning:
    def paid(self, ctx):
        raise Conflict("a later step of the event failed")


def test_a_rolled_back_change_leaves_no_message(client, admin, storefront, monkeypatch):
    create_endpoint(client, admin, URL, ["points.earned"])
    handlers = [*hooks().order_handlers, _FailsAfterEarning()]
    monkeypatch.setattr(hooks(), "order_handlers", handlers)
    response = client.post("/v1/events", json=f.paid("c_rb"), headers=storefront)
    assert response.status_code == 409
    assert messages() == [] and count_deliveries() == 0
    monkeypatch.undo()
    post_event(client, storefront, f.paid("c_rb"))
    assert [m.type for m in messages()] == ["points.earned"]  # the same change, committed


def test_emit_sends_no_statement_when_nobody_subscribes(client, admin, session):
    webhooks.emit(session, "points.earned", {"warm": True})  # reads the endpoints once
    with recorded() as sent:
        assert webhooks.emit(session, "points.earned", {"customer_id": "c_1"}) is None
    assert sent == []
    create_endpoint(client, admin, URL, ["tier.changed"])
    webhooks.emit(session, "points.earned", {"warm": True})  # the change cleared the cache
    with recorded() as sent:
        for event_type in webhooks.EVENT_TYPES:
            if event_type != "tier.changed":
                assert webhooks.emit(session, event_type, {"customer_id": "c_1"}) is None
    assert sent == []
    with recorded() as sent:
        assert webhooks.emit(session, "tier.changed", {"customer_id": "c_1"}) is not None
    assert [s.split(" ")[0] for s in sent] == ["INSERT", "INSERT"]  # message, deliveries


def test_the_order_hot_path_is_unchanged_until_someone_subscribes(client, admin, storefront):
    def order_statements():
        with recorded() as sent:
            post_event(client, storefront, f.paid("c_hot"))
        return sent

    post_event(client, storefront, f.paid("c_hot"))  # enrols, first-order checks, warm caches
    post_event(client, storefront, f.paid("c_hot"))
    nobody = order_statements()
    assert not any(touching(nobody, table) for table in WEBHOOK_TABLES)

    create_endpoint(client, admin, URL, ["gift_card.issued"])  # another type
    post_event(client, storefront, f.paid("c_hot"))  # warm again: the change cleared the cache
    others = order_statements()
    assert len(others) == len(nobody)
    assert not any(touching(others, table) for table in WEBHOOK_TABLES)

    create_endpoint(client, admin, URL, ["points.earned"])
    post_event(client, storefront, f.paid("c_hot"))
    subscribed = order_statements()
    assert len(subscribed) == len(nobody) + 2
    assert len(touching(subscribed, "webhook_messages")) == 1
    assert len(touching(subscribed, "webhook_deliveries")) == 1


def test_tier_changes_by_order_and_by_a_new_tier_are_reported(client, admin, storefront):
    create_endpoint(client, admin, URL, ["tier.changed"])
    beauty_insider(client, admin)
    body = post_event(client, storefront, f.paid("c_t", lines=[f.line(unit_price=40_000)]))
    assert tier_change(body) == ("Member", "VIB")
    post_event(client, storefront, f.paid("c_u", lines=[f.line(unit_price=20_000)]))
    # A new tier at 150.00 moves c_u up (set-based) and leaves c_t (VIB) where it is.
    new_tier = {"name": "Silver", "threshold": 15_000, "multiplier": "1.1"}
    assert client.post("/v1/tiers", json=new_tier, headers=admin).status_code == 201

    changes = [m.data for m in messages("tier.changed")]
    assert [(c["customer_id"], c["from"], c["to"], c["reason"]) for c in changes] == [
        ("c_t", "Member", "VIB", "order"),
        ("c_u", "Member", "Silver", "tier_config"),
    ]
    assert changes[0]["direction"] == "upgrade" and changes[0]["qualifying_spend"] == 40_000
    assert count_deliveries() == 2


def test_a_redemption_reports_the_reward_code(client, admin, storefront):
    create_endpoint(client, admin, URL, ["reward.issued"])
    make_member(client, admin, "c_r", points=600)
    reward = make_reward(client, admin)
    response = redeem(client, storefront, "c_r", reward["id"])
    assert response.status_code == 201
    [message] = messages("reward.issued")
    data = message.data
    assert (data["code"], data["customer_id"]) == (response.get_json()["code"], "c_r")
    assert (data["reward_id"], data["points_spent"], data["kind"], data["amount"]) == (
        reward["id"], 500, "amount_off", 1000,
    )  # fmt: skip
    assert data["expires_at"] == response.get_json()["expires_at"]


def test_a_referral_conversion_is_reported(client, admin, storefront):
    create_endpoint(client, admin, URL, ["referral.converted"])
    referrals.enroll(client, admin, "ana", "ana@example.com")
    code = referrals.code_of(client, storefront, "ana")
    assert referrals.claim(client, storefront, code, "bea@example.com").status_code == 201
    event, _ = referrals.order(client, storefront, "bea", email="bea@example.com")
    [message] = messages("referral.converted")
    data = message.data
    assert (data["referrer_customer_id"], data["friend_customer_id"]) == ("ana", "bea")
    assert data["order_id"] == event["order"]["id"]
    assert data["reward"]["state"] == "pending" and data["reward"]["points"] == 500


def test_a_gift_card_issue_is_reported_without_its_code(client, admin):
    create_endpoint(client, admin, URL, ["gift_card.issued"])
    response = client.post(
        "/v1/gift-cards", json={"amount": 5000, "currency": "USD", "bonus_amount": 500},
        headers=admin,
    )  # fmt: skip
    assert response.status_code == 201
    card = response.get_json()
    [message] = messages("gift_card.issued")
    assert message.data["gift_card_id"] == card["id"]
    assert (message.data["last4"], message.data["balance"]) == (card["last4"], 5500)
    assert (message.data["amount"], message.data["bonus_amount"]) == (5000, 500)
    assert card["code"] not in str(message.data)


@pytest.fixture
def expiring_program(client, admin):
    response = client.put(
        "/v1/program", json={"pending_days": 0, "expiry_inactive_days": 100}, headers=admin
    )
    assert response.status_code == 200


def test_points_expiring_warns_once_per_member_and_expiry(
    client, admin, storefront, runner, expiring_program
):
    paid_at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    post_event(client, storefront, f.paid("c_x", occurred_at=paid_at))  # 50 points
    post_event(client, storefront, f.paid("c_y", occurred_at=paid_at + timedelta(days=20)))
    run_job(runner, "expire-points", paid_at + timedelta(days=95))
    assert messages("points.expiring") == []  # nobody subscribed: nothing written

    create_endpoint(client, admin, URL, ["points.expiring"])
    run_job(runner, "expire-points", paid_at + timedelta(days=92))  # 8 days before: not yet
    assert messages("points.expiring") == []
    run_job(runner, "expire-points", paid_at + timedelta(days=94))
    run_job(runner, "expire-points", paid_at + timedelta(days=99))  # again: no second warning
    [message] = messages("points.expiring")
    assert message.data == {
        "customer_id": "c_x",
        "points": 50,
        "expires_at": "2026-04-11T12:00:00+00:00",
        "last_activity_at": "2026-01-01T12:00:00+00:00",
    }
    assert count_deliveries() == 1

    # New activity moves the expiry: the next one is warned about again.
    post_event(client, storefront, f.paid("c_x", occurred_at=paid_at + timedelta(days=99)))
    run_job(runner, "expire-points", paid_at + timedelta(days=195))
    warned = [(m.data["customer_id"], m.data["expires_at"]) for m in messages("points.expiring")]
    assert warned == [
        ("c_x", "2026-04-11T12:00:00+00:00"),
        ("c_x", "2026-07-19T12:00:00+00:00"),
    ]
    assert messages("points.expiring")[1].data["points"] == 100
