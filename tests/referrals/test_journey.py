"""The referral journey over HTTP: link → claim → friend's first order → pending reward →
matured (or cancelled by a full refund before maturity)."""

from datetime import UTC, datetime, timedelta

from tests.referrals.helpers import (
    claim,
    code_of,
    enroll,
    follow,
    order,
    points,
    referral_effects,
    run_job,
    settings,
    stats,
    verify_ledger,
)


def start(client, admin, storefront):
    """Ana refers Bea: Bea opens the link and claims; returns (code, claim body)."""
    enroll(client, admin, "ana", "ana@example.com", name="Ana Lopez")
    code = code_of(client, storefront, "ana")
    ref, click = follow(client, code)
    assert ref == code
    response = claim(client, storefront, ref, "Bea@Example.com", click=click, ip="198.51.100.7")
    assert response.status_code == 201, response.get_json()
    return code, response.get_json()


def test_whole_journey_reward_matures_after_the_return_window(client, admin, storefront, runner):
    code, claimed = start(client, admin, storefront)
    assert claimed["status"] == "claimed"
    friend_reward = claimed["friend_reward"]
    assert friend_reward["kind"] == "amount_off"
    assert (friend_reward["amount"], friend_reward["min_order"]) == (1000, 4000)
    assert friend_reward["first_order_only"] is True
    # Bea's first order uses her code; it carries no referral code: the claim is enough.
    event, body = order(
        client, storefront, "bea", email="bea@example.com", amount=5000, days_ago=2,
        reward_codes=[friend_reward["code"]],
    )  # fmt: skip
    assert any(e["kind"] == "reward_code_used" for e in body["effects"])
    [effect] = referral_effects(body)
    assert effect["status"] == "converted"
    assert effect["reward"]["state"] == "pending"
    assert effect["reward"]["points"] == 500
    assert points(client, storefront, "ana") == {"available": 0, "pending": 500,
                                                 "lifetime_earned": 500}  # fmt: skip
    numbers = stats(client, storefront, "ana")
    assert {k: numbers[k] for k in ("clicks", "claims", "conversions")} == {
        "clicks": 1, "claims": 1, "conversions": 1,
    }  # fmt: skip
    assert (numbers["rewards_pending"], numbers["rewards_earned"]) == (1, 0)
    assert numbers["items"][0]["status"] == "converted"
    assert numbers["items"][0]["friend"]["email"] == "b***@example.com"  # masked for the referrer

    # The return window (30 days from the order) has not passed: nothing matures yet.
    occurred = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
    run_job(runner, "mature-points", occurred + timedelta(days=29))
    assert points(client, storefront, "ana")["pending"] == 500
    run_job(runner, "mature-points", occurred + timedelta(days=31))
    assert points(client, storefront, "ana") == {"available": 500, "pending": 0,
                                                 "lifetime_earned": 500}  # fmt: skip
    numbers = stats(client, storefront, "ana")
    assert (numbers["rewards_pending"], numbers["rewards_earned"]) == (0, 1)
    assert numbers["points_earned"] == 500
    assert numbers["items"][0]["status"] == "rewarded"
    listed = client.get("/v1/referrals?status=rewarded", headers=admin).get_json()["items"]
    assert [item["id"] for item in listed] == [claimed["referral_id"]]
    assert listed[0]["referrer_id"] == "ana"
    assert listed[0]["friend"]["email"] == "bea@example.com"
    # A second order of the friend converts nothing more.
    _, second = order(client, storefront, "bea", email="bea@example.com", days_ago=0)
    assert referral_effects(second) == []
    verify_ledger(runner)


