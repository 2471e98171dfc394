"""The built-in email channel: messages queued in the transaction of the change, sent by the
`send-emails` job through a real SMTP server on 127.0.0.1, with retries, unsubscribe links
honoured by every message but a gift card's delivery."""

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from loyalty.email.models import EmailMessage
from loyalty.members.models import Member
from rewards.giftcards.models import GiftCardPurchase
from tests import factories as f
from tests.email.smtp import PROGRAM, SENDER, SMTPServer, free_port, mail_channel
from tests.giftcards import fake_stripe
from tests.giftcards.conftest import configure_stripe
from tests.referrals import helpers as referrals
from tests.statements import recorded, touching
from tests.tiers.helpers import beauty_insider, post_event
from tests.webhooks.helpers import run_job


def queued(session, template=None) -> list[EmailMessage]:
    session.expire_all()
    query = select(EmailMessage).order_by(EmailMessage.id)
    if template is not None:
        query = query.where(EmailMessage.template == template)
    return list(session.scalars(query))


def enrol(client, admin, customer_id, email):
    response = client.post("/v1/members", json={"id": customer_id, "email": email}, headers=admin)
    assert response.status_code == 201, response.get_json()


def unsubscribe_link(text: str) -> str:
    [link] = re.findall(r"http://\S+/email/unsubscribe/\S+", text)
    return link


def test_welcome_and_points_earned_arrive_with_the_members_numbers(
    client, admin, storefront, runner, smtp, session
):
    enrol(client, admin, "c_mail", "ada@example.com")
    post_event(client, storefront, f.paid("c_mail", lines=[f.line(unit_price=12_345)]))
    assert [m.template for m in queued(session)] == ["welcome", "points_earned"]
    assert smtp.arrived == []  # queued, not sent: the job sends

    run_job(runner, "send-emails")
    welcome, earned = smtp.arrived
    assert (welcome.envelope_to, welcome.to) == (["ada@example.com"], "ada@example.com")
    assert welcome.message["From"] == SENDER
    assert welcome.subject == f"Welcome to {PROGRAM}"
    assert PROGRAM in welcome.text and PROGRAM in welcome.html
    assert earned.subject == f"You earned 123 points at {PROGRAM}"
    assert "You earned 123 points with order" in earned.text
    assert "0 points available, 123 pending" in earned.text  # the member's numbers
    assert "<strong>123</strong>" in earned.html
    # Every non-transactional message: an unsubscribe link, and RFC 8058 one-click headers.
    for message in (welcome, earned):
        link = unsubscribe_link(message.text)
        assert message.message["List-Unsubscribe"] == f"<{link}>"
        assert message.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert f'href="{link}"' in message.html
    assert all(m.sent_at is not None for m in queued(session))
    run_job(runner, "send-emails")
    assert len(smtp.arrived) == 2  # sent once


def test_a_server_that_is_down_is_retried_with_backoff_until_it_is_up(
    app, client, admin, runner, session
):
    port = free_port()
    server = SMTPServer(port)
    with mail_channel(app, port):
        enrol(client, admin, "c_retry", "bo@example.com")
        now = datetime.now(UTC)
        run_job(runner, "send-emails", now)  # nobody listens on the port
        [message] = queued(session)
        assert (message.attempts, message.sent_at, message.gave_up_at) == (1, None, None)
        assert "Connection" in message.last_error or "refused" in message.last_error.lower()
        assert message.next_attempt_at == now + timedelta(seconds=60)

        server.start()
        try:
            run_job(runner, "send-emails", now + timedelta(seconds=30))  # not due yet
            assert server.arrived == []
            run_job(runner, "send-emails", now + timedelta(seconds=61))
            [arrived] = server.arrived
        finally:
            server.stop()
    assert arrived.envelope_to == ["bo@example.com"]
    [message] = queued(session)
    assert (message.attempts, message.last_error) == (2, None)
    assert message.sent_at == now + timedelta(seconds=61)


def test_gives_up_after_the_last_attempt(app, client, admin, runner, session):
    with mail_channel(app, free_port()):
        app.config["EMAIL_MAX_ATTEMPTS"] = 2
        try:
            enrol(client, admin, "c_gone", "cy@example.com")
            now = datetime.now(UTC)
            run_job(runner, "send-emails", now)
            run_job(runner, "send-emails", now + timedelta(hours=1))
            run_job(runner, "send-emails", now + timedelta(hours=2))
        finally:
            app.config["EMAIL_MAX_ATTEMPTS"] = 12
    [message] = queued(session)
    assert message.attempts == 2 and message.gave_up_at is not None


