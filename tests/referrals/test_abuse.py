"""Ways around the referral rules, each closed: lookalike emails and names, other spellings of
one IP address, a missing IP, orders with no real spend, refunds that leave next to nothing,
rewards that would mature before a refund can reach them, and share links hammered by one
client."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from loyalty.extensions import db
from referrals import links, service
from referrals.models import ReferralClick
from rewards.catalog.models import RewardCode
from tests import factories as f
from tests.referrals.helpers import (
    claim,
    code_of,
    enroll,
    new_ip,
    order,
    points,
    referral_effects,
    run_job,
    settings,
    stats,
    verify_ledger,
)
from tests.rewards.helpers import make_reward, redeem


def ana(client, admin, storefront):
    enroll(client, admin, "ana", "ana@gmail.com", name="Ana Smith")
    return code_of(client, storefront, "ana")


def refused(response, reason):
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert (body["type"], body.get("reason")) == ("referral-rejected", reason)
    return body


def reviewed(client, admin, response, flag):
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["status"], body["friend_reward"]) == ("review", None)
    item = client.get(f"/v1/referrals/{body['referral_id']}", headers=admin).get_json()
    assert flag in item["flags"]
    return item


# --- lookalike emails and names ---------------------------------------------------------------

IDENTITY_BYPASSES = [
    pytest.param({"email": "аna@gmail.com"}, "review", "confusable_email", id="cyrillic-a-email"),
    pytest.param({"email": "ana@ｇmail.com"}, "refused", "self_referral", id="full-width-g-email"),
    pytest.param({"email": "ANA@GMAİL.COM"}, "review", "confusable_email", id="dotted-i-email"),
    pytest.param(
        {"email": "x@example.com", "name": "Аna Smith"},
        "review",
        "confusable_name",
        id="cyrillic-a-name",
    ),  # fmt: skip
    pytest.param(
        {"email": "x@example.com", "name": "Ａｎａ Ｓｍｉｔｈ"},
        "refused",
        "self_referral",
        id="full-width-name",
    ),  # fmt: skip
    pytest.param(
        {"email": "x@example.com", "name": "ANA SMİTH"},
        "review",
        "confusable_name",
        id="dotted-i-name",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("friend", "outcome", "reason"), IDENTITY_BYPASSES)
def test_lookalike_of_the_referrer_is_refused_or_reviewed(
    client, admin, storefront, friend, outcome, reason
):
    code = ana(client, admin, storefront)
    friend = dict(friend)
    response = claim(client, storefront, code, friend.pop("email"), **friend)
    if outcome == "refused":
        refused(response, reason)
    else:
        reviewed(client, admin, response, reason)
    # Near miss: someone else, spelled plainly, is an ordinary claim.
    near = claim(client, storefront, code, "bea@gmail.com", name="Bea Jones")
    assert near.get_json()["status"] == "claimed", near.get_json()


def test_lookalike_email_on_an_order_waits_for_review(client, admin, storefront):
    code = ana(client, admin, storefront)
    _, body = order(client, storefront, "bea", email="аna@gmail.com", referral_code=code)
    [effect] = referral_effects(body)
    assert effect["status"] == "review"
    assert points(client, storefront, "ana")["pending"] == 0


def test_full_width_spelling_is_one_mailbox_for_not_new_customer(client, admin, storefront):
    code = ana(client, admin, storefront)
    order(client, storefront, "bea", email="bea@example.com", days_ago=10)
    refused(claim(client, storefront, code, "ＢＥＡ@ｅｘａｍｐｌｅ.com"), "not_new_customer")


# --- one IP address, many spellings -----------------------------------------------------------

IP_BYPASSES = [
    pytest.param("203.0.113.9", "::ffff:203.0.113.9", "limit_reached", id="ipv4-mapped"),
    pytest.param("203.0.113.9", "::ffff:cb00:7109", "limit_reached", id="ipv4-mapped-hex"),
    pytest.param("203.0.113.9", "203.0.113.09", "invalid", id="leading-zero"),
    pytest.param("203.0.113.9", "203.0.113.9:443", "invalid", id="port"),
    pytest.param("203.0.113.9", "3405803785", "invalid", id="integer-form"),
    pytest.param(
        "2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", "limit_reached", id="long-ipv6"
    ),  # fmt: skip
    pytest.param("2001:db8::1", "2001:db8::beef:1", "limit_reached", id="same-ipv6-64"),
]


@pytest.mark.parametrize(("first", "spelling", "outcome"), IP_BYPASSES)
def test_another_spelling_of_one_address_counts_against_the_ip_cap(
    client, admin, storefront, first, spelling, outcome
):
    code = ana(client, admin, storefront)
    settings(client, admin, max_claims_per_ip_7d=1)
    assert claim(client, storefront, code, "bea@example.com", ip=first).status_code == 201
    response = claim(client, storefront, code, "cleo@example.com", ip=spelling)
    if outcome == "invalid":
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["type"] == "validation-error"
        assert "ip" in response.get_json()["errors"]
    else:
        refused(response, outcome)
    # Near miss: another client is not capped.
    near = claim(client, storefront, code, "dan@example.com", ip="2001:db8:0:1::1")
    assert near.status_code == 201, near.get_json()


@pytest.mark.parametrize(
    ("referrer_ip", "friend_ip"),
    [("203.0.113.5", "::ffff:203.0.113.5"), ("2001:db8::5", "2001:db8::abcd:1")],
)
def test_the_referrers_own_client_spelled_otherwise_waits_for_review(
    client, admin, storefront, referrer_ip, friend_ip
):
    code = ana(client, admin, storefront)
    order(client, storefront, "ana", email="ana@gmail.com", days_ago=20, ip=referrer_ip)
    response = claim(client, storefront, code, "bea@example.com", ip=friend_ip)
    reviewed(client, admin, response, "same_ip_as_referrer")
    near = claim(client, storefront, code, "cleo@example.com", ip="2001:db8:0:9::5")
    assert near.get_json()["status"] == "claimed", near.get_json()


def test_an_order_from_another_spelling_of_a_claimed_ip_is_capped(client, admin, storefront):
    code = ana(client, admin, storefront)
    settings(client, admin, max_claims_per_ip_7d=1)
    assert claim(client, storefront, code, "bea@example.com", ip="203.0.113.9").status_code == 201
    _, body = order(client, storefront, "cleo", referral_code=code, ip="::FFFF:203.0.113.9")
    [effect] = referral_effects(body)
    assert (effect["status"], effect["reason"]) == ("rejected", "limit_reached")


def test_an_order_ip_that_is_not_an_address_is_refused(client, storefront):
    event = f.paid("bea", ip="203.0.113.9:80")
    response = client.post("/v1/events", json=event, headers=storefront)
    assert response.status_code == 422, response.get_json()
    assert "ip" in response.get_json()["errors"]["order"]


# --- a missing IP -----------------------------------------------------------------------------


def test_a_claim_without_ip_waits_for_review_by_default(client, admin, storefront):
    code = ana(client, admin, storefront)
    reviewed(client, admin, claim(client, storefront, code, "bea@example.com", ip=None),
             "missing_ip")  # fmt: skip


def test_a_claim_without_ip_is_refused_when_the_program_says_so(client, admin, storefront):
    code = ana(client, admin, storefront)
    assert settings(client, admin, missing_ip="refuse")["missing_ip"] == "refuse"
    refused(claim(client, storefront, code, "bea@example.com", ip=None), "missing_ip")
    near = claim(client, storefront, code, "bea@example.com", ip="198.51.100.4")
    assert near.get_json()["status"] == "claimed", near.get_json()


@pytest.mark.parametrize(("policy", "status"), [("review", "review"), ("refuse", "rejected")])
def test_an_order_code_without_ip_follows_the_policy(client, admin, storefront, policy, status):
    code = ana(client, admin, storefront)
    settings(client, admin, missing_ip=policy)
    _, body = order(client, storefront, "bea", referral_code=code, ip=None)
    [effect] = referral_effects(body)
    assert effect["status"] == status
    assert points(client, storefront, "ana")["pending"] == 0


def test_a_claimed_referral_converts_on_an_order_without_ip(client, admin, storefront):
    """The claim's IP was counted; the order that converts it needs none of its own."""
    code = ana(client, admin, storefront)
    assert claim(client, storefront, code, "bea@example.com").get_json()["status"] == "claimed"
    _, body = order(client, storefront, "bea", email="bea@example.com", ip=None)
    assert referral_effects(body)[0]["status"] == "converted"