def full_refund(client, storefront, event, refund_id="re_all"):
    body = {"id": f"evt_{refund_id}", "type": "order.refunded",
            "occurred_at": datetime.now(UTC).isoformat(),
            "order": {"id": event["order"]["id"], "customer_id": "bea", "currency": "USD"},
            "refund": {"id": refund_id, "amount": 5000}}  # fmt: skip
    response = client.post("/v1/events", json=body, headers=storefront)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_full_refund_after_the_window_keeps_the_reward(client, admin, storefront, runner):
    start(client, admin, storefront)
    event, _ = order(client, storefront, "bea", email="bea@example.com", days_ago=40)
    run_job(runner, "mature-points")
    assert points(client, storefront, "ana")["available"] == 500
    assert referral_effects(full_refund(client, storefront, event)) == []
    assert points(client, storefront, "ana")["available"] == 500
    assert stats(client, storefront, "ana")["rewards_earned"] == 1
    verify_ledger(runner)


def test_refund_dated_inside_the_window_claws_back_points_matured_early(
    client, admin, storefront, runner
):
    """Maturity is decided by dates, not by when a job ran: an operator who ran mature-points
    with a future --now does not make a refund inside the return window keep the reward."""
    start(client, admin, storefront)
    event, _ = order(client, storefront, "bea", email="bea@example.com", days_ago=2)
    run_job(runner, "mature-points", datetime.now(UTC) + timedelta(days=31))
    assert points(client, storefront, "ana")["available"] == 500
    [effect] = referral_effects(full_refund(client, storefront, event))
    assert effect["status"] == "reward_canceled"
    assert points(client, storefront, "ana") == {"available": 0, "pending": 0,
                                                 "lifetime_earned": 0}  # fmt: skip
    verify_ledger(runner)


def test_full_refund_before_maturity_cancels_the_reward(client, admin, storefront, runner):
    code, claimed = start(client, admin, storefront)
    event, _ = order(client, storefront, "bea", email="bea@example.com", days_ago=3,
                     reward_codes=[claimed["friend_reward"]["code"]])  # fmt: skip
    assert points(client, storefront, "ana")["pending"] == 500
    refund = {"id": "evt_refund_all", "type": "order.refunded",
              "occurred_at": datetime.now(UTC).isoformat(),
              "order": {"id": event["order"]["id"], "customer_id": "bea", "currency": "USD"},
              "refund": {"id": "re_all", "amount": 5000}}  # fmt: skip
    body = client.post("/v1/events", json=refund, headers=storefront).get_json()
    [effect] = referral_effects(body)
    assert effect["status"] == "reward_canceled"
    assert effect["reward"]["state"] == "canceled"
    assert points(client, storefront, "ana") == {"available": 0, "pending": 0,
                                                 "lifetime_earned": 0}  # fmt: skip
    run_job(runner, "mature-points", datetime.now(UTC) + timedelta(days=60))
    assert points(client, storefront, "ana") == {"available": 0, "pending": 0,
                                                 "lifetime_earned": 0}  # fmt: skip
    numbers = stats(client, storefront, "ana")
    assert (numbers["rewards_pending"], numbers["rewards_earned"]) == (0, 0)
    assert numbers["items"][0]["status"] == "converted"
    assert numbers["items"][0]["reward"]["state"] == "canceled"
    activity = client.get("/v1/members/ana/activity", headers=storefront).get_json()["items"]
    assert [(e["kind"], e["points"]) for e in activity] == [("reversal", -500), ("referral", 500)]
    assert {e["source"]["type"] for e in activity} == {"referral"}
    verify_ledger(runner)


def test_partial_refund_keeps_the_reward(client, admin, storefront, runner):
    code, claimed = start(client, admin, storefront)
    event, _ = order(client, storefront, "bea", email="bea@example.com", days_ago=3)
    refund = {"id": "evt_refund_part", "type": "order.refunded",
              "occurred_at": datetime.now(UTC).isoformat(),
              "order": {"id": event["order"]["id"], "customer_id": "bea", "currency": "USD"},
              "refund": {"id": "re_part", "amount": 4999}}  # fmt: skip
    body = client.post("/v1/events", json=refund, headers=storefront).get_json()
    assert referral_effects(body) == []
    assert points(client, storefront, "ana")["pending"] == 500
    run_job(runner, "mature-points", datetime.now(UTC) + timedelta(days=30))
    assert points(client, storefront, "ana")["available"] == 500
    verify_ledger(runner)