def buy_gift_card(app, client, storefront, recipient):
    with fake_stripe.FakeStripe() as stripe:
        before = {k: app.config[k] for k in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS",
                                             "STRIPE_API_BASE")}  # fmt: skip
        configure_stripe(app, stripe.url)
        try:
            started = client.post(
                "/v1/gift-cards/checkout-sessions",
                json={"amount": 5000, "currency": "USD", "purchaser_email": "buyer@example.com",
                      "recipient_email": recipient,
                      "success_url": "https://shop.example.com/thanks",
                      "cancel_url": "https://shop.example.com/cart"},
                headers=storefront,
            )  # fmt: skip
            assert started.status_code == 201, started.get_json()
            session_id = started.get_json()["session_id"]
            payload = fake_stripe.event(stripe.pay(session_id))
            for _ in range(2):  # Stripe repeats itself: one card, one email
                header = fake_stripe.sign(payload, app.config["STRIPE_WEBHOOK_SECRETS"][-1])
                delivered = client.post("/v1/webhooks/stripe", data=payload, headers={
                    "Stripe-Signature": header, "Content-Type": "application/json"})  # fmt: skip
                assert delivered.status_code == 200, delivered.get_json()
        finally:
            app.config.update(before)
            app.extensions.pop("giftcards.gateway", None)
    return session_id


def test_unsubscribe_stops_every_message_but_a_gift_card_delivered_to_them(
    app, client, admin, storefront, runner, smtp, session
):
    enrol(client, admin, "c_unsub", "di@example.com")
    run_job(runner, "send-emails")
    [welcome] = smtp.arrived
    link = unsubscribe_link(welcome.text)
    path = link.removeprefix(app.config["LOYALTY_PUBLIC_URL"])

    post_event(client, storefront, f.paid("c_unsub", email="di@example.com"))  # queued...
    page = client.get(path)  # the page asks first: a link scanner changes nothing
    assert page.status_code == 200 and b"Unsubscribe</button>" in page.data
    assert session.scalar(select(Member.email_unsubscribed_at)) is None
    done = client.post(path)
    assert done.status_code == 200 and b'data-testid="done"' in done.data
    assert session.scalar(select(Member.email_unsubscribed_at)) is not None

    post_event(client, storefront, f.paid("c_unsub", email="di@example.com"))  # not queued
    assert [m.template for m in queued(session)] == ["welcome", "points_earned"]
    buy_gift_card(app, client, storefront, "di@example.com")  # transactional: still goes
    run_job(runner, "send-emails")

    earned = queued(session, "points_earned")[0]
    assert earned.sent_at is None and earned.last_error == "the member unsubscribed"
    assert earned.gave_up_at is not None
    welcome_again, card = smtp.arrived
    assert card.envelope_to == ["di@example.com"]
    assert card.subject == f"A {PROGRAM} gift card for you"
    assert "List-Unsubscribe" not in card.message and "unsubscribe" not in card.text.lower()


def test_one_click_unsubscribe_and_forged_links(app, client, admin, runner, smtp, session):
    enrol(client, admin, "c_click", "ed@example.com")
    run_job(runner, "send-emails")
    path = unsubscribe_link(smtp.arrived[0].text).removeprefix(app.config["LOYALTY_PUBLIC_URL"])
    # What a mail client sends for List-Unsubscribe-Post (RFC 8058).
    one_click = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    first = session.scalar(select(Member.email_unsubscribed_at))
    assert first is not None
    assert client.post(path).status_code == 200  # again: done, unchanged
    session.expire_all()
    assert session.scalar(select(Member.email_unsubscribed_at)) == first
    forged = path[:-3] + ("abc" if not path.endswith("abc") else "xyz")
    assert client.post(forged).status_code == 404
    assert client.get("/email/unsubscribe/not-a-token").status_code == 404


def test_a_gift_card_goes_to_its_recipient_once_and_its_code_never_rests_in_clear(
    app, client, storefront, runner, smtp, session
):
    session_id = buy_gift_card(app, client, storefront, "gift.friend@example.net")
    [message] = queued(session, "gift_card")
    assert message.transactional and message.member_id is None
    assert message.sealed is not None
    run_job(runner, "send-emails")
    [arrived] = smtp.arrived
    assert arrived.envelope_to == ["gift.friend@example.net"]
    assert "50.00 USD" in arrived.text
    [code] = re.findall(r"Your code: (\S+)", arrived.text)
    assert code in arrived.html
    # The code works, and it is gone from the outbox once sent.
    looked_up = client.post("/v1/gift-cards/lookup", json={"code": code}, headers=storefront)
    assert looked_up.status_code == 200 and looked_up.get_json()["balance"] == 5000
    [message] = queued(session, "gift_card")
    assert message.sealed is None and message.sent_at is not None
    run_job(runner, "send-emails")
    assert len(smtp.arrived) == 1
    purchase = session.scalar(
        select(GiftCardPurchase).where(GiftCardPurchase.session_id == session_id)
    )
    assert purchase.sealed_code is not None  # the storefront may still collect it, once