# --- minimum net eligible spend ---------------------------------------------------------------


def pay(client, storefront, customer_id, lines, **extra):
    event = f.paid(customer_id, lines=lines, email=f"{customer_id}@example.com",
                   ip=new_ip(), **extra)  # fmt: skip
    response = client.post("/v1/events", json=event, headers=storefront)
    assert response.status_code == 200, response.get_json()
    return event, response.get_json()


@pytest.mark.parametrize(
    ("minimum", "lines", "extra"),
    [
        pytest.param(1, [f.line(unit_price=0)], {}, id="zero"),
        pytest.param(1, [f.line(unit_price=5000, gift_card=True)], {}, id="gift-card-only"),
        pytest.param(100, [f.line(unit_price=1)], {}, id="one-cent"),
        pytest.param(
            2000,
            [f.line(unit_price=1500)],
            {"shipping": 1000, "tax": 500},
            id="shipping-and-tax-do-not-count",
        ),  # fmt: skip
        pytest.param(2000, [f.line(unit_price=2500, discount=600)], {}, id="after-discount"),
    ],
)
def test_a_first_order_below_the_minimum_does_not_convert(
    client, admin, storefront, minimum, lines, extra
):
    code = ana(client, admin, storefront)
    settings(client, admin, min_order_amount=minimum)
    assert claim(client, storefront, code, "bea@example.com").status_code == 201
    _, body = pay(client, storefront, "bea", lines, **extra)
    [effect] = referral_effects(body)
    assert (effect["status"], effect["reason"]) == ("rejected", "order_below_minimum")
    # The same on an order that carries the code without a claim.
    _, body = pay(client, storefront, "cleo", lines, referral_code=code, **extra)
    assert referral_effects(body)[0]["reason"] == "order_below_minimum"
    assert points(client, storefront, "ana") == {"available": 0, "pending": 0,
                                                 "lifetime_earned": 0}  # fmt: skip
    # Near miss: exactly the minimum converts.
    _, body = pay(client, storefront, "dan", [f.line(unit_price=minimum)], referral_code=code)
    assert referral_effects(body)[0]["status"] == "converted"


