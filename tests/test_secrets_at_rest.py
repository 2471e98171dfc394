"""No secret is stored in the clear: gift card codes, webhook signing secrets and widget tokens
in stored replies, and webhook secrets themselves, are sealed under SECRET_KEYS; a replay
answers exactly as the first time; rotation keeps them readable."""

from contextlib import contextmanager

import pytest
from sqlalchemy import select

from loyalty.idempotency import IdempotencyRecord
from loyalty.sealing import IDEMPOTENT_REPLY, WEBHOOK_SECRET, Sealer, Unsealable
from loyalty.webhooks.models import WebhookEndpoint
from rewards.giftcards import codes
from tests import factories as f
from tests.dump import found_in_database
from tests.giftcards import fake_stripe
from tests.test_erasure import keyed, stripe_api  # noqa: F401 - the fixture, shared
from tests.tiers.helpers import post_event
from tests.webhooks.helpers import run_job
from tests.webhooks.receiver import Receiver


@contextmanager
def secret_keys(app, keys):
    before = app.config["SECRET_KEYS"]
    app.config["SECRET_KEYS"] = keys
    try:
        yield
    finally:
        app.config["SECRET_KEYS"] = before


def twice(client, method, url, headers, json=None):
    """The request, then the same again with the same Idempotency-Key: (first, replay)."""
    first = getattr(client, method)(url, headers=headers, json=json)
    again = getattr(client, method)(url, headers=headers, json=json)
    assert first.status_code in (200, 201), first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.status_code, again.get_data()) == (first.status_code, first.get_data())
    return first.get_json()


def code_forms(display: str) -> list[str]:
    return [display, codes.parse(display)]


def test_no_secret_is_stored_in_the_clear_and_replays_answer_the_same(
    client,
    admin,
    storefront,
    stripe_api,  # noqa: F811 - the fixture
):
    card = twice(client, "post", "/v1/gift-cards", keyed(admin, "card-1"),
                 {"amount": 2500, "currency": "USD"})  # fmt: skip
    endpoint = twice(client, "post", "/v1/webhook-endpoints", keyed(admin, "hook-1"),
                     {"url": "http://127.0.0.1:9/hook", "events": ["points.earned"]})  # fmt: skip
    client.post("/v1/members", json={"id": "c_tok", "email": "t@example.com"}, headers=admin)
    token = twice(client, "post", "/v1/widget-tokens", keyed(storefront, "tok-1"),
                  {"customer_id": "c_tok"})["token"]  # fmt: skip
    checkout = client.post("/v1/gift-cards/checkout-sessions", headers=storefront, json={
        "amount": 5000, "currency": "USD", "purchaser_email": "b@example.com",
        "success_url": "https://shop.example.com/thanks",
        "cancel_url": "https://shop.example.com/cart",
    }).get_json()  # fmt: skip
    paid = fake_stripe.event(stripe_api.pay(checkout["session_id"]))
    stripe_secret = client.application.config["STRIPE_WEBHOOK_SECRETS"][-1]
    stripe_headers = {"Stripe-Signature": fake_stripe.sign(paid, stripe_secret),
                      "Content-Type": "application/json"}  # fmt: skip
    assert client.post("/v1/webhooks/stripe", data=paid, headers=stripe_headers).status_code == 200
    bought = twice(client, "post",
                   f"/v1/gift-cards/checkout-sessions/{checkout['session_id']}/code",
                   keyed(storefront, "reveal-1"))  # fmt: skip

    secrets = [*code_forms(card["code"]), endpoint["secret"], token, *code_forms(bought["code"])]
    assert found_in_database(*secrets) == []
    # ...while what is not secret is stored as usual (the search works).
    assert found_in_database(card["last4"], "http://127.0.0.1:9/hook") == [
        card["last4"], "http://127.0.0.1:9/hook",
    ]  # fmt: skip


def test_webhook_secrets_sign_after_rotation_and_reseal(client, admin, storefront, runner, app):
    old, new = app.config["SECRET_KEYS"]
    with Receiver() as receiver:
        created = client.post("/v1/webhook-endpoints", headers=admin,
                              json={"url": receiver.url, "events": ["points.earned"]})  # fmt: skip
        endpoint = created.get_json()
        stored = client.application.extensions["sqlalchemy"].session.scalar(
            select(WebhookEndpoint.secret).where(WebhookEndpoint.id == endpoint["id"])
        )
        assert endpoint["secret"] not in stored
        assert Sealer([new], WEBHOOK_SECRET).unseal(stored) == endpoint["secret"]
        with secret_keys(app, [new, "test-secret-newer"]):  # rotated: `new` is now the older
            post_event(client, storefront, f.paid("c_rot", lines=[f.line(unit_price=7000)]))
            assert "1 changed" in run_job(runner, "deliver-webhooks")
            receiver.requests[-1].verified(endpoint["secret"])
            result = runner.invoke(args=["loyalty", "reseal"])
            assert result.exit_code == 0, result.output
            assert "webhook secrets: 1 resealed, 0 opened by no key" in result.output
        with secret_keys(app, ["test-secret-newer"]):  # `new` dropped: still signs
            post_event(client, storefront, f.paid("c_rot", lines=[f.line(unit_price=7000)]))
            assert "1 changed" in run_job(runner, "deliver-webhooks")
            receiver.requests[-1].verified(endpoint["secret"])
        with secret_keys(app, ["unrelated-secret"]):  # opened by no key: retried, not sent
            post_event(client, storefront, f.paid("c_rot", lines=[f.line(unit_price=7000)]))
            assert "0 changed" in run_job(runner, "deliver-webhooks")
            assert len(receiver.requests) == 2
    assert old != new


def test_a_stored_reply_no_key_opens_is_a_conflict(client, admin, app, session):
    headers = keyed(admin, "card-2")
    body = {"amount": 1000, "currency": "USD"}
    assert client.post("/v1/gift-cards", headers=headers, json=body).status_code == 201
    stored = session.scalar(select(IdempotencyRecord.body))
    assert Sealer(app.config["SECRET_KEYS"], IDEMPOTENT_REPLY).unseal(stored).startswith("{")
    with secret_keys(app, ["unrelated-secret"]):
        replay = client.post("/v1/gift-cards", headers=headers, json=body)
    assert replay.status_code == 409, replay.get_json()
    assert replay.get_json()["type"].endswith("conflict")
    assert "can no longer be read" in replay.get_json()["detail"]


def test_sealing_rotates_keys_and_keeps_purposes_apart():
    old = Sealer(["k-old"], IDEMPOTENT_REPLY)
    token = old.seal("the value")
    rotated = Sealer(["k-old", "k-new"], IDEMPOTENT_REPLY)
    assert rotated.unseal(token) == "the value"  # an older key still opens
    newer = rotated.seal("the value")
    assert Sealer(["k-new"], IDEMPOTENT_REPLY).unseal(newer) == "the value"  # newest seals
    with pytest.raises(Unsealable):
        old.unseal(newer)
    assert Sealer(["k-new"], IDEMPOTENT_REPLY).unseal(rotated.reseal(token)) == "the value"
    with pytest.raises(Unsealable):
        Sealer(["k-old"], WEBHOOK_SECRET).unseal(token)  # one key per purpose
    with pytest.raises(Unsealable):
        old.unseal(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    assert rotated.seal("the value") != newer  # random IV: equal values do not look alike
