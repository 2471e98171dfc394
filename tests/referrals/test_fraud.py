"""Each fraud rule: a case that trips it and a near miss that must not."""

import pytest
from sqlalchemy import func, select

from loyalty.extensions import db
from referrals.models import Referral
from tests.referrals.helpers import (
    claim,
    code_of,
    enroll,
    order,
    points,
    referral_effects,
    settings,
    stats,
)


def referrer(client, admin, storefront, email="ana.smith@gmail.com", name="Ana Smith"):
    enroll(client, admin, "ana", email, name=name)
    return code_of(client, storefront, "ana")


def refused(response, reason):
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert (body["type"], body["reason"]) == ("referral-rejected", reason)
    assert response.content_type == "application/problem+json"
    return body


def referral_count():
    return db.session.scalar(select(func.count()).select_from(Referral))


# --- self-referral ----------------------------------------------------------------------------


def test_self_referral_by_customer_id(client, admin, storefront):
    code = referrer(client, admin, storefront)
    refused(claim(client, storefront, code, "other@example.com", customer_id="ana"),
            "self_referral")  # fmt: skip
    assert referral_count() == 0
    near = claim(client, storefront, code, "other@example.com", customer_id="ana2")
    assert near.status_code == 201, near.get_json()


@pytest.mark.parametrize(
    "spelling", ["Ana.Smith@gmail.com", "anasmith+promo@gmail.com", "a.n.a.smith@googlemail.com"]
)
def test_self_referral_by_normalized_gmail_address(client, admin, storefront, spelling):
    code = referrer(client, admin, storefront)
    refused(claim(client, storefront, code, spelling), "self_referral")


def test_dots_matter_outside_gmail(client, admin, storefront):
    code = referrer(client, admin, storefront, email="ana.smith@example.com")
    refused(claim(client, storefront, code, "Ana.Smith+x@Example.com"), "self_referral")
    near = claim(client, storefront, code, "anasmith@example.com")  # another mailbox there
    assert near.status_code == 201, near.get_json()


def test_self_referral_by_name(client, admin, storefront):
    code = referrer(client, admin, storefront)
    refused(claim(client, storefront, code, "x@example.com", name="  ana   SMITH "),
            "self_referral")  # fmt: skip
    near = claim(client, storefront, code, "x@example.com", name="Ana Smythe")
    assert near.status_code == 201, near.get_json()


@pytest.mark.parametrize("key", ["shipping_address_hash", "payment_fingerprint"])
def test_self_referral_by_shipping_address_or_payment_on_the_order(client, admin, storefront, key):
    code = referrer(client, admin, storefront)
    order(client, storefront, "ana", email="ana.smith@gmail.com", days_ago=60, **{key: "h-ana"})
    # Same hash as one of Ana's orders: the referral is rejected with the reason, no reward.
    _, body = order(client, storefront, "bea", referral_code=code, **{key: "h-ana"})
    [effect] = referral_effects(body)
    assert (effect["status"], effect["reason"]) == ("rejected", "self_referral")
    assert points(client, storefront, "ana")["pending"] == 50  # Ana's own order only
    listed = client.get("/v1/referrals?status=rejected", headers=admin).get_json()["items"]
    assert [(i["friend"]["customer_id"], i["reason"]) for i in listed] == [("bea", "self_referral")]
    # Near miss: a different address / card converts.
    _, body = order(client, storefront, "cleo", referral_code=code, **{key: "h-cleo"})
    assert referral_effects(body)[0]["status"] == "converted"
    assert points(client, storefront, "ana")["pending"] == 550


def test_self_referral_found_at_conversion_of_a_claimed_referral(client, admin, storefront):
    code = referrer(client, admin, storefront)
    order(client, storefront, "ana", email="ana.smith@gmail.com", days_ago=60,
          payment_fingerprint="card-1")  # fmt: skip
    assert claim(client, storefront, code, "bea@example.com").status_code == 201
    _, body = order(client, storefront, "bea", email="bea@example.com",
                    payment_fingerprint="card-1")  # fmt: skip
    [effect] = referral_effects(body)
    assert (effect["status"], effect["reason"]) == ("rejected", "self_referral")
    assert points(client, storefront, "ana")["pending"] == 50


# --- friend not new ---------------------------------------------------------------------------


def test_friend_with_paid_orders_is_not_new(client, admin, storefront):
    code = referrer(client, admin, storefront)
    order(client, storefront, "bea", email="bea@example.com", days_ago=10)
    # By mailbox, whatever the spelling, or by customer id.
    refused(claim(client, storefront, code, "BEA+promo@example.com"), "not_new_customer")
    refused(claim(client, storefront, code, "bea-new@example.com", customer_id="bea"),
            "not_new_customer")  # fmt: skip


def test_existing_member_without_orders_is_still_new(client, admin, storefront):
    code = referrer(client, admin, storefront)
    enroll(client, admin, "bea", "bea@example.com")
    response = claim(client, storefront, code, "bea@example.com", customer_id="bea")
    assert response.status_code == 201, response.get_json()
    _, body = order(client, storefront, "bea", email="bea@example.com")
    assert referral_effects(body)[0]["status"] == "converted"