def refund(client, storefront, event, amount, customer_id="bea", occurred_at=None):
    body = f.refunded(event["order"]["id"], customer_id, amount=amount, occurred_at=occurred_at)
    response = client.post("/v1/events", json=body, headers=storefront)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def friend_code_status(referral_id):
    return db.session.scalar(
        select(RewardCode.status).where(
            RewardCode.source_type == service.SOURCE, RewardCode.source_id == str(referral_id)
        )
    )


def test_a_refund_below_the_minimum_reverses_both_rewards(client, admin, storefront, runner):
    code = ana(client, admin, storefront)
    settings(client, admin, min_order_amount=2000)
    claimed = claim(client, storefront, code, "bea@example.com").get_json()
    event, body = order(client, storefront, "bea", email="bea@example.com", amount=10000)
    assert referral_effects(body)[0]["status"] == "converted"
    assert points(client, storefront, "ana")["pending"] == 500
    # Near miss: 80.00 of 100.00 back leaves 20.00, the minimum: the rewards stay.
    assert referral_effects(refund(client, storefront, event, 8000)) == []
    assert points(client, storefront, "ana")["pending"] == 500
    assert friend_code_status(claimed["referral_id"]) == "issued"
    # One more cent back and the order no longer qualifies.
    [effect] = referral_effects(refund(client, storefront, event, 1))
    assert (effect["status"], effect["reward"]["state"], effect["friend_reward"]) == (
        "reward_canceled", "canceled", "canceled",
    )  # fmt: skip
    assert friend_code_status(claimed["referral_id"]) == "canceled"
    assert points(client, storefront, "ana") == {"available": 0, "pending": 0,
                                                 "lifetime_earned": 0}  # fmt: skip
    activity = client.get("/v1/members/ana/activity", headers=storefront).get_json()["items"]
    assert [(e["kind"], e["points"]) for e in activity] == [("reversal", -500), ("referral", 500)]
    run_job(runner, "mature-points", datetime.now(UTC) + timedelta(days=60))
    assert points(client, storefront, "ana")["available"] == 0
    assert stats(client, storefront, "ana")["items"][0]["reward"]["state"] == "canceled"
    verify_ledger(runner)


