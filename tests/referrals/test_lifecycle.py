"""Bad claims change nothing; codes at enrolment; erasure; Idempotency-Key on claims."""

import pytest
from sqlalchemy import func, select

from loyalty.audit import AuditLog
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.members import service as members
from referrals.models import Referral, ReferralClick, ReferralCode
from rewards.catalog.models import RewardCode
from tests.referrals.helpers import claim, code_of, enroll, order, points, referral_effects

TABLES = (Referral, ReferralClick, ReferralCode, RewardCode, AuditLog)


def counts():
    return {t.__tablename__: db.session.scalar(select(func.count()).select_from(t)) for t in TABLES}


@pytest.mark.parametrize(
    "change",
    [
        {"email": "not-an-email"},
        {"email": None},
        {"code": ""},
        {"code": "X" * 129},
        {"customer_id": 12},
        {"ip": ["1.2.3.4"]},
        {"user_agent": "x" * 301},
        {"coupon": "FREE"},
    ],
)
def test_bad_claims_are_refused_and_change_nothing(client, admin, storefront, change):
    enroll(client, admin, "ana")
    body = {"code": code_of(client, storefront, "ana"), "email": "bea@example.com", **change}
    body = {k: v for k, v in body.items() if v is not None}
    before = counts()
    response = client.post("/v1/referrals/claim", json=body, headers=storefront)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["type"] == "validation-error"
    assert counts() == before


def test_enrolment_gives_the_member_a_code(app, session):
    member, created = members.enroll(session, hooks(), "zoe", "zoe@example.com")
    assert created
    code = session.scalar(select(ReferralCode.code).where(ReferralCode.member_id == member.id))
    assert code is not None and len(code) == 8


def test_erasing_a_friend_removes_their_details_from_referrals(client, admin, storefront):
    enroll(client, admin, "ana")
    claimed = claim(client, storefront, code_of(client, storefront, "ana"), "bea@example.com",
                    customer_id="bea", name="Bea", ip="198.51.100.1").get_json()  # fmt: skip
    enroll(client, admin, "bea", "bea@example.com")
    assert client.delete("/v1/members/bea", headers=admin).status_code == 204
    item = client.get(f"/v1/referrals/{claimed['referral_id']}", headers=admin).get_json()
    assert item["friend"] == {"email": None, "customer_id": None, "name": None}
    assert (item["ip"], item["user_agent"]) == (None, None)


def test_a_claimed_referral_of_an_erased_referrer_rewards_nobody(client, admin, storefront):
    enroll(client, admin, "ana")
    claim(client, storefront, code_of(client, storefront, "ana"), "bea@example.com")
    assert client.delete("/v1/members/ana", headers=admin).status_code == 204
    _, body = order(client, storefront, "bea", email="bea@example.com")
    [effect] = referral_effects(body)
    assert (effect["status"], effect["reason"]) == ("rejected", "referrer_erased")


def test_claim_with_the_same_idempotency_key_replays_the_answer(client, admin, storefront):
    enroll(client, admin, "ana")
    code = code_of(client, storefront, "ana")
    headers = {**storefront, "Idempotency-Key": "claim-1"}
    first = claim(client, headers, code, "bea@example.com", ip="198.51.100.1")
    again = claim(client, headers, code, "bea@example.com", ip="198.51.100.1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 1
    assert points(client, storefront, "ana")["pending"] == 0
