"""One friend, one referral, under real concurrency on PostgreSQL."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from loyalty.extensions import db
from loyalty.ledger import find_drift
from loyalty.members.models import Member
from referrals.models import Referral
from referrals.service import SOURCE
from rewards.catalog.models import RewardCode
from tests import factories as f
from tests.referrals.helpers import code_of, enroll, new_ip

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]


def test_20_concurrent_claims_of_one_friend_make_one_referral(pg_app, pg_keys):
    client = pg_app.test_client()
    enroll(client, pg_keys["admin"], "ana", "ana@example.com")
    enroll(client, pg_keys["admin"], "bob", "bob@example.com")
    codes = [code_of(client, pg_keys["storefront"], "ana"),
             code_of(client, pg_keys["storefront"], "bob")]  # fmt: skip
    # The same mailbox spelled several ways, through both referrers' codes at once.
    spellings = ["bea.b@gmail.com", "BeaB@gmail.com", "bea.b+x@googlemail.com", "beab@gmail.com"]

    def send(i):
        response = pg_app.test_client().post(
            "/v1/referrals/claim",
            json={"code": codes[i % 2], "email": spellings[i % 4], "ip": f"198.51.100.{i}"},
            headers=pg_keys["storefront"],
        )
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(send, range(20)))
    won = [body for status, body in results if status == 201]
    lost = [body for status, body in results if status != 201]
    assert len(won) == 1, results
    assert {(b["type"], b["reason"]) for b in lost} == {("referral-rejected", "already_referred")}
    with pg_app.app_context():
        referral = db.session.scalars(select(Referral)).one()
        assert referral.friend_email == "beab@gmail.com"
        assert referral.id == won[0]["referral_id"]
        codes_issued = db.session.scalar(
            select(func.count()).select_from(RewardCode).where(RewardCode.source_type == SOURCE)
        )
        assert codes_issued == 1


def test_concurrent_first_orders_of_one_friend_convert_once(pg_app, pg_keys):
    """A claimed friend and an unclaimed one each place several 'first' orders at once
    (different order ids, each carrying the code): each friend converts exactly once."""
    client = pg_app.test_client()
    enroll(client, pg_keys["admin"], "ana", "ana@example.com")
    code = code_of(client, pg_keys["storefront"], "ana")
    response = client.post("/v1/referrals/claim", json={"code": code, "email": "bea@example.com",
                           "ip": "198.51.100.1"}, headers=pg_keys["storefront"])  # fmt: skip
    assert response.status_code == 201
    events = [f.paid(friend, email=f"{friend}@example.com", referral_code=code, ip=new_ip())
              for friend in ("bea", "cleo") for _ in range(6)]  # fmt: skip

    def send(i):
        response = pg_app.test_client().post(
            "/v1/events", json=events[i], headers=pg_keys["storefront"]
        )
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(send, range(len(events))))
    assert {status for status, _ in results} == {200}, results
    converted = [e for _, body in results for e in body["effects"]
                 if e["kind"] == "referral" and e["status"] == "converted"]  # fmt: skip
    assert len(converted) == 2
    with pg_app.app_context():
        rows = db.session.scalars(select(Referral).order_by(Referral.id)).all()
        assert [(r.friend_email, r.status) for r in rows] == [
            ("bea@example.com", "converted"), ("cleo@example.com", "converted"),
        ]  # fmt: skip
        ana = db.session.scalars(select(Member).where(Member.customer_id == "ana")).one()
        assert ana.points_pending == 1000
        assert find_drift(db.session) == []


def test_a_claim_racing_the_friends_first_order_ends_with_one_referral(pg_app, pg_keys):
    """A friend (a member without orders) claims through one referrer while their first order
    arrives carrying another referrer's code, many friends at once: no request fails, each
    friend ends with one referral, and the friend's member mark agrees with what waits."""
    client = pg_app.test_client()
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    enroll(client, admin, "ana", "ana@example.com")
    enroll(client, admin, "bob", "bob@example.com")
    ana, bob = code_of(client, storefront, "ana"), code_of(client, storefront, "bob")
    friends = [f"friend{i}" for i in range(8)]
    for friend in friends:
        enroll(client, admin, friend, f"{friend}@example.com")

    def send(job):
        kind, friend = job
        if kind == "claim":
            body = {"code": ana, "email": f"{friend}@example.com", "customer_id": friend,
                    "ip": new_ip()}  # fmt: skip
            response = pg_app.test_client().post("/v1/referrals/claim", json=body,
                                                 headers=storefront)  # fmt: skip
        else:
            event = f.paid(friend, email=f"{friend}@example.com", referral_code=bob, ip=new_ip())
            response = pg_app.test_client().post("/v1/events", json=event, headers=storefront)
        return response.status_code, response.get_json()

    jobs = [(kind, friend) for friend in friends for kind in ("claim", "order")]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(send, jobs))
    assert {status for status, _ in results} <= {200, 201, 422}, results
    with pg_app.app_context():
        for friend in friends:
            rows = db.session.scalars(
                select(Referral).where(Referral.friend_customer_id == friend)
            ).all()
            assert len(rows) == 1, friend
            member = db.session.scalars(select(Member).where(Member.customer_id == friend)).one()
            if rows[0].status in ("claimed", "review") and rows[0].order_id is None:
                assert member.referral_check  # its next order will look


def test_two_members_who_referred_each_other_order_at_once(pg_app, pg_keys):
    """Ana claimed through Bob's code and Bob through Ana's; their first orders arrive at once.
    Each order locks its buyer and then the referrer — the other buyer — so the two
    transactions can deadlock in PostgreSQL; the loser is retried, not answered with a 500."""
    client = pg_app.test_client()
    admin, storefront = pg_keys["admin"], pg_keys["storefront"]
    pairs = [(f"ana{i}", f"bob{i}") for i in range(6)]
    for ana, bob in pairs:
        enroll(client, admin, ana, f"{ana}@example.com")
        enroll(client, admin, bob, f"{bob}@example.com")
        for friend, referrer in ((ana, bob), (bob, ana)):
            code = code_of(client, storefront, referrer)
            body = {"code": code, "email": f"{friend}@example.com", "customer_id": friend,
                    "ip": new_ip()}  # fmt: skip
            response = client.post("/v1/referrals/claim", json=body, headers=storefront)
            assert response.status_code == 201, response.get_json()
    events = [f.paid(who, email=f"{who}@example.com") for pair in pairs for who in pair]

    def send(event):
        response = pg_app.test_client().post("/v1/events", json=event, headers=storefront)
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        results = list(pool.map(send, events))
    assert [status for status, _ in results] == [200] * len(events), results
    converted = [e for _, body in results for e in body["effects"]
                 if e["kind"] == "referral" and e["status"] == "converted"]  # fmt: skip
    assert len(converted) == len(events)
    with pg_app.app_context():
        statuses = db.session.scalars(select(Referral.status)).all()
        assert statuses == ["converted"] * len(events)
        assert find_drift(db.session) == []
