"""Referral program settings (admin), the review queue, access, and the demo seed."""

import pytest
from sqlalchemy import select

from loyalty.audit import AuditLog
from loyalty.extensions import db
from tests.referrals.helpers import (
    claim,
    code_of,
    enroll,
    order,
    points,
    referral_effects,
    settings,
)

DEFAULTS = {
    "enabled": True,
    "landing_url": None,
    "friend_reward": {"kind": "amount_off", "amount": 1000, "min_order": 4000, "valid_days": 30},
    "referrer_reward": {"points": 500},
    "max_conversions_per_referrer_30d": 10,
    "max_claims_per_ip_7d": 5,
    "attribution_days": 30,
    "min_order_amount": 1,
    "reward_hold_days": 14,
    "missing_ip": "review",
}


def test_fresh_database_has_default_settings(client, admin):
    response = client.get("/v1/referral-program", headers=admin)
    assert response.status_code == 200
    assert response.get_json() == DEFAULTS


def test_put_changes_the_abuse_settings(client, admin):
    changes = {"min_order_amount": 2500, "reward_hold_days": 30, "missing_ip": "refuse"}
    assert settings(client, admin, **changes) == {**DEFAULTS, **changes}
    assert client.get("/v1/referral-program", headers=admin).get_json() == {**DEFAULTS, **changes}


def test_put_changes_what_is_sent_and_is_audited(client, admin):
    body = settings(client, admin, friend_reward={"kind": "percent_off", "percent": 15},
                    max_claims_per_ip_7d=3)  # fmt: skip
    assert body == {**DEFAULTS, "max_claims_per_ip_7d": 3,
                    "friend_reward": {"kind": "percent_off", "percent": 15, "min_order": 0,
                                      "valid_days": 30}}  # fmt: skip
    assert client.get("/v1/referral-program", headers=admin).get_json() == body
    audit = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "referral_program.update")
    ).one()
    assert (audit.before["max_claims_per_ip_7d"], audit.after["max_claims_per_ip_7d"]) == (5, 3)


@pytest.mark.parametrize(
    "body",
    [
        {"referrer_reward": {"points": 500, "reward_id": 1}},
        {"referrer_reward": {}},
        {"referrer_reward": {"points": "500"}},
        {"referrer_reward": {"reward_id": 999}},  # not in the catalog
        {"friend_reward": {"kind": "amount_off"}},
        {"friend_reward": {"kind": "amount_off", "amount": 1000, "percent": 5}},
        {"friend_reward": {"kind": "percent_off", "percent": 101}},
        {"friend_reward": {"kind": "gift"}},
        {"landing_url": "javascript:alert(1)"},
        {"max_claims_per_ip_7d": -1},
        {"enabled": "yes"},
        {"surprise": True},
        {"min_order_amount": 0},
        {"min_order_amount": "100"},
        {"reward_hold_days": 0},
        {"missing_ip": "allow"},
        {"missing_ip": None},
    ],
)
def test_bad_settings_are_refused_and_change_nothing(client, admin, body):
    response = client.put("/v1/referral-program", json=body, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["type"] == "validation-error"
    assert client.get("/v1/referral-program", headers=admin).get_json() == DEFAULTS


def test_access(client, keys):
    assert client.get("/v1/referral-program").status_code == 401
    assert client.get("/v1/referral-program", headers=keys["storefront"]).status_code == 403
    assert client.put("/v1/referral-program", json={}, headers=keys["reports"]).status_code == 403
    assert client.get("/v1/referrals", headers=keys["storefront"]).status_code == 403
    assert client.post("/v1/referrals/1/approve", headers=keys["storefront"]).status_code == 403
    assert client.post("/v1/referrals/claim", json={}, headers=keys["reports"]).status_code == 403
    assert client.get("/v1/members/nobody/referrals", headers=keys["storefront"]).status_code == 404


def suspicious_claim(client, admin, storefront, email="bea@example.com"):
    """A claim from the IP Ana orders from: it waits for review."""
    enroll(client, admin, "ana", "ana@example.com")
    order(client, storefront, "ana", email="ana@example.com", days_ago=20, ip="203.0.113.5")
    response = claim(client, storefront, code_of(client, storefront, "ana"), email,
                     ip="203.0.113.5")  # fmt: skip
    assert response.get_json()["status"] == "review"
    return response.get_json()["referral_id"]


def test_approving_a_claim_in_review_gives_the_friend_reward(client, admin, storefront):
    referral_id = suspicious_claim(client, admin, storefront)
    response = client.post(f"/v1/referrals/{referral_id}/approve", json={"note": "cousin"},
                           headers=admin)  # fmt: skip
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["note"], body["decided_by"].startswith("api_key:")) == (
        "claimed", "cousin", True,
    )  # fmt: skip
    assert body["friend_reward"]["amount"] == 1000
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "referral.approve")).one()
    assert (audit.before["status"], audit.after["status"]) == ("review", "claimed")
    # Deciding twice is a conflict.
    again = client.post(f"/v1/referrals/{referral_id}/approve", headers=admin)
    assert again.status_code == 409
    # The approved friend's first order converts as usual.
    _, paid = order(client, storefront, "bea", email="bea@example.com",
                    reward_codes=[body["friend_reward"]["code"]])  # fmt: skip
    assert referral_effects(paid)[0]["status"] == "converted"


