"""Order events in a batch that reach a referrer: each answer is the one the single endpoint
would have given at that point of the batch."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from referrals.models import ReferralCode
from tests import factories as f
from tests.referrals.helpers import claim, code_of, enroll, follow, points, referral_effects


def _ana_refers_bea(client, admin, storefront):
    """Ana enrolled, Bea's claim of Ana's share code recorded: when their orders were paid."""
    enroll(client, admin, "ana", "ana@example.com", name="Ana Lopez")
    code = code_of(client, storefront, "ana")
    ref, click = follow(client, code)
    assert claim(client, storefront, ref, "bea@example.com", click=click).status_code == 201
    return datetime.now(UTC) - timedelta(days=1)


@pytest.mark.parametrize("fast", [True, False])
def test_a_referrer_s_answer_comes_before_the_reward_a_later_event_gives_them(
    app, client, admin, storefront, fast, monkeypatch
):
    monkeypatch.setitem(app.config, "EVENT_BATCH_FAST_PATH", fast)  # restored: the app is shared
    at = _ana_refers_bea(client, admin, storefront)
    ana = f.paid("ana", lines=[f.line(unit_price=5000)], occurred_at=at)
    bea = f.paid("bea", lines=[f.line(unit_price=5000)], occurred_at=at, email="bea@example.com")
    response = client.post("/v1/events/batch", json={"events": [ana, bea]}, headers=storefront)
    assert response.status_code == 200, response.get_json()
    first, second = response.get_json()["results"]
    [effect] = referral_effects(second["body"])
    assert effect["status"] == "converted"
    # Ana's answer is hers after her order, before Bea's order rewards her (500 pending).
    assert first["body"]["member"]["points"] == {
        "available": 0, "pending": 50, "lifetime_earned": 50,
    }  # fmt: skip
    assert points(client, storefront, "ana")["pending"] == 550
    # The single endpoint replays the batch's answers as its own.
    again = client.post("/v1/events", json=ana, headers=storefront).get_json()
    assert again == {**first["body"], "duplicate": True}


@pytest.mark.parametrize("fast", [True, False])
def test_a_referrer_s_order_after_the_reward_in_one_batch_starts_from_it(
    app, client, admin, storefront, fast, monkeypatch
):
    monkeypatch.setitem(app.config, "EVENT_BATCH_FAST_PATH", fast)  # restored: the app is shared
    at = _ana_refers_bea(client, admin, storefront)
    bea = f.paid("bea", lines=[f.line(unit_price=5000)], occurred_at=at, email="bea@example.com")
    ana = f.paid("ana", lines=[f.line(unit_price=5000)], occurred_at=at)
    response = client.post("/v1/events/batch", json={"events": [bea, ana]}, headers=storefront)
    assert response.status_code == 200, response.get_json()
    first, second = response.get_json()["results"]
    assert referral_effects(first["body"])[0]["status"] == "converted"
    # Ana's order comes after Bea's rewarded her: her answer shows both.
    assert second["body"]["member"]["points"] == {
        "available": 0, "pending": 550, "lifetime_earned": 550,
    }  # fmt: skip
    assert points(client, storefront, "ana")["pending"] == 550


def test_customers_enrolled_by_one_batch_each_get_a_share_code(client, storefront, session):
    events = [f.paid(f"new_{n}", lines=[f.line(unit_price=1000)]) for n in range(30)]
    response = client.post("/v1/events/batch", json={"events": events}, headers=storefront)
    assert response.status_code == 200, response.get_json()
    codes = [r["body"]["member"]["referral"]["code"] for r in response.get_json()["results"]]
    assert all(codes) and len(set(codes)) == 30
    assert session.scalar(select(func.count()).select_from(ReferralCode)) == 30


def test_new_members_of_a_batch_whose_code_was_drawn_before_draw_again(
    client, storefront, session, monkeypatch
):
    """The batch's new members get their share codes in one INSERT; one whose code is taken
    already is drawn again in the next."""
    from referrals import service

    draws = iter(["TAKEN111", "TAKEN111", "FRESH222", "FRESH333"])
    monkeypatch.setattr(service, "random_code", lambda _length: next(draws))
    single = client.post("/v1/events", json=f.paid("c_code0"), headers=storefront)
    assert single.get_json()["member"]["referral"]["code"] == "TAKEN111"
    events = [f.paid("c_code1"), f.paid("c_code2")]
    response = client.post("/v1/events/batch", json={"events": events}, headers=storefront)
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == [200, 200]
    codes = [r["body"]["member"]["referral"]["code"] for r in results]
    assert sorted(codes) == ["FRESH222", "FRESH333"]
    assert session.scalar(select(func.count()).select_from(ReferralCode)) == 3


def test_a_group_clears_the_mark_of_buyers_no_referral_names(client, storefront, session):
    """New members are marked (a claim may have named them before they joined); a group's
    orders whose buyer no referral names clear the mark, as the single path does, so their
    next orders need not look."""
    from loyalty.members.models import Member

    events = [f.paid("c_mark1", email="m1@example.com"), f.paid("c_mark2", email="m2@example.com")]
    response = client.post("/v1/events/batch", json={"events": events}, headers=storefront)
    assert [r["status"] for r in response.get_json()["results"]] == [200, 200]
    session.expire_all()
    marks = session.scalars(select(Member.referral_check).where(Member.customer_id.like("c_mark%")))
    assert list(marks) == [False, False]