def test_a_refund_below_the_minimum_claws_back_a_reward_already_spent(
    client, admin, storefront, runner
):
    """Points a job matured early (a run with a later --now) and that Ana spent are taken back
    as a clawback: her balance goes below zero rather than the reward staying."""
    code = ana(client, admin, storefront)
    settings(client, admin, min_order_amount=2000)
    assert claim(client, storefront, code, "bea@example.com").status_code == 201
    event, _ = order(client, storefront, "bea", email="bea@example.com", days_ago=0)
    run_job(runner, "mature-points", datetime.now(UTC) + timedelta(days=40))
    assert points(client, storefront, "ana")["available"] == 500
    reward = make_reward(client, admin, points_cost=500)
    assert redeem(client, storefront, "ana", reward["id"]).status_code == 201
    assert points(client, storefront, "ana")["available"] == 0
    [effect] = referral_effects(refund(client, storefront, event, 3001))  # 19.99 left
    assert effect["status"] == "reward_canceled"
    assert points(client, storefront, "ana") == {"available": -500, "pending": 0,
                                                 "lifetime_earned": 0}  # fmt: skip
    activity = client.get("/v1/members/ana/activity", headers=storefront).get_json()["items"]
    assert activity[0]["kind"] == "clawback" and activity[0]["points"] == -500
    verify_ledger(runner)


def test_a_refund_of_an_order_in_review_below_the_minimum_rejects_it(client, admin, storefront):
    code = ana(client, admin, storefront)
    settings(client, admin, min_order_amount=3000)
    claimed = claim(client, storefront, code, "bea@example.com", ip=None).get_json()
    assert claimed["status"] == "review"
    event, body = order(client, storefront, "bea", email="bea@example.com", amount=5000)
    assert referral_effects(body)[0]["status"] == "review"
    [effect] = referral_effects(refund(client, storefront, event, 2001))
    assert (effect["status"], effect["reason"]) == ("rejected", "order_refunded")


# --- the referrer's reward is held even when points mature at once ----------------------------


def test_with_pending_days_zero_the_reward_is_still_held(client, admin, storefront, runner):
    assert client.put("/v1/program", json={"pending_days": 0}, headers=admin).status_code == 200
    code = ana(client, admin, storefront)
    assert claim(client, storefront, code, "bea@example.com").status_code == 201
    event, body = order(client, storefront, "bea", email="bea@example.com", days_ago=0)
    [effect] = referral_effects(body)
    assert effect["reward"]["state"] == "pending"
    occurred = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(effect["reward"]["matures_at"]) == occurred + timedelta(days=14)
    assert points(client, storefront, "ana") == {"available": 0, "pending": 500,
                                                 "lifetime_earned": 500}  # fmt: skip
    assert points(client, storefront, "bea")["available"] == 50  # order points: at once
    # A full refund in the same minute takes the reward back.
    [effect] = referral_effects(refund(client, storefront, event, 5000))
    assert effect["status"] == "reward_canceled"
    assert points(client, storefront, "ana") == {"available": 0, "pending": 0,
                                                 "lifetime_earned": 0}  # fmt: skip
    verify_ledger(runner)


def test_a_held_reward_matures_when_its_hold_has_passed(client, admin, storefront, runner):
    client.put("/v1/program", json={"pending_days": 0}, headers=admin)
    code = ana(client, admin, storefront)
    settings(client, admin, reward_hold_days=3)
    assert claim(client, storefront, code, "bea@example.com").status_code == 201
    event, _ = order(client, storefront, "bea", email="bea@example.com", days_ago=0)
    occurred = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
    run_job(runner, "mature-points", occurred + timedelta(days=2))
    assert points(client, storefront, "ana")["pending"] == 500
    run_job(runner, "mature-points", occurred + timedelta(days=3, seconds=1))
    assert points(client, storefront, "ana") == {"available": 500, "pending": 0,
                                                 "lifetime_earned": 500}  # fmt: skip
    verify_ledger(runner)


