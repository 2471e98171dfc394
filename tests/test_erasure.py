"""Erasure leaves no copy of the member's email, name or customer id anywhere in the database
(stored answers, idempotent replies, outboxes, audit log, referrals, orders, codes, purchases),
and the export shows everything held about them first."""

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select, update

from loyalty.email.models import EmailMessage
from loyalty.orders.models import ProcessedEvent
from loyalty.webhooks.service import EVENT_TYPES
from tests import factories as f
from tests.dump import found_in_database
from tests.email.smtp import free_port, mail_channel
from tests.giftcards import fake_stripe
from tests.giftcards.conftest import configure_stripe
from tests.referrals import helpers as referrals
from tests.rewards.helpers import make_reward

CUSTOMER_ID = "cust-Qx7Zebulon"
EMAIL = "Zebulon.Quaxworth+Loyal@Example.org"
MAILBOX = "zebulon.quaxworth@example.org"
NAME = "Zebulon Quaxworth"
PERSONAL = (CUSTOMER_ID, EMAIL, MAILBOX, NAME)
IP, USER_AGENT = "203.0.113.5", "ZebBrowser/7.1"  # the share link's click and the claim's


@pytest.fixture
def stripe_api(app):
    before = {k: app.config[k] for k in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS",
                                         "STRIPE_API_BASE")}  # fmt: skip
    with fake_stripe.FakeStripe() as fake:
        configure_stripe(app, fake.url)
        yield fake
    app.config.update(before)
    app.extensions.pop("giftcards.gateway", None)


def keyed(headers, key):
    return {**headers, "Idempotency-Key": key}


def ok(response, status=(200, 201)):
    assert response.status_code in (status if isinstance(status, tuple) else (status,)), (
        response.get_json()
    )
    return response


def the_members_whole_life(client, admin, storefront, stripe_api):
    """Every place the member's data goes: referred as a friend, enrolled, orders, points,
    a redemption, referring a friend, a widget token, a bought gift card; each with a key
    where the API takes one, and webhooks listening to everything."""
    created = client.post(
        "/v1/webhook-endpoints",
        headers=admin,
        json={"url": "http://127.0.0.1:9/hook", "events": list(EVENT_TYPES)},
    )
    ok(created, 201)  # fmt: skip
    referrals.enroll(client, admin, "referrer-1", name="Ruth Referrer")
    their_code = referrals.code_of(client, admin, "referrer-1")
    followed = client.get(f"/r/{their_code}", environ_base={"REMOTE_ADDR": IP},
                          headers={"User-Agent": USER_AGENT})  # fmt: skip
    assert followed.status_code == 302
    click = parse_qs(urlsplit(followed.headers["Location"]).query)["click"][0]
    claimed = referrals.claim(client, keyed(storefront, "claim-1"), their_code, EMAIL,
                              customer_id=CUSTOMER_ID, ip=IP, click=click)  # fmt: skip
    assert ok(claimed, 201).get_json()["status"] == "claimed"

    enrolled = client.post("/v1/members", headers=keyed(admin, "enrol-1"),
                           json={"id": CUSTOMER_ID, "email": EMAIL, "name": NAME,
                                 "birthday": "02-29"})  # fmt: skip
    assert ok(enrolled, 201).get_json()["email"] == EMAIL
    paid = f.paid(CUSTOMER_ID, email=EMAIL, name=NAME, lines=[f.line(unit_price=60000)])
    answer = ok(client.post("/v1/events", json=paid, headers=storefront)).get_json()
    assert answer["member"]["name"] == NAME
    assert [e["status"] for e in referrals.referral_effects(answer)] == ["converted"]
    ok(client.post(f"/v1/members/{CUSTOMER_ID}/adjustments", headers=keyed(admin, "adj-1"),
                   json={"points": 1000, "reason": "goodwill"}), 201)  # fmt: skip
    reward = make_reward(client, admin)
    redeemed = client.post(
        f"/v1/members/{CUSTOMER_ID}/redemptions",
        headers=keyed(storefront, "redeem-1"),
        json={"reward_id": reward["id"]},
    )
    ok(redeemed, 201)  # fmt: skip

    # Now as a referrer: a friend claims the member's code and pays.
    my_code = referrals.code_of(client, admin, CUSTOMER_ID)
    ok(referrals.claim(client, storefront, my_code, "fiona@example.net", customer_id="friend-1"),
       201)  # fmt: skip
    friend_paid = f.paid("friend-1", email="fiona@example.net", lines=[f.line(unit_price=50000)])
    friend_answer = ok(client.post("/v1/events", json=friend_paid, headers=storefront)).get_json()
    [converted] = referrals.referral_effects(friend_answer)
    assert converted["referrer_id"] == CUSTOMER_ID

    ok(client.post("/v1/widget-tokens", headers=keyed(storefront, "widget-1"),
                   json={"customer_id": CUSTOMER_ID}))  # fmt: skip
    checkout = client.post("/v1/gift-cards/checkout-sessions", headers=keyed(storefront, "gc-1"),
                           json={"amount": 5000, "currency": "USD", "purchaser_email": EMAIL,
                                 "recipient_email": "someone@example.net",
                                 "success_url": "https://shop.example.com/thanks",
                                 "cancel_url": "https://shop.example.com/cart"})  # fmt: skip
    assert ok(checkout, 201).get_json()["session_id"]
    return {"enrolled": enrolled.get_json(), "paid": paid, "answer": answer,
            "friend_paid": friend_paid, "friend_answer": friend_answer}  # fmt: skip


