"""Real commits from many connections on PostgreSQL: nobody double-spends a card."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text

from loyalty.extensions import db
from loyalty.types import utcnow
from rewards.giftcards import codes, service
from rewards.giftcards.models import GiftCard, GiftCardPurchase, GiftCardTransaction
from tests.giftcards import fake_stripe
from tests.giftcards.conftest import WEBHOOK_SECRETS, configure_stripe
from tests.giftcards.helpers import issue

pytestmark = [pytest.mark.postgres, pytest.mark.concurrency]
ACTIONS = ("capture", "void")


def run_together(count: int, work):
    """Start `count` calls of work(i) at the same instant; return their results in order."""
    barrier = threading.Barrier(count)

    def go(i):
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(go, range(count)))


def card_row(app, card_id):
    with app.app_context():
        row = db.session.get(GiftCard, card_id)
        total = db.session.scalar(
            select(func.sum(GiftCardTransaction.balance_change)).where(
                GiftCardTransaction.card_id == card_id
            )
        )
        db.session.remove()
        return row, int(total)


def allow_many_holds_on_one_card(app):
    """More holds on one card in a second than a shopper's allowance of code requests."""
    app.config["GIFT_CARD_LOOKUPS_PER_MINUTE"] = 100


def test_fifty_concurrent_holds_on_a_card_worth_ten_of_them(pg_app, pg_keys):
    allow_many_holds_on_one_card(pg_app)
    gc = issue(pg_app.test_client(), pg_keys["admin"], amount=10000)
    balances_seen = []

    def take(i):
        response = pg_app.test_client().post(
            "/v1/gift-cards/holds",
            json={"code": gc["code"], "amount": 1000, "order_id": f"ord_{i}"},
            headers=pg_keys["storefront"],
        )
        if response.status_code == 201:
            balances_seen.append(response.get_json()["card"]["balance"])
        return response.status_code

    statuses = run_together(50, take)
    assert statuses.count(201) == 10
    assert statuses.count(422) == 40
    assert min(balances_seen) == 0 and sorted(balances_seen) == list(range(0, 10000, 1000))
    row, from_transactions = card_row(pg_app, gc["id"])
    assert (row.balance, row.held_amount) == (0, 10000)
    assert from_transactions == row.balance


def test_capture_and_void_racing_on_one_hold_exactly_one_wins(pg_app, pg_keys):
    client = pg_app.test_client()
    gc = issue(client, pg_keys["admin"], amount=100000)
    for round_ in range(10):
        hold = client.post(
            "/v1/gift-cards/holds",
            json={"code": gc["code"], "amount": 1000, "order_id": f"ord_{round_}"},
            headers=pg_keys["storefront"],
        ).get_json()

        def resolve(i, hold_id=hold["id"]):
            return (
                pg_app.test_client()
                .post(
                    f"/v1/gift-card-holds/{hold_id}/{ACTIONS[i % 2]}", headers=pg_keys["storefront"]
                )
                .status_code
            )

        statuses = run_together(4, resolve)  # two captures and two voids at once
        assert sorted(statuses) == [200, 409, 409, 409], statuses
    row, from_transactions = card_row(pg_app, gc["id"])
    assert row.held_amount == 0
    assert row.balance == 100000 - row.captured_amount
    assert from_transactions == row.balance


def test_a_webhook_replayed_sequentially_and_concurrently_issues_one_card(pg_app, pg_keys):
    with fake_stripe.FakeStripe() as stripe_api:
        configure_stripe(pg_app, stripe_api.url)
        client = pg_app.test_client()
        checkout = client.post(
            "/v1/gift-cards/checkout-sessions",
            json={"amount": 2500, "currency": "USD", "purchaser_email": "b@example.com",
                  "success_url": "https://s.example/ok", "cancel_url": "https://s.example/no"},
            headers=pg_keys["storefront"],
        ).get_json()  # fmt: skip
        payload = fake_stripe.event(stripe_api.pay(checkout["session_id"]))

    def deliver(_i):
        response = pg_app.test_client().post(
            "/v1/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": fake_stripe.sign(payload, WEBHOOK_SECRETS[-1])},
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()["result"]

    concurrent = run_together(10, deliver)
    sequential = [deliver(i) for i in range(10)]
    assert sorted(concurrent) == ["duplicate"] * 9 + ["issued"]
    assert sequential == ["duplicate"] * 10
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GiftCard)) == 1
        purchase = db.session.scalar(select(GiftCardPurchase))
        assert purchase.status == "completed" and purchase.card_id is not None


def test_a_lost_purchase_record_rebuilt_by_concurrent_webhooks_issues_one_card(pg_app):
    """Metadata-only sessions race on the unique session id instead of a conditional update."""
    configure_stripe(pg_app, "http://127.0.0.1:9")  # no API call is made here
    metadata = {"loyalty_gift_card": "1", "purchaser_email": "b@example.com"}
    checkout = {"id": "cs_test_lost", "object": "checkout.session", "payment_status": "paid",
                "amount_total": 1500, "currency": "usd", "metadata": metadata}  # fmt: skip
    payload = fake_stripe.event(checkout)

    def deliver(_i):
        return (
            pg_app.test_client()
            .post(
                "/v1/webhooks/stripe",
                data=payload,
                headers={"Stripe-Signature": fake_stripe.sign(payload, WEBHOOK_SECRETS[0])},
            )
            .get_json()["result"]
        )

    assert sorted(run_together(10, deliver)) == ["duplicate"] * 9 + ["issued"]
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GiftCard)) == 1