# --- share link clicks ------------------------------------------------------------------------


def clicks():
    return db.session.scalars(select(ReferralClick).order_by(ReferralClick.id)).all()


def click_id(location, code):
    """The click a landing URL's signed token names."""
    token = parse_qs(urlsplit(location).query)["click"][0]
    return links.read_click(token, code, 3600)


def visit(client, code, ip, **headers):
    return client.get(f"/r/{code}", environ_base={"REMOTE_ADDR": ip}, headers=headers)


def test_repeat_visits_of_one_client_are_one_click(client, admin, storefront):
    code = ana(client, admin, storefront)
    named = set()
    for _ in range(20):
        response = visit(client, code, "203.0.113.9", **{"User-Agent": "b" * 2000})
        assert response.status_code == 302
        named.add(click_id(response.headers["Location"], code))
    [click] = clicks()
    assert named == {click.id}  # every visit carries the one click's token
    assert (click.ip, len(click.user_agent)) == ("203.0.113.9", 300)
    # The same client spelled otherwise, or another address of one IPv6 /64: the same click.
    assert visit(client, code, "::ffff:203.0.113.9").status_code == 302
    assert visit(client, code, "2001:db8::1").status_code == 302
    assert visit(client, code, "2001:db8::2").status_code == 302
    # Near miss: other clients are clicks of their own.
    assert visit(client, code, "198.51.100.1").status_code == 302
    assert [c.ip for c in clicks()] == ["203.0.113.9", "2001:db8::1", "198.51.100.1"]
    assert stats(client, storefront, "ana")["clicks"] == 3


def test_a_click_counts_again_in_the_next_window(client, admin, storefront):
    code = ana(client, admin, storefront)
    start = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # a window boundary for 60 s windows
    urls = [
        service.follow_link(db.session, code, "203.0.113.9", None, dedup_seconds=60, now=at)
        for at in (start, start + timedelta(seconds=59), start + timedelta(seconds=60))
    ]
    ids = [click_id(url, code) for url in urls]
    assert ids[0] == ids[1] != ids[2]
    assert len(clicks()) == 2
    service.follow_link(db.session, code, "203.0.113.9", None, dedup_seconds=0, now=start)
    assert len(clicks()) == 3  # 0: every visit is recorded


def test_share_links_are_rate_limited_per_client(client, admin, storefront, app, monkeypatch):
    code = ana(client, admin, storefront)
    monkeypatch.setitem(app.config, "REFERRAL_CLICK_RATE_LIMIT", "3/minute")
    for ip in ("203.0.113.9", "::ffff:203.0.113.9", "203.0.113.9"):
        assert visit(client, code, ip).status_code == 302
    limited = visit(client, code, "203.0.113.9")
    assert limited.status_code == 429
    assert limited.get_json()["type"] == "rate-limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert visit(client, "NOSUCHCD", "203.0.113.9").status_code == 429  # scanning codes too
    assert visit(client, code, "198.51.100.1").status_code == 302  # another client
    assert db.session.scalar(select(func.count()).select_from(ReferralClick)) == 2


def test_approving_an_order_below_a_raised_minimum_is_a_conflict(client, admin, storefront):
    code = ana(client, admin, storefront)
    claimed = claim(client, storefront, code, "bea@example.com", ip=None).get_json()
    order(client, storefront, "bea", email="bea@example.com", amount=3000)
    settings(client, admin, min_order_amount=3001)
    response = client.post(f"/v1/referrals/{claimed['referral_id']}/approve", headers=admin)
    assert response.status_code == 409, response.get_json()
    assert points(client, storefront, "ana")["pending"] == 0
    settings(client, admin, min_order_amount=3000)  # near miss: exactly the minimum
    response = client.post(f"/v1/referrals/{claimed['referral_id']}/approve", headers=admin)
    assert response.get_json()["status"] == "converted"
    assert points(client, storefront, "ana")["pending"] == 500