def test_export_shows_everything_held_about_the_member(client, admin, storefront, stripe_api):
    life = the_members_whole_life(client, admin, storefront, stripe_api)
    assert client.get(f"/v1/members/{CUSTOMER_ID}/export", headers=storefront).status_code == 403
    response = client.get(f"/v1/members/{CUSTOMER_ID}/export", headers=admin)
    assert response.status_code == 200, response.get_json()
    export = response.get_json()
    assert export["profile"]["email"] == EMAIL and export["profile"]["name"] == NAME
    assert export["profile"]["birthday"] == "02-29"
    kinds = sorted(entry["kind"] for entry in export["ledger"])
    assert kinds == ["adjust", "earn", "redeem", "referral"]  # referral: their friend paid
    assert [o["id"] for o in export["orders"]] == [life["paid"]["order"]["id"]]
    assert export["orders"][0]["attributes"]["name"] == NAME
    codes = {code["source"]["type"]: code for code in export["codes"]}
    assert set(codes) == {"redemption", "referral"}  # theirs, and their reward as a friend
    assert codes["referral"]["email"] == MAILBOX
    [as_friend] = export["referrals"]["as_friend"]
    assert as_friend["friend"] == {"email": MAILBOX, "customer_id": CUSTOMER_ID, "name": None}
    assert as_friend["ip"] == IP and as_friend["status"] == "converted"
    [referred] = export["referrals"]["referred"]
    assert referred["friend"]["email"] == "f***@example.net"  # the friend's data stays theirs
    assert export["referrals"]["code"] == referrals.code_of(client, admin, CUSTOMER_ID)
    [purchase] = export["gift_card_purchases"]
    assert purchase["purchaser_email"] == EMAIL and purchase["amount"] == 5000
    assert export["tier_history"] == []
    assert export["emails"] == []  # the email channel is off here
    assert client.get("/v1/members/nobody/export", headers=admin).status_code == 404


@pytest.fixture
def email_channel(app):
    """The built-in email channel on (nothing is sent: the job does not run)."""
    with mail_channel(app, free_port()):
        yield


def test_erasure_leaves_no_copy_anywhere_in_the_database(
    client, admin, storefront, stripe_api, session, email_channel
):
    life = the_members_whole_life(client, admin, storefront, stripe_api)
    assert found_in_database(*PERSONAL) == list(PERSONAL)  # the search does find them
    to_them = select(func.count()).where(EmailMessage.to_address == EMAIL)
    assert session.scalar(to_them) >= 3  # welcome, points earned, referral reward

    assert found_in_database(IP, USER_AGENT) == [IP, USER_AGENT]

    assert client.delete(f"/v1/members/{CUSTOMER_ID}", headers=admin).status_code == 204
    assert found_in_database(*PERSONAL) == []
    assert session.scalar(to_them) == 0  # the queued emails are gone, not only redacted
    # Nor their address (the per-address cap's key, the click) or their browser's name.
    assert found_in_database(IP, USER_AGENT) == []
    # The others are untouched.
    assert found_in_database("referrer-1", "Ruth Referrer", "friend-1", "fiona@example.net") == [
        "referrer-1", "Ruth Referrer", "friend-1", "fiona@example.net",
    ]  # fmt: skip

    # Replays answer as before, with the member redacted (the documented shape).
    replay = ok(client.post("/v1/events", json=life["paid"], headers=storefront)).get_json()
    assert replay["duplicate"] is True and replay["member"] is None
    assert replay["effects"] == life["answer"]["effects"]
    friend = ok(client.post("/v1/events", json=life["friend_paid"], headers=storefront)).get_json()
    [converted] = referrals.referral_effects(friend)
    assert converted["referrer_id"] is None
    assert friend["member"] == life["friend_answer"]["member"]  # the friend is still there
    enrolled = client.post("/v1/members", headers=keyed(admin, "enrol-1"),
                           json={"id": CUSTOMER_ID, "email": EMAIL, "name": NAME,
                                 "birthday": "02-29"})  # fmt: skip
    assert enrolled.status_code == 201 and enrolled.headers["Idempotent-Replayed"] == "true"
    body = enrolled.get_json()
    assert (body["id"], body["email"], body["name"], body["birthday"]) == (None,) * 4
    assert body["points"] == life["enrolled"]["points"]
    assert found_in_database(*PERSONAL) == []  # replaying wrote nothing back


def test_erasure_finds_answers_stored_before_events_kept_their_order_and_guest_orders(
    client, admin, storefront, session
):
    ok(client.post("/v1/members", headers=admin,
                   json={"id": CUSTOMER_ID, "email": EMAIL, "name": NAME}), 201)  # fmt: skip
    old = f.paid(CUSTOMER_ID, email=EMAIL)
    ok(client.post("/v1/events", json=old, headers=storefront))
    # As a row written before `order_id` was kept.
    session.execute(update(ProcessedEvent).values(order_id=None))
    # A guest checkout from their mailbox (not enrolled: another account would be another's).
    ok(client.put("/v1/program", json={"auto_enroll": False}, headers=admin))
    guest = f.paid("guest-77", email=EMAIL.upper())
    ok(client.post("/v1/events", json=guest, headers=storefront))

    assert client.delete(f"/v1/members/{CUSTOMER_ID}", headers=admin).status_code == 204

    assert found_in_database(*PERSONAL) == []
    replay = ok(client.post("/v1/events", json=old, headers=storefront)).get_json()
    assert replay["member"] is None and replay["duplicate"] is True
    # The guest's order keeps its own customer id, not the member's mailbox.
    assert found_in_database("guest-77") == ["guest-77"]