def test_tier_referral_and_expiry_messages(client, admin, storefront, runner, smtp, session):
    beauty_insider(client, admin)
    referrals.enroll(client, admin, "ref_a", "ana@example.com")
    code = referrals.code_of(client, storefront, "ref_a")
    assert referrals.claim(client, storefront, code, "bea@example.com").status_code == 201
    referrals.order(client, storefront, "bea", email="bea@example.com")
    post_event(client, storefront, f.paid("ref_a", email="ana@example.com",
                                          lines=[f.line(unit_price=40_000)]))  # fmt: skip
    run_job(runner, "send-emails")
    to_ana = {a.subject: a for a in smtp.to("ana@example.com")}
    reward = to_ana[f"Your friend's order earned you a reward at {PROGRAM}"]
    assert "You earned 500 points" in reward.text
    tier = to_ana[f"You reached VIB at {PROGRAM}"]
    assert "you reached VIB (up from Member)" in tier.text

    # Points expiring: the set-based job step queues one per member and expiry.
    response = client.put("/v1/program", json={"pending_days": 0, "expiry_inactive_days": 100},
                          headers=admin)  # fmt: skip
    assert response.status_code == 200
    paid_at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    post_event(client, storefront, f.paid("c_exp", occurred_at=paid_at))
    run_job(runner, "expire-points", paid_at + timedelta(days=94))
    run_job(runner, "expire-points", paid_at + timedelta(days=95))
    [expiring] = queued(session, "points_expiring")
    assert expiring.data == {"points": 50, "expires_at": "2026-04-11T12:00:00+00:00"}
    run_job(runner, "send-emails")
    [warning] = smtp.to("c_exp@example.com")[-1:]
    assert warning.subject == f"Your 50 {PROGRAM} points expire soon"
    assert "expire on 2026-04-11" in warning.text


def test_an_old_enrolment_is_not_welcomed_and_the_channel_off_writes_nothing(
    app, client, admin, storefront, smtp, session
):
    long_ago = datetime.now(UTC) - timedelta(days=30)
    post_event(client, storefront, f.paid("c_old", occurred_at=long_ago))
    assert [m.template for m in queued(session)] == ["points_earned"]

    app.config["SMTP_HOST"] = ""
    with recorded() as sent:
        enrol(client, admin, "c_off", "fy@example.com")
        post_event(client, storefront, f.paid("c_off", email="fy@example.com"))
    assert touching(sent, "email_messages") == []
    assert session.scalar(select(func.count()).select_from(EmailMessage)) == 1


def test_erasure_deletes_what_is_queued_for_the_member(client, admin, runner, smtp, session):
    enrol(client, admin, "c_erase", "gus@example.com")
    enrol(client, admin, "c_keep", "hal@example.com")
    assert len(queued(session)) == 2
    assert client.delete("/v1/members/c_erase", headers=admin).status_code == 204
    assert [m.to_address for m in queued(session)] == ["hal@example.com"]
    run_job(runner, "send-emails")
    assert [a.envelope_to for a in smtp.arrived] == [["hal@example.com"]]


def test_members_moved_up_by_a_new_tier_are_told_set_based(
    client, admin, storefront, runner, smtp, session
):
    post_event(client, storefront, f.paid("c_up", lines=[f.line(unit_price=20_000)]))
    post_event(client, storefront, f.paid("c_low", lines=[f.line(unit_price=5_000)]))
    new_tier = {"name": "Silver", "threshold": 15_000, "multiplier": "1.1"}
    assert client.post("/v1/tiers", json=new_tier, headers=admin).status_code == 201
    [reached] = queued(session, "tier_reached")
    assert reached.to_address == "c_up@example.com"
    assert (reached.data["tier"], reached.data["previous"]) == ("Silver", "Member")
    assert reached.data["points_available"] == 0  # 200 pending
    run_job(runner, "send-emails")
    [told] = [a for a in smtp.arrived if "Silver" in a.subject]
    assert told.envelope_to == ["c_up@example.com"]
    assert "you reached Silver (up from Member)" in told.text


def test_the_export_lists_the_members_emails(client, admin, storefront, runner, smtp):
    enrol(client, admin, "c_exp_mail", "ivy@example.com")
    post_event(client, storefront, f.paid("c_exp_mail", email="ivy@example.com"))
    run_job(runner, "send-emails")
    post_event(client, storefront, f.paid("c_exp_mail", email="ivy@example.com"))
    export = client.get("/v1/members/c_exp_mail/export", headers=admin).get_json()
    shown = [(e["template"], e["to"], e["status"]) for e in export["emails"]]
    assert shown == [
        ("welcome", "ivy@example.com", "sent"),
        ("points_earned", "ivy@example.com", "sent"),
        ("points_earned", "ivy@example.com", "queued"),
    ]
    assert export["emails"][1]["data"]["points"] == 50
