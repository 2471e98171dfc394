"""Admin adjustments of a card's balance (`POST /v1/gift-cards/{id}/adjustments`): a signed
ledger movement with its reason, audited, never taking what an order holds; refusals change
nothing."""

import pytest
from sqlalchemy import func, select

from loyalty.audit import AuditLog
from loyalty.schemas import MAX_MONEY
from rewards.giftcards.models import GiftCard, GiftCardTransaction
from tests.giftcards.helpers import card, hold, issue


def adjust(client, admin, card_id, amount, reason="why", **headers):
    return client.post(
        f"/v1/gift-cards/{card_id}/adjustments",
        json={"amount": amount, "reason": reason},
        headers={**admin, **headers},
    )


def snapshot(session, card_id):
    """Everything an adjustment could write: the card's amounts, its transactions, audit rows."""
    session.expire_all()
    row = session.get(GiftCard, card_id)
    amounts = (row.balance, row.held_amount, row.adjusted_amount, row.status)
    transactions = session.scalar(
        select(func.count()).where(GiftCardTransaction.card_id == card_id)
    )
    audits = session.scalar(select(func.count()).where(AuditLog.action == "gift_card.adjust"))
    return amounts, transactions, audits


def test_a_debit_never_takes_money_an_order_holds(client, admin, storefront, session):
    gc = issue(client, admin, amount=1000)
    held = hold(client, storefront, gc["code"], 600, order_id="ord_adj")
    assert held.status_code == 201
    before = snapshot(session, gc["id"])
    refused = adjust(client, admin, gc["id"], -401)
    assert refused.status_code == 422 and refused.get_json()["type"] == "insufficient-funds"
    assert refused.get_json()["available"] == 400
    assert snapshot(session, gc["id"]) == before
    taken = adjust(client, admin, gc["id"], -400, "correction")
    assert taken.status_code == 201
    assert (taken.get_json()["balance"], taken.get_json()["held_amount"]) == (0, 600)
    captured = client.post(
        f"/v1/gift-card-holds/{held.get_json()['id']}/capture", headers=storefront
    )
    assert captured.status_code == 200 and captured.get_json()["captured_amount"] == 600


def test_the_balance_is_the_sum_of_the_transactions_after_adjustments(client, admin, session):
    gc = issue(client, admin, amount=1000, bonus_amount=200)
    for amount in (500, -1700, 250, -1):
        assert adjust(client, admin, gc["id"], amount).status_code == 201
    read = card(client, admin, gc["id"])
    assert read["balance"] == 249 and read["adjusted_amount"] == -951
    assert sum(t["balance_change"] for t in read["transactions"]) == read["balance"]
    kinds = [(t["kind"], t["amount"], t["balance_change"]) for t in read["transactions"]]
    assert kinds[1:] == [
        ("adjust", 500, 500), ("adjust", 1700, -1700), ("adjust", 250, 250), ("adjust", 1, -1),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 0, "reason": "nothing"},
        {"amount": MAX_MONEY + 1, "reason": "too much"},
        {"amount": -MAX_MONEY - 1, "reason": "too much"},
        {"amount": 1.5, "reason": "fraction"},
        {"amount": "100", "reason": "a string"},
        {"amount": 100},
        {"amount": 100, "reason": ""},
        {"amount": 100, "reason": "x" * 501},
        {"amount": 100, "reason": "ok", "extra": 1},
    ],
)
def test_bad_adjustments_are_422_and_change_nothing(client, admin, session, body):
    gc = issue(client, admin, amount=1000)
    before = snapshot(session, gc["id"])
    response = client.post(f"/v1/gift-cards/{gc['id']}/adjustments", json=body, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["type"] == "validation-error"
    assert snapshot(session, gc["id"]) == before


def test_a_disabled_or_unknown_card_is_not_adjusted(client, admin, session):
    gc = issue(client, admin, amount=1000)
    assert client.post(f"/v1/gift-cards/{gc['id']}/disable", headers=admin).status_code == 200
    before = snapshot(session, gc["id"])
    refused = adjust(client, admin, gc["id"], 100)
    assert refused.status_code == 409 and refused.get_json()["type"] == "conflict"
    assert snapshot(session, gc["id"]) == before
    assert adjust(client, admin, 987654321, 100).status_code == 404


def test_an_adjustment_sent_twice_with_one_idempotency_key_applies_once(client, admin, session):
    gc = issue(client, admin, amount=1000)
    first = adjust(client, admin, gc["id"], -300, **{"Idempotency-Key": "gc-adj-1"})
    again = adjust(client, admin, gc["id"], -300, **{"Idempotency-Key": "gc-adj-1"})
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert card(client, admin, gc["id"])["balance"] == 700
    other = adjust(client, admin, gc["id"], -200, **{"Idempotency-Key": "gc-adj-1"})
    assert other.status_code == 422  # the key reused for another body
    assert card(client, admin, gc["id"])["balance"] == 700


def test_an_adjustment_is_audited_with_its_reason(client, admin, session):
    gc = issue(client, admin, amount=1000)
    assert adjust(client, admin, gc["id"], 125, "goodwill: late delivery").status_code == 201
    row = session.scalar(select(AuditLog).where(AuditLog.action == "gift_card.adjust"))
    assert row.object_type == "gift_card" and row.object_id == str(gc["id"])
    assert row.after == {"amount": 125, "reason": "goodwill: late delivery", "balance": 1125}


def test_verify_ledger_counts_adjustments_and_names_a_card_that_drifted(
    client, admin, storefront, session, runner
):
    gc = issue(client, admin, amount=1000)
    assert hold(client, storefront, gc["code"], 300, order_id="ord_v").status_code == 201
    for amount in (400, -900):
        assert adjust(client, admin, gc["id"], amount).status_code == 201
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output
    # A balance moved without its transaction (the row's own arithmetic still adds up).
    row = session.get(GiftCard, gc["id"])
    row.balance, row.adjusted_amount = row.balance + 50, row.adjusted_amount + 50
    session.commit()
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 1
    assert f"gift card {gc['id']}: stored balance/held 250/300 != transactions/active holds " in (
        result.output
    )
    assert "200/300" in result.output
