"""Buying a card with Stripe Checkout: the real `stripe` library against a local fake of its
HTTP API, and webhooks signed exactly as Stripe signs them."""

import time

from sqlalchemy import func, select

from rewards.giftcards import codes
from rewards.giftcards.models import GiftCard, GiftCardPurchase, GiftCardTransaction
from tests.giftcards import fake_stripe
from tests.giftcards.conftest import WEBHOOK_SECRETS
from tests.giftcards.helpers import lookup

CHECKOUT = {
    "amount": 5000,
    "currency": "USD",
    "purchaser_email": "buyer@example.com",
    "recipient_email": "friend@example.com",
    "success_url": "https://shop.example.com/thanks",
    "cancel_url": "https://shop.example.com/cart",
}


def start(client, storefront, **changes):
    response = client.post(
        "/v1/gift-cards/checkout-sessions", json={**CHECKOUT, **changes}, headers=storefront
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def deliver(client, payload: bytes, secret=WEBHOOK_SECRETS[-1], timestamp=None, signature=None):
    header = signature or fake_stripe.sign(payload, secret, timestamp)
    return client.post(
        "/v1/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def counts(session):
    session.expire_all()
    return (
        session.scalar(select(func.count()).select_from(GiftCard)),
        session.scalar(select(func.count()).select_from(GiftCardTransaction)),
        session.scalar(
            select(func.count())
            .select_from(GiftCardPurchase)
            .where(GiftCardPurchase.status == "completed")
        ),
    )


def test_checkout_session_is_created_through_stripe(client, storefront, stripe_api, session):
    body = start(client, storefront)
    assert body["session_id"].startswith("cs_test_")
    assert body["url"] == f"https://checkout.stripe.com/c/pay/{body['session_id']}"
    sent = stripe_api.requests[-1]
    assert sent["headers"]["Authorization"] == f"Bearer {fake_stripe.API_KEY}"
    assert sent["form"]["mode"] == "payment"
    assert sent["form"]["customer_email"] == "buyer@example.com"
    assert sent["form"]["line_items"]["0"]["price_data"] == {
        "currency": "usd",
        "unit_amount": "5000",
        "product_data": {"name": "Gift card"},
    }
    assert sent["form"]["metadata"]["recipient_email"] == "friend@example.com"
    purchase = session.scalar(
        select(GiftCardPurchase).where(GiftCardPurchase.session_id == body["session_id"])
    )
    assert (purchase.amount, purchase.status, purchase.card_id) == (5000, "open", None)


def test_checkout_in_another_currency_is_refused_before_stripe(client, storefront, stripe_api):
    response = client.post(
        "/v1/gift-cards/checkout-sessions", json={**CHECKOUT, "currency": "EUR"}, headers=storefront
    )
    assert response.status_code == 422
    assert response.get_json()["type"] == "currency-mismatch"
    assert stripe_api.requests == []


def test_paid_session_issues_one_card_however_often_stripe_repeats(
    client, storefront, stripe_api, session
):
    session_id = start(client, storefront)["session_id"]
    payload = fake_stripe.event(stripe_api.pay(session_id))
    before = counts(session)
    first = deliver(client, payload)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["result"] == "issued"
    for _ in range(9):
        again = deliver(client, payload)
        assert again.status_code == 200
        assert again.get_json()["result"] == "duplicate"
    # The same payment reported by the other event type changes nothing either.
    late = fake_stripe.event(
        stripe_api.pay(session_id), kind="checkout.session.async_payment_succeeded"
    )
    assert deliver(client, late).get_json()["result"] == "duplicate"
    assert counts(session) == (before[0] + 1, before[1] + 1, before[2] + 1)
    card = session.get(GiftCard, first.get_json()["card_id"])
    assert (card.source, card.balance, card.paid_amount, card.currency) == (
        "stripe",
        5000,
        5000,
        "USD",
    )


def test_amount_comes_from_the_verified_session_not_our_record(
    client, storefront, stripe_api, session
):
    session_id = start(client, storefront, amount=5000)["session_id"]
    paid = {**stripe_api.pay(session_id), "amount_total": 4500}  # e.g. a Stripe-side discount
    response = deliver(client, fake_stripe.event(paid))
    assert response.get_json()["result"] == "issued"
    assert session.get(GiftCard, response.get_json()["card_id"]).balance == 4500


def test_unpaid_completion_waits_for_async_payment(client, storefront, stripe_api, session):
    session_id = start(client, storefront)["session_id"]
    pending = fake_stripe.event(stripe_api.pay(session_id, payment_status="unpaid"))
    before = counts(session)
    assert deliver(client, pending).get_json()["result"] == "awaiting_payment"
    assert counts(session) == before
    succeeded = fake_stripe.event(
        stripe_api.pay(session_id), kind="checkout.session.async_payment_succeeded"
    )
    assert deliver(client, succeeded).get_json()["result"] == "issued"
    assert counts(session)[0] == before[0] + 1


def test_other_event_types_and_foreign_sessions_are_acknowledged_and_ignored(
    client, stripe_api, session
):
    before = counts(session)
    other = fake_stripe.event(
        {"id": "pi_1", "object": "payment_intent"}, kind="payment_intent.created"
    )
    assert deliver(client, other).get_json() == {"received": True, "result": "ignored"}
    foreign = {"id": "cs_not_ours", "object": "checkout.session", "payment_status": "paid",
               "amount_total": 100, "currency": "usd", "metadata": {}}  # fmt: skip
    assert deliver(client, fake_stripe.event(foreign)).get_json()["result"] == "ignored"
    assert counts(session) == before


def test_lost_purchase_record_is_rebuilt_from_the_session_metadata(
    client, storefront, stripe_api, session
):
    session_id = start(client, storefront)["session_id"]
    session.execute(
        GiftCardPurchase.__table__.delete().where(GiftCardPurchase.session_id == session_id)
    )
    response = deliver(client, fake_stripe.event(stripe_api.pay(session_id)))
    assert response.get_json()["result"] == "issued"
    purchase = session.scalar(
        select(GiftCardPurchase).where(GiftCardPurchase.session_id == session_id)
    )
    assert purchase.recipient_email == "friend@example.com"
    assert purchase.card_id == response.get_json()["card_id"]


def test_forged_stale_or_altered_webhooks_are_400_and_change_nothing(
    client, storefront, stripe_api, session
):
    session_id = start(client, storefront)["session_id"]
    payload = fake_stripe.event(stripe_api.pay(session_id))
    altered = payload.replace(b'"amount_total": 5000', b'"amount_total": 9000')
    assert len(altered) == len(payload) and altered != payload
    one_byte = bytearray(payload)
    one_byte[-2] = ord(" ")  # a single byte changed, still valid JSON
    good = fake_stripe.sign(payload, WEBHOOK_SECRETS[-1])
    before = counts(session)
    refused = [
        deliver(client, bytes(one_byte), signature=good),
        deliver(client, altered, signature=good),
        deliver(client, payload, secret="whsec_someone_else"),
        deliver(client, payload, timestamp=int(time.time()) - 301),
        deliver(client, payload, timestamp=int(time.time()) + 3600),
        deliver(client, payload, signature="t=1,v1=deadbeef"),
        client.post("/v1/webhooks/stripe", data=payload),  # no signature at all
    ]
    assert [r.status_code for r in refused] == [400] * len(refused)
    assert refused[0].get_json()["type"] == "invalid-signature"
    assert counts(session) == before
    # ...while the genuine one, signed with the older of two rotating secrets, is accepted.
    assert deliver(client, payload, secret=WEBHOOK_SECRETS[0]).get_json()["result"] == "issued"


def test_the_bought_cards_code_is_collected_once_then_erased(
    client, storefront, stripe_api, session
):
    session_id = start(client, storefront)["session_id"]
    url = f"/v1/gift-cards/checkout-sessions/{session_id}/code"
    early = client.post(url, headers=storefront)
    assert early.status_code == 409 and early.get_json()["reason"] == "awaiting_payment"
    card_id = deliver(client, fake_stripe.event(stripe_api.pay(session_id))).get_json()["card_id"]
    purchase = session.scalar(
        select(GiftCardPurchase).where(GiftCardPurchase.session_id == session_id)
    )
    sealed = purchase.sealed_code
    assert sealed is not None
    shown = client.post(url, headers=storefront)
    assert shown.status_code == 200, shown.get_json()
    body = shown.get_json()
    assert body["card_id"] == card_id and body["balance"] == 5000
    code = codes.parse(body["code"])
    assert code[-4:] == body["last4"] and code not in sealed.upper()
    # The code opens the card...
    assert lookup(client, storefront, body["code"]).get_json()["balance"] == 5000
    # ...and is never shown again: nothing of it is left to unseal.
    again = client.post(url, headers=storefront)
    assert again.status_code == 409 and again.get_json()["reason"] == "already_revealed"
    session.expire_all()
    assert session.get(GiftCardPurchase, purchase.id).sealed_code is None
    assert (
        client.post(
            "/v1/gift-cards/checkout-sessions/cs_unknown/code", headers=storefront
        ).status_code
        == 404
    )


def test_a_nul_in_a_field_the_app_never_reads_does_not_refuse_stripes_event(
    client, storefront, stripe_api, session
):
    # Refused once, Stripe's event would be refused on every retry: the card never issued.
    session_id = start(client, storefront)["session_id"]
    paid = stripe_api.pay(session_id)
    paid["customer_details"] = {"name": "Ana\u0000"}
    payload = fake_stripe.event(paid)
    assert b"\\u0000" in payload
    response = deliver(client, payload)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["result"] == "issued"