def test_rejecting_records_why_and_gives_nothing(client, admin, storefront):
    referral_id = suspicious_claim(client, admin, storefront)
    missing = client.post(f"/v1/referrals/{referral_id}/reject", json={}, headers=admin)
    assert missing.status_code == 422
    response = client.post(f"/v1/referrals/{referral_id}/reject",
                           json={"reason": "same household"}, headers=admin)  # fmt: skip
    body = response.get_json()
    assert (body["status"], body["reason"], body["note"]) == (
        "rejected", "rejected_by_admin", "same household",
    )  # fmt: skip
    assert body["friend_reward"] is None
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "referral.reject")).one()
    assert audit.after["note"] == "same household"
    _, paid = order(client, storefront, "bea", email="bea@example.com")
    assert referral_effects(paid) == []
    assert points(client, storefront, "ana")["pending"] == 50  # Ana's own order only
    assert client.post("/v1/referrals/999/reject", json={"reason": "x"},
                       headers=admin).status_code == 404  # fmt: skip


def test_order_in_review_is_rewarded_on_approval(client, admin, storefront):
    referral_id = suspicious_claim(client, admin, storefront)
    _, paid = order(client, storefront, "bea", email="bea@example.com", days_ago=1)
    assert referral_effects(paid)[0]["status"] == "review"
    assert points(client, storefront, "ana")["pending"] == 50
    body = client.post(f"/v1/referrals/{referral_id}/approve", headers=admin).get_json()
    assert (body["status"], body["reward"]["state"], body["reward"]["points"]) == (
        "converted", "pending", 500,
    )  # fmt: skip
    assert points(client, storefront, "ana")["pending"] == 550


def test_full_refund_of_an_order_in_review_rejects_it(client, admin, storefront):
    referral_id = suspicious_claim(client, admin, storefront)
    event, _ = order(client, storefront, "bea", email="bea@example.com", days_ago=1)
    refund = {"id": "evt_r", "type": "order.refunded", "occurred_at": event["occurred_at"],
              "order": {"id": event["order"]["id"], "customer_id": "bea", "currency": "USD"},
              "refund": {"id": "re_1", "amount": 5000}}  # fmt: skip
    body = client.post("/v1/events", json=refund, headers=storefront).get_json()
    assert referral_effects(body)[0] == {
        "kind": "referral",
        "referral_id": referral_id,
        "status": "rejected",
        "reason": "order_refunded",
    }
    assert client.post(f"/v1/referrals/{referral_id}/approve", headers=admin).status_code == 409


def test_list_filters_by_status_and_paginates(client, admin, storefront):
    enroll(client, admin, "ana")
    code = code_of(client, storefront, "ana")
    ids = [claim(client, storefront, code, f"f{i}@example.com").get_json()["referral_id"]
           for i in range(3)]  # fmt: skip
    first = client.get("/v1/referrals?status=claimed&limit=2", headers=admin).get_json()
    assert [i["id"] for i in first["items"]] == ids[::-1][:2]
    rest = client.get(f"/v1/referrals?status=claimed&limit=2&cursor={first['next_cursor']}",
                      headers=admin).get_json()  # fmt: skip
    assert ([i["id"] for i in rest["items"]], rest["next_cursor"]) == ([ids[0]], None)
    assert client.get("/v1/referrals?status=review", headers=admin).get_json()["items"] == []
    assert client.get("/v1/referrals?status=bogus", headers=admin).status_code == 422


def test_demo_seed_sets_the_demo_referral_program(client, admin, runner):
    settings(client, admin, referrer_reward={"points": 100}, friend_reward={
        "kind": "free_shipping"})  # fmt: skip
    result = runner.invoke(args=["loyalty", "seed-demo"])
    assert result.exit_code == 0, result.output
    body = client.get("/v1/referral-program", headers=admin).get_json()
    assert body["friend_reward"] == {"kind": "amount_off", "amount": 1000, "min_order": 4000,
                                     "valid_days": 30}  # fmt: skip
    assert body["referrer_reward"] == {"points": 500}
    demo = client.get("/v1/members/demo-shopper", headers=admin).get_json()
    assert len(demo["referral"]["code"]) == 8