def test_only_the_first_paid_order_converts_an_order_without_a_claim(client, admin, storefront):
    code = referrer(client, admin, storefront)
    order(client, storefront, "bea", days_ago=5)
    _, body = order(client, storefront, "bea", referral_code=code)
    [effect] = referral_effects(body)
    assert (effect["status"], effect["reason"]) == ("rejected", "not_new_customer")
    assert points(client, storefront, "ana")["pending"] == 0


# --- already referred -------------------------------------------------------------------------


def test_a_friend_is_referred_once_whatever_the_spelling_or_referrer(client, admin, storefront):
    code = referrer(client, admin, storefront)
    enroll(client, admin, "bob", "bob@example.com")
    bob_code = code_of(client, storefront, "bob")
    assert claim(client, storefront, code, "bea.b@gmail.com").status_code == 201
    refused(claim(client, storefront, bob_code, "BeaB+x@gmail.com"), "already_referred")
    refused(claim(client, storefront, code, "bea.b@gmail.com"), "already_referred")
    assert referral_count() == 1
    near = claim(client, storefront, bob_code, "bea.c@gmail.com")
    assert near.status_code == 201, near.get_json()


def test_order_code_of_another_referrer_does_not_steal_a_claimed_referral(
    client, admin, storefront
):
    code = referrer(client, admin, storefront)
    enroll(client, admin, "bob", "bob@example.com")
    assert claim(client, storefront, code, "bea@example.com").status_code == 201
    _, body = order(client, storefront, "bea", email="bea@example.com",
                    referral_code=code_of(client, storefront, "bob"))  # fmt: skip
    assert referral_effects(body)[0]["status"] == "converted"
    assert points(client, storefront, "ana")["pending"] == 500
    assert points(client, storefront, "bob")["pending"] == 0


# --- caps -------------------------------------------------------------------------------------


def test_conversions_per_referrer_in_30_days_are_capped(client, admin, storefront):
    code = referrer(client, admin, storefront)
    settings(client, admin, max_conversions_per_referrer_30d=2)
    # An old conversion (40 days ago) does not count toward the 30-day window.
    order(client, storefront, "f0", referral_code=code, days_ago=40)
    order(client, storefront, "f1", referral_code=code, days_ago=3)
    assert claim(client, storefront, code, "f2@example.com").status_code == 201  # near miss
    order(client, storefront, "f2", email="f2@example.com", days_ago=1)
    refused(claim(client, storefront, code, "f3@example.com"), "limit_reached")
    _, body = order(client, storefront, "f4", referral_code=code)
    assert referral_effects(body)[0]["reason"] == "limit_reached"
    assert stats(client, storefront, "ana")["conversions"] == 3
    # Raising the cap (or removing it: null) lets the next one through.
    settings(client, admin, max_conversions_per_referrer_30d=None)
    assert claim(client, storefront, code, "f3@example.com").status_code == 201


def test_two_people_at_one_office_ip_are_fine_under_the_ip_cap(client, admin, storefront):
    code = referrer(client, admin, storefront)
    enroll(client, admin, "bob", "bob@example.com")
    settings(client, admin, max_claims_per_ip_7d=2)
    office = "192.0.2.10"
    for email in ("bea@example.com", "cleo@example.com"):
        response = claim(client, storefront, code, email, ip=office)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["status"] == "claimed"
    # The cap is per IP, whichever referrer's code is used.
    refused(claim(client, storefront, code_of(client, storefront, "bob"), "dan@example.com",
                  ip=office), "limit_reached")  # fmt: skip
    near = claim(client, storefront, code, "dan@example.com", ip="192.0.2.11")
    assert near.status_code == 201, near.get_json()


def test_disabled_program_refuses_claims_and_ignores_order_codes(client, admin, storefront):
    code = referrer(client, admin, storefront)
    settings(client, admin, enabled=False)
    refused(claim(client, storefront, code, "bea@example.com"), "program_disabled")
    _, body = order(client, storefront, "bea", referral_code=code)
    assert referral_effects(body)[0]["reason"] == "program_disabled"
    assert referral_count() == 0
    settings(client, admin, enabled=True)
    assert claim(client, storefront, code, "cleo@example.com").status_code == 201


# --- suspicion: review ------------------------------------------------------------------------


def test_friend_on_the_referrers_ip_waits_for_review(client, admin, storefront):
    code = referrer(client, admin, storefront)
    order(client, storefront, "ana", email="ana.smith@gmail.com", days_ago=20, ip="203.0.113.5")
    response = claim(client, storefront, code, "bea@example.com", ip="203.0.113.5")
    assert response.status_code == 201
    assert response.get_json() == {**response.get_json(), "status": "review",
                                   "friend_reward": None}  # fmt: skip
    near = claim(client, storefront, code, "cleo@example.com", ip="203.0.113.6")
    assert near.get_json()["status"] == "claimed"
    [item] = client.get("/v1/referrals?status=review", headers=admin).get_json()["items"]
    assert item["flags"] == ["same_ip_as_referrer"]