def test_order_with_referral_code_and_no_claim_creates_and_converts(client, admin, storefront):
    enroll(client, admin, "ana", "ana@example.com")
    code = code_of(client, storefront, "ana")
    # Typed by hand: lower case, with a dash; it is still Ana's code.
    typed = f"{code[:4].lower()}-{code[4:].lower()}"
    _, body = order(client, storefront, "cleo", email="cleo@example.com", referral_code=typed)
    [effect] = referral_effects(body)
    assert effect["status"] == "converted"
    assert points(client, storefront, "ana")["pending"] == 500
    item = stats(client, storefront, "ana")["items"][0]
    assert (item["source"], item["status"], item["order_id"]) == (
        "order", "converted", body["effects"][0].get("order_id") or item["order_id"],
    )  # fmt: skip
    assert stats(client, storefront, "ana")["claims"] == 0  # it skipped the claim


def test_unknown_referral_code_on_an_order_changes_nothing(client, admin, storefront):
    enroll(client, admin, "ana", "ana@example.com")
    _, body = order(client, storefront, "cleo", referral_code="ZZZZZZZZ")
    assert referral_effects(body) == [
        {"kind": "referral", "referral_id": None, "status": "ignored", "reason": "unknown_code"}
    ]
    assert points(client, storefront, "ana")["pending"] == 0


def test_referrer_rewarded_with_a_catalog_reward_gets_its_code_when_it_matures(
    client, admin, storefront, runner
):
    reward = client.post(
        "/v1/rewards",
        json={"name": "Free shipping", "kind": "free_shipping", "points_cost": 250,
              "code_valid_days": 60},
        headers=admin,
    ).get_json()  # fmt: skip
    settings(client, admin, referrer_reward={"reward_id": reward["id"]})
    code, claimed = start(client, admin, storefront)
    event, body = order(client, storefront, "bea", email="bea@example.com", days_ago=1)
    [effect] = referral_effects(body)
    assert effect["reward"] == {**effect["reward"], "type": "reward", "state": "pending",
                                "reward_id": reward["id"], "code_id": None}  # fmt: skip
    run_job(runner, "referral-rewards", datetime.now(UTC) + timedelta(days=28))
    assert stats(client, storefront, "ana")["rewards_pending"] == 1
    run_job(runner, "referral-rewards", datetime.now(UTC) + timedelta(days=30))
    numbers = stats(client, storefront, "ana")
    assert (numbers["rewards_pending"], numbers["rewards_earned"]) == (0, 1)
    assert numbers["items"][0]["status"] == "rewarded"
    redemptions = client.get("/v1/members/ana/redemptions", headers=storefront).get_json()
    [issued] = redemptions["items"]
    assert (issued["reward_id"], issued["points_spent"], issued["status"]) == (
        reward["id"], 0, "issued",
    )  # fmt: skip
    assert points(client, storefront, "ana")["available"] == 0  # no points were involved
    run_job(runner, "referral-rewards", datetime.now(UTC) + timedelta(days=40))
    assert (
        len(client.get("/v1/members/ana/redemptions", headers=storefront).get_json()["items"]) == 1
    )


def test_every_member_has_one_stable_code_and_share_url(client, admin, storefront, app):
    enroll(client, admin, "ana")
    enroll(client, admin, "bob")
    ana = client.get("/v1/members/ana", headers=storefront).get_json()["referral"]
    again = client.get("/v1/members/ana", headers=storefront).get_json()["referral"]
    bob = client.get("/v1/members/bob", headers=storefront).get_json()["referral"]
    assert ana == again
    assert ana["code"] != bob["code"]
    assert len(ana["code"]) == 8
    assert ana["url"] == f"{app.config['LOYALTY_PUBLIC_URL']}/r/{ana['code']}"


def test_erased_member_link_is_gone(client, admin, storefront):
    enroll(client, admin, "ana")
    code = code_of(client, storefront, "ana")
    assert client.delete("/v1/members/ana", headers=admin).status_code == 204
    assert client.get(f"/r/{code}").status_code == 404
