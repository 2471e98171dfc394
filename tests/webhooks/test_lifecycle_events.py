"""The lifecycle events: each written once, where its change happens, in its transaction,
with the documented `data` (docs/webhooks.md)."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from loyalty.webhooks.models import EVENT_TYPES
from tests import factories as f
from tests.conftest import ROOT
from tests.giftcards.helpers import hold, issue
from tests.referrals import helpers as referrals
from tests.rewards.helpers import make_member, make_reward, redeem
from tests.tiers.helpers import post_event
from tests.webhooks.helpers import count_deliveries, create_endpoint, messages, run_job
from tests.webhooks.receiver import Receiver

URL = "https://hooks.example.com/loyalty"


@pytest.fixture
def everything(client, admin):
    """An endpoint subscribed to every event type."""
    return create_endpoint(client, admin, URL, list(EVENT_TYPES))


def data_of(event_type):
    return [m.data for m in messages(event_type)]


def test_member_enrolled_once(client, admin, everything):
    make_member(client, admin, "c_new", email="nia@example.com")
    make_member(client, admin, "c_new", email="nia@example.com")  # the same member: 200
    [data] = data_of("member.enrolled")
    assert set(data) == {"customer_id", "email", "enrolled_at", "points_available",
                         "points_pending"}  # fmt: skip
    assert (data["customer_id"], data["email"], data["points_available"]) == (
        "c_new", "nia@example.com", 0,
    )  # fmt: skip


def test_member_enrolled_carries_the_sign_up_points(client, admin, storefront, everything):
    rule = {"name": "welcome", "trigger": "signup", "points": 50}
    assert client.post("/v1/earning-rules", json=rule, headers=admin).status_code == 201
    make_member(client, admin, "c_bonus")
    post_event(client, storefront, f.paid("c_auto"))  # enrolled by their first order
    enrolled = {d["customer_id"]: d for d in data_of("member.enrolled")}
    assert set(enrolled) == {"c_bonus", "c_auto"}
    assert enrolled["c_bonus"]["points_available"] + enrolled["c_bonus"]["points_pending"] == 50


def test_points_adjusted(client, admin, everything):
    make_member(client, admin, "c_adj", points=700)
    [data] = data_of("points.adjusted")
    assert data["entry_id"] > 0 and data["occurred_at"]
    del data["entry_id"], data["occurred_at"]
    assert data == {"customer_id": "c_adj", "points": 700, "reason": "test",
                    "points_available": 700, "points_pending": 0}  # fmt: skip


def test_points_expired_once_per_expiry(client, admin, storefront, runner, everything):
    response = client.put("/v1/program", json={"pending_days": 0, "expiry_inactive_days": 100},
                          headers=admin)  # fmt: skip
    assert response.status_code == 200
    paid_at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    post_event(client, storefront, f.paid("c_x", occurred_at=paid_at))  # 50 points
    run_job(runner, "expire-points", paid_at + timedelta(days=101))
    run_job(runner, "expire-points", paid_at + timedelta(days=102))
    [data] = data_of("points.expired")
    assert data == {
        "customer_id": "c_x",
        "points": 50,
        "points_available": 0,
        "last_activity_at": "2026-01-01T12:00:00+00:00",
        "expired_at": (paid_at + timedelta(days=101)).isoformat(),
    }


def test_reward_redeemed_and_code_used_once(client, admin, storefront, everything):
    make_member(client, admin, "c_r", points=600)
    reward = make_reward(client, admin)
    response = redeem(client, storefront, "c_r", reward["id"])
    assert response.status_code == 201
    code = response.get_json()["code"]
    [redeemed] = data_of("reward.redeemed")
    assert (redeemed["customer_id"], redeemed["reward_id"], redeemed["points_spent"],
            redeemed["points_available"]) == ("c_r", reward["id"], 500, 100)  # fmt: skip
    assert redeemed["expires_at"] == response.get_json()["expires_at"]
    assert set(redeemed) == {"reward_code_id", "reward_id", "customer_id", "source", "amount",
                             "points_spent", "points_available", "expires_at",
                             "occurred_at"}  # fmt: skip
    assert (redeemed["source"], redeemed["amount"]) == ("redemption", 1000)

    event = f.paid("c_r", lines=[f.line(unit_price=5000)], reward_codes=[code])
    post_event(client, storefront, event)
    post_event(client, storefront, event)  # a replay uses nothing again
    [used] = data_of("reward.code_used")
    assert used == {
        "reward_code_id": redeemed["reward_code_id"],
        "code": code,
        "reward_id": reward["id"],
        "customer_id": "c_r",
        "source": "redemption",
        "order_id": event["order"]["id"],
        "discount": 1000,
        "used_at": event["occurred_at"].replace("Z", "+00:00"),
    }


def test_reward_code_expiring_once_per_code(client, admin, storefront, runner, everything):
    make_member(client, admin, "c_soon", points=1000)
    reward = make_reward(client, admin, code_valid_days=10)
    issued = redeem(client, storefront, "c_soon", reward["id"]).get_json()
    expires_at = datetime.fromisoformat(issued["expires_at"])
    run_job(runner, "expire-codes", expires_at - timedelta(days=4))  # not yet (3 days)
    assert data_of("reward.code_expiring") == []
    run_job(runner, "expire-codes", expires_at - timedelta(days=2))
    run_job(runner, "expire-codes", expires_at - timedelta(days=1))
    run_job(runner, "expire-codes", expires_at + timedelta(days=1))  # expired: no warning
    [data] = data_of("reward.code_expiring")
    assert data == {
        "reward_code_id": data["reward_code_id"],
        "code": issued["code"],
        "reward_id": reward["id"],
        "customer_id": "c_soon",
        "source": "redemption",
        "expires_at": expires_at.replace(microsecond=0).isoformat(),  # to the second
    }


def test_referral_claimed_and_held_for_review(client, admin, storefront, everything):
    referrals.enroll(client, admin, "ana", "ana@gmail.com", name="Ana Smith")
    code = referrals.code_of(client, storefront, "ana")
    claimed = referrals.claim(client, storefront, code, "bea@example.com", customer_id="bea")
    assert claimed.status_code == 201
    [data] = data_of("referral.claimed")
    assert data["referral_id"] == claimed.get_json()["referral_id"]
    assert (data["referrer_customer_id"], data["friend_customer_id"]) == ("ana", "bea")
    assert data["friend_reward_code_id"] is not None and data["claimed_at"]

    held = referrals.claim(client, storefront, code, "аna@gmail.com")  # a Cyrillic а
    assert held.status_code == 201 and held.get_json()["status"] == "review"
    [data] = data_of("referral.held_for_review")
    assert data["referral_id"] == held.get_json()["referral_id"]
    assert data["flags"] == ["confusable_email"] and data["order_id"] is None
    assert data["referrer_customer_id"] == "ana"
    assert len(data_of("referral.claimed")) == 1


def test_gift_card_redeemed_and_low_balance_once_per_crossing(
    client, admin, storefront, everything
):
    card = issue(client, admin, amount=5000)

    def capture(amount, order_id):
        held = hold(client, storefront, card["code"], amount, order_id=order_id)
        assert held.status_code == 201, held.get_json()
        captured = client.post(f"/v1/gift-card-holds/{held.get_json()['id']}/capture",
                               headers=storefront)  # fmt: skip
        assert captured.status_code == 200, captured.get_json()

    capture(3000, "ord_a")  # 2000 left: above the 1000 threshold
    assert data_of("gift_card.low_balance") == []
    capture(1500, "ord_b")  # 500 left: crosses
    capture(100, "ord_c")  # 400 left: still below, not again
    redeemed = data_of("gift_card.redeemed")
    assert [(d["amount"], d["balance"], d["order_id"]) for d in redeemed] == [
        (3000, 2000, "ord_a"), (1500, 500, "ord_b"), (100, 400, "ord_c"),
    ]  # fmt: skip
    assert set(redeemed[0]) == {"gift_card_id", "last4", "currency", "amount", "balance",
                                "hold_id", "order_id", "captured_at"}  # fmt: skip
    assert card["code"] not in str(redeemed)
    [low] = data_of("gift_card.low_balance")
    assert (low["gift_card_id"], low["balance"], low["threshold"]) == (card["id"], 500, 1000)
    assert low["last4"] == card["last4"] and low["currency"] == "USD"

    credit = client.post(f"/v1/gift-cards/{card['id']}/adjustments",
                         json={"amount": 1000, "reason": "goodwill"}, headers=admin)  # fmt: skip
    assert credit.status_code == 201  # 1400: above again
    capture(600, "ord_d")  # 800: a second crossing
    assert [d["balance"] for d in data_of("gift_card.low_balance")] == [500, 800]


def test_a_hold_that_expires_lifts_the_card_above_the_threshold_again(
    client, admin, storefront, runner, everything
):
    card = issue(client, admin, amount=3000)
    parked = hold(client, storefront, card["code"], 2500, order_id="ord_parked")
    assert parked.status_code == 201  # 500 spendable, nothing captured: no report
    small = hold(client, storefront, card["code"], 100, order_id="ord_small").get_json()
    assert client.post(f"/v1/gift-card-holds/{small['id']}/capture",
                       headers=storefront).status_code == 200  # fmt: skip
    assert [d["balance"] for d in data_of("gift_card.low_balance")] == [400]
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    result = runner.invoke(args=["loyalty", "jobs", "expire-holds", "--now", later])
    assert result.exit_code == 0, result.output  # the parked 2500 back: 2900
    big = hold(client, storefront, card["code"], 2000, order_id="ord_big").get_json()
    assert client.post(f"/v1/gift-card-holds/{big['id']}/capture",
                       headers=storefront).status_code == 200  # fmt: skip
    assert [d["balance"] for d in data_of("gift_card.low_balance")] == [400, 900]


def test_member_lapsing_once_per_lapse(app, client, admin, storefront, runner, everything):
    app.config["MEMBER_LAPSE_DAYS"] = 60
    try:
        paid_at = datetime(2026, 1, 1, 12, tzinfo=UTC)
        post_event(client, storefront, f.paid("c_lapse", occurred_at=paid_at))
        post_event(client, storefront, f.paid("c_busy", occurred_at=paid_at + timedelta(days=50)))
        run_job(runner, "lapsing-members", paid_at + timedelta(days=59))
        assert data_of("member.lapsing") == []
        run_job(runner, "lapsing-members", paid_at + timedelta(days=61))
        run_job(runner, "lapsing-members", paid_at + timedelta(days=62))
        [data] = data_of("member.lapsing")
        assert data == {
            "customer_id": "c_lapse",
            "last_paid_order_at": "2026-01-01T12:00:00+00:00",
            "days_without_order": 60,
            "points_available": 0,
            "tier_id": data["tier_id"],
            "points_awarded": 0,  # no win-back rule
        }
        # A new order, then a new lapse: reported again.
        post_event(client, storefront, f.paid("c_lapse", occurred_at=paid_at + timedelta(days=70)))
        run_job(runner, "lapsing-members", paid_at + timedelta(days=111))  # c_busy's turn
        run_job(runner, "lapsing-members", paid_at + timedelta(days=131))
        lapses = [(d["customer_id"], d["last_paid_order_at"]) for d in data_of("member.lapsing")]
        assert lapses == [
            ("c_lapse", "2026-01-01T12:00:00+00:00"),
            ("c_busy", "2026-02-20T12:00:00+00:00"),
            ("c_lapse", "2026-03-12T12:00:00+00:00"),
        ]
    finally:
        app.config["MEMBER_LAPSE_DAYS"] = 0


def test_nothing_is_written_for_types_nobody_subscribes_to(client, admin, storefront):
    create_endpoint(client, admin, URL, ["gift_card.issued"])
    make_member(client, admin, "c_quiet", points=600)
    reward = make_reward(client, admin)
    assert redeem(client, storefront, "c_quiet", reward["id"]).status_code == 201
    assert messages() == [] and count_deliveries() == 0


# --- the test event ---------------------------------------------------------------------------


def test_a_test_event_goes_signed_to_that_endpoint_only(client, admin, storefront, runner):
    with Receiver() as receiver:
        target = create_endpoint(client, admin, receiver.url, ["points.earned"])
        create_endpoint(client, admin, receiver.url + "/other", list(EVENT_TYPES))
        response = client.post(f"/v1/webhook-endpoints/{target['id']}/test", headers=admin)
        assert response.status_code == 202, response.get_json()
        body = response.get_json()
        assert (body["endpoint_id"], body["type"]) == (target["id"], "webhook.test")
        assert body["message_id"].startswith("msg_") and body["created_at"]
        run_job(runner, "deliver-webhooks")
        [received] = receiver.requests
    assert received.id == body["message_id"]
    payload = received.verified(target["secret"])  # signed like every event
    assert payload["type"] == "webhook.test"
    assert payload["data"]["endpoint_id"] == target["id"]
    listed = client.get(f"/v1/webhook-endpoints/{target['id']}/deliveries", headers=admin)
    [delivery] = listed.get_json()["items"]
    assert (delivery["type"], delivery["status"]) == ("webhook.test", "delivered")


def test_a_test_event_needs_an_admin_and_a_live_endpoint(client, admin, storefront):
    endpoint = create_endpoint(client, admin, URL, ["points.earned"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}/test"
    assert client.post(path, headers=storefront).status_code == 403
    assert client.post("/v1/webhook-endpoints/999999/test", headers=admin).status_code == 404
    deleted = client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin)
    assert deleted.status_code == 204
    gone = client.post(path, headers=admin)
    assert gone.status_code == 404 and gone.headers["Content-Type"] == "application/problem+json"
    assert messages() == []


def test_a_test_event_sent_twice_under_one_key_is_queued_once(client, admin):
    endpoint = create_endpoint(client, admin, URL, ["points.earned"])
    keyed = {**admin, "Idempotency-Key": "test-event-1"}
    first = client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=keyed)
    again = client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=keyed)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert len(messages("webhook.test")) == 1


def test_every_event_type_is_documented_with_its_data():
    page = (ROOT / "docs" / "webhooks.md").read_text()
    documented = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", page, re.M)
    assert sorted(documented) == sorted(EVENT_TYPES)