def test_no_full_code_anywhere_in_the_database_after_issuing_a_thousand_cards(pg_app, pg_keys):
    client = pg_app.test_client()
    issued = [
        issue(client, pg_keys["admin"], amount=100 + i, note=f"batch card {i}")["code"]
        for i in range(1000)
    ]
    with pg_app.app_context():
        tables = db.session.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).all()
        dump = "\n".join(
            row
            for table in tables
            for row in db.session.scalars(text(f'SELECT t::text FROM "{table}" t'))  # noqa: S608
        ).upper()
        cards = db.session.scalar(select(func.count()).select_from(GiftCard))
    assert cards == 1000 and "GIFT_CARD" not in tables  # (table names are lower case)
    assert len(dump) > 1000 * 64
    for code in issued:
        plain = codes.parse(code)
        assert plain not in dump and code not in dump
    # The hashes and last 4 characters are all that is kept.
    assert all(codes.parse(code)[-4:] in dump for code in issued[:20])


def test_a_million_generated_codes_do_not_collide():
    drawn = {codes.new_code() for _ in range(1_000_000)}
    assert len(drawn) == 1_000_000
    assert all(len(code) == 16 and codes.parse(code) == code for code in list(drawn)[:1000])


def test_expire_holds_job_from_two_workers_releases_each_hold_once(pg_app, pg_keys):
    allow_many_holds_on_one_card(pg_app)
    client = pg_app.test_client()
    gc = issue(client, pg_keys["admin"], amount=50000)
    for i in range(40):
        client.post(
            "/v1/gift-cards/holds",
            json={"code": gc["code"], "amount": 1000, "order_id": f"o{i}", "expires_in": 1},
            headers=pg_keys["storefront"],
        )
    later = utcnow().replace(year=utcnow().year + 1)

    def run_job(_i):
        with pg_app.app_context():
            changed = service.expire_holds(db.session, later, batch_size=7)
            db.session.remove()
            return changed

    assert sum(run_together(2, run_job)) == 40
    row, from_transactions = card_row(pg_app, gc["id"])
    assert (row.balance, row.held_amount) == (50000, 0)
    assert from_transactions == 50000


def test_twenty_concurrent_debits_of_100_from_1000_exactly_ten_succeed(pg_app, pg_keys):
    admin = pg_keys["admin"]
    client = pg_app.test_client()
    gc = issue(client, admin, amount=1000)
    held = client.post(
        "/v1/gift-cards/holds",
        json={"code": gc["code"], "amount": 400, "order_id": "ord_held"},
        headers=pg_keys["storefront"],
    )
    assert held.status_code == 201
    credit = client.post(
        f"/v1/gift-cards/{gc['id']}/adjustments",
        json={"amount": 400, "reason": "make it 1000 spendable"},
        headers=admin,
    )
    assert credit.status_code == 201 and credit.get_json()["balance"] == 1000

    def debit(i):
        response = pg_app.test_client().post(
            f"/v1/gift-cards/{gc['id']}/adjustments",
            json={"amount": -100, "reason": f"debit {i}"},
            headers={**admin, "Idempotency-Key": f"debit-{i}"},
        )
        body = response.get_json()
        return response.status_code, body.get("type") if response.status_code != 201 else None

    results = run_together(20, debit)
    assert results.count((201, None)) == 10
    assert [r for r in results if r[0] != 201] == [(422, "insufficient-funds")] * 10
    row, from_transactions = card_row(pg_app, gc["id"])
    assert (row.balance, row.held_amount, row.adjusted_amount) == (0, 400, -600)
    assert from_transactions == row.balance


def test_an_adjustment_racing_a_disable_lands_wholly_before_it_or_is_refused(pg_app, pg_keys):
    """Never a credit to a card already disabled: whichever runs second sees the other's
    effect (the disable's audit row shows the card as it left it)."""
    from loyalty.audit import AuditLog

    admin = pg_keys["admin"]
    cards = [issue(pg_app.test_client(), admin, amount=1000)["id"] for _ in range(8)]

    def race(i):
        card_id = cards[i // 2]
        if i % 2:
            return (
                pg_app.test_client()
                .post(f"/v1/gift-cards/{card_id}/disable", headers=admin)
                .status_code
            )
        return (
            pg_app.test_client()
            .post(
                f"/v1/gift-cards/{card_id}/adjustments",
                json={"amount": 100, "reason": "race"},
                headers=admin,
            )
            .status_code
        )

    results = run_together(16, race)
    assert set(results[1::2]) == {200}
    assert set(results[::2]) <= {201, 409}
    with pg_app.app_context():
        for n, card_id in enumerate(cards):
            row = db.session.get(GiftCard, card_id)
            disabled = db.session.scalar(
                select(AuditLog.after).where(
                    AuditLog.action == "gift_card.disable", AuditLog.object_id == str(card_id)
                )
            )
            credited = results[2 * n] == 201
            assert row.status == "disabled"
            assert row.adjusted_amount == (100 if credited else 0)
            assert disabled["balance"] == row.balance == (1100 if credited else 1000)
        db.session.remove()
