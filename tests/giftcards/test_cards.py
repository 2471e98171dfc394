"""Gift cards over HTTP: issue, read, holds, captures, voids, refunds, disabling, events."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from loyalty.codes import normalize_code
from rewards.giftcards import codes
from rewards.giftcards.models import GiftCard, GiftCardTransaction
from rewards.giftcards.service import GiftCardHolds
from tests import factories as f
from tests.giftcards.helpers import card, hold, issue, lookup
from tests.statements import of_handler


def test_issue_shows_the_code_once_and_stores_only_its_keyed_hash(client, admin, session, app):
    body = issue(client, admin, amount=5000, bonus_amount=1000, note="launch promo")
    code = normalize_code(body["code"])
    assert len(code) == 16 and body["code"].count("-") == 3
    assert body == {
        **body,
        "balance": 6000,
        "currency": "USD",
        "status": "active",
        "last4": code[-4:],
        "paid_amount": 5000,
        "bonus_amount": 1000,
        "source": "admin",
    }
    row = session.get(GiftCard, body["id"])
    assert row.code_hash == codes.code_hash(code, app.config["SECRET_KEYS"][-1])
    assert code not in row.code_hash
    read = card(client, admin, body["id"])
    assert "code" not in read
    assert [(t["kind"], t["amount"], t["balance_change"]) for t in read["transactions"]] == [
        ("issue", 6000, 6000)
    ]
    assert read["transactions"][0]["detail"]["paid"] == 5000
    assert read["transactions"][0]["detail"]["bonus"] == 1000


def test_bad_issues_are_refused_and_change_nothing(client, admin, session):
    before = session.scalar(select(text("count(*)")).select_from(GiftCard))
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases = [
        ({"amount": 100, "currency": "EUR"}, "currency-mismatch"),
        ({"amount": 100, "currency": "USD", "expires_at": past}, "validation-error"),
        ({"amount": "100", "currency": "USD"}, "validation-error"),
        ({"amount": 0, "currency": "USD"}, "validation-error"),
        ({"amount": 100, "currency": "USD", "pin": "1"}, "validation-error"),
        ({"amount": -1, "currency": "USD"}, "validation-error"),
    ]
    for payload, slug in cases:
        response = client.post("/v1/gift-cards", json=payload, headers=admin)
        assert response.status_code == 422, payload
        assert response.get_json()["type"] == slug, payload
    assert session.scalar(select(text("count(*)")).select_from(GiftCard)) == before


# One request per test: the test client shares `g` (and the caller it remembers) within a test.
@pytest.mark.parametrize(
    ("method", "path"), [("post", "/v1/gift-cards"), ("get", "/v1/gift-cards"),
                         ("get", "/v1/gift-cards/1"), ("post", "/v1/gift-cards/1/disable"),
                         ("post", "/v1/gift-cards/1/refunds")],
)  # fmt: skip
def test_storefront_cannot_issue_or_manage_cards(client, storefront, method, path):
    assert getattr(client, method)(path, json={}, headers=storefront).status_code == 403


def test_lookup_needs_credentials(client):
    assert client.post("/v1/gift-cards/lookup", json={"code": "x"}).status_code == 401


def test_lookup_accepts_any_spelling_and_hides_dead_cards_behind_one_404(client, admin, storefront):
    live = issue(client, admin, amount=2500)
    spelled = live["code"].replace("-", " ").lower()
    response = lookup(client, storefront, spelled)
    assert response.status_code == 200
    assert response.get_json() == {
        "last4": live["last4"],
        "balance": 2500,
        "currency": "USD",
        "status": "active",
        "expires_at": None,
    }
    disabled = issue(client, admin, amount=2500)
    assert client.post(f"/v1/gift-cards/{disabled['id']}/disable", headers=admin).status_code == 200
    misses = [
        lookup(client, storefront, disabled["code"]),
        lookup(client, storefront, "0000-0000-0000-0000"),
        lookup(client, storefront, "not a code"),
    ]
    assert {r.status_code for r in misses} == {404}
    assert len({r.get_data() for r in misses}) == 1  # the same answer whatever the reason


def test_partial_capture_releases_the_rest_and_a_hold_resolves_once(client, admin, storefront):
    gc = issue(client, admin, amount=10000)
    created = hold(client, storefront, gc["code"], 4000, order_id="ord_9")
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["amount"] == 4000 and body["card"] == {
        "id": gc["id"],
        "last4": gc["last4"],
        "balance": 6000,
    }
    captured = client.post(
        f"/v1/gift-card-holds/{body['id']}/capture", json={"amount": 2500}, headers=storefront
    )
    assert captured.status_code == 200, captured.get_json()
    assert captured.get_json()["status"] == "captured"
    assert captured.get_json()["card"]["balance"] == 7500
    again = client.post(f"/v1/gift-card-holds/{body['id']}/capture", headers=storefront)
    void = client.post(f"/v1/gift-card-holds/{body['id']}/void", headers=storefront)
    assert again.status_code == void.status_code == 409
    assert void.get_json()["type"] == "conflict"
    read = card(client, admin, gc["id"])
    assert read["balance"] == 7500 and read["captured_amount"] == 2500 and read["held_amount"] == 0
    assert [(t["kind"], t["amount"]) for t in read["transactions"]] == [
        ("issue", 10000),
        ("hold", 4000),
        ("capture", 2500),
        ("release", 1500),
    ]
    assert sum(t["balance_change"] for t in read["transactions"]) == read["balance"]


def test_capture_more_than_held_is_refused(client, admin, storefront):
    gc = issue(client, admin, amount=10000)
    held = hold(client, storefront, gc["code"], 1000).get_json()
    response = client.post(
        f"/v1/gift-card-holds/{held['id']}/capture", json={"amount": 1001}, headers=storefront
    )
    assert response.status_code == 422
    assert card(client, admin, gc["id"])["held_amount"] == 1000


def test_hold_beyond_the_balance_is_insufficient_funds(client, admin, storefront):
    gc = issue(client, admin, amount=1000)
    assert hold(client, storefront, gc["code"], 600).status_code == 201
    response = hold(client, storefront, gc["code"], 500)
    assert response.status_code == 422
    assert response.get_json()["type"] == "insufficient-funds"
    assert response.get_json()["available"] == 400
    assert card(client, admin, gc["id"])["balance"] == 400
    assert hold(client, storefront, "0000000000000000", 1).status_code == 404


def test_void_gives_the_whole_hold_back(client, admin, storefront):
    gc = issue(client, admin, amount=1000)
    held = hold(client, storefront, gc["code"], 700).get_json()
    response = client.post(f"/v1/gift-card-holds/{held['id']}/void", headers=storefront)
    assert response.status_code == 200
    assert response.get_json()["status"] == "voided"
    assert response.get_json()["card"]["balance"] == 1000
    missing = client.post("/v1/gift-card-holds/999999/void", headers=storefront)
    assert missing.status_code == 404


def test_refunds_credit_at_most_what_the_order_captured(client, admin, storefront):
    gc = issue(client, admin, amount=10000)
    held = hold(client, storefront, gc["code"], 3000, order_id="ord_r").get_json()
    client.post(f"/v1/gift-card-holds/{held['id']}/capture", headers=storefront)
    url = f"/v1/gift-cards/{gc['id']}/refunds"
    first = client.post(url, json={"amount": 1000, "order_id": "ord_r"}, headers=admin)
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["balance"] == 8000
    too_much = client.post(url, json={"amount": 2001, "order_id": "ord_r"}, headers=admin)
    assert too_much.status_code == 422
    assert too_much.get_json()["refundable"] == 2000
    other = client.post(url, json={"amount": 1, "order_id": "ord_other"}, headers=admin)
    assert other.status_code == 422
    assert card(client, admin, gc["id"])["refunded_amount"] == 1000


def test_disabling_is_for_good_and_releases_open_holds(client, admin, storefront):
    gc = issue(client, admin, amount=5000)
    held = hold(client, storefront, gc["code"], 2000).get_json()
    response = client.post(f"/v1/gift-cards/{gc['id']}/disable", headers=admin)
    assert response.status_code == 200
    assert response.get_json()["status"] == "disabled"
    assert response.get_json()["held_amount"] == 0
    capture = client.post(f"/v1/gift-card-holds/{held['id']}/capture", headers=storefront)
    assert capture.status_code == 409
    assert hold(client, storefront, gc["code"], 1).status_code == 404
    refund = client.post(
        f"/v1/gift-cards/{gc['id']}/refunds", json={"amount": 1, "order_id": "o"}, headers=admin
    )
    assert refund.status_code == 409
    again = client.post(f"/v1/gift-cards/{gc['id']}/disable", headers=admin)
    assert again.status_code == 200 and again.get_json()["status"] == "disabled"


def test_list_filters_by_status_and_source_and_pages(client, admin):
    made = [issue(client, admin, amount=100 + i) for i in range(3)]
    client.post(f"/v1/gift-cards/{made[0]['id']}/disable", headers=admin)
    page = client.get("/v1/gift-cards?limit=2", headers=admin).get_json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert all("code" not in item for item in page["items"])
    rest = client.get(f"/v1/gift-cards?limit=2&cursor={page['next_cursor']}", headers=admin)
    ids = [c["id"] for c in page["items"] + rest.get_json()["items"]]
    assert {m["id"] for m in made} <= set(ids)
    disabled = client.get("/v1/gift-cards?status=disabled", headers=admin).get_json()["items"]
    assert [c["id"] for c in disabled] == [made[0]["id"]]
    active = client.get("/v1/gift-cards?status=active&source=admin", headers=admin).get_json()
    assert made[0]["id"] not in [c["id"] for c in active["items"]]
    assert client.get("/v1/gift-cards?source=stripe", headers=admin).get_json()["items"] == []
    assert client.get("/v1/gift-cards?status=lost", headers=admin).status_code == 422


def test_holds_expire_on_their_own_once(client, admin, storefront, runner):
    gc = issue(client, admin, amount=5000)
    held = hold(client, storefront, gc["code"], 2000, expires_in=60).get_json()
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    result = runner.invoke(args=["loyalty", "jobs", "expire-holds", "--now", later])
    assert result.exit_code == 0, result.output
    assert "expire-holds: 1 changed" in result.output
    read = card(client, admin, gc["id"])
    assert read["balance"] == 5000 and read["held_amount"] == 0
    assert read["transactions"][-1]["kind"] == "release"
    assert read["transactions"][-1]["detail"] == {"reason": "expired"}
    assert (
        client.post(f"/v1/gift-card-holds/{held['id']}/capture", headers=storefront).status_code
        == 409
    )
    again = runner.invoke(args=["loyalty", "jobs", "expire-holds", "--now", later])
    assert "expire-holds: 0 changed" in again.output


def test_expired_cards_lose_their_balance_and_look_unknown(client, admin, storefront, runner):
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    gc = issue(client, admin, amount=3000, expires_at=soon)
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    result = runner.invoke(args=["loyalty", "jobs", "expire-gift-cards", "--now", later])
    assert result.exit_code == 0, result.output
    read = card(client, admin, gc["id"])
    assert read["status"] == "expired" and read["balance"] == 0 and read["expired_amount"] == 3000
    assert read["transactions"][-1]["kind"] == "expire"
    assert lookup(client, storefront, gc["code"]).status_code == 404
    again = runner.invoke(args=["loyalty", "jobs", "expire-gift-cards", "--now", later])
    assert "expire-gift-cards: 0 changed" in again.output


def test_order_paid_captures_its_holds_and_earns_on_what_the_card_paid(client, admin, storefront):
    gc = issue(client, admin, amount=10000)
    held = hold(client, storefront, gc["code"], 6000, order_id="ord_gc").get_json()
    event = f.paid(
        order_id="ord_gc",
        lines=[f.line("S1", unit_price=6000)],
        gift_card_holds=[str(held["id"]), "12345678", "99999999999999999999", "-1"],
    )
    response = client.post("/v1/events", json=event, headers=storefront)
    assert response.status_code == 200, response.get_json()
    effects = response.get_json()["effects"]
    assert effects[0]["kind"] == "earn" and effects[0]["points"] == 60  # paying with a card earns
    assert {"kind": "gift_card_capture", "hold_id": str(held["id"]), "status": "captured",
            "amount": 6000} in effects  # fmt: skip
    for wrong in ("12345678", "99999999999999999999", "-1"):
        assert {"kind": "gift_card_capture", "hold_id": wrong, "status": "failed",
                "reason": "not_found"} in effects  # fmt: skip
    assert card(client, admin, gc["id"])["captured_amount"] == 6000


def test_buying_a_gift_card_earns_nothing(client, storefront):
    event = f.paid(customer_id="c_buyer", lines=[f.line("GC50", unit_price=5000, gift_card=True)])
    response = client.post("/v1/events", json=event, headers=storefront)
    assert response.status_code == 200
    member = response.get_json()["member"]
    assert member["points"]["pending"] == 0 and member["qualifying_spend"] == 0


def test_order_canceled_voids_the_orders_holds(client, admin, storefront):
    gc = issue(client, admin, amount=10000)
    hold(client, storefront, gc["code"], 1500, order_id="ord_c")
    hold(client, storefront, gc["code"], 500, order_id="ord_c")
    response = client.post("/v1/events", json=f.canceled("ord_c"), headers=storefront)
    assert response.status_code == 200, response.get_json()
    voids = [e for e in response.get_json()["effects"] if e["kind"] == "gift_card_void"]
    assert [e["status"] for e in voids] == ["voided", "voided"]
    assert card(client, admin, gc["id"])["balance"] == 10000


def test_transactions_are_immutable(client, admin, session):
    gc = issue(client, admin, amount=100)
    txn = session.scalar(select(GiftCardTransaction).where(GiftCardTransaction.card_id == gc["id"]))
    for statement in (
        "UPDATE gift_card_transactions SET amount = 1 WHERE id = :id",
        "DELETE FROM gift_card_transactions WHERE id = :id",
    ):
        nested = session.begin_nested()
        try:
            session.execute(text(statement), {"id": txn.id})
            raise AssertionError(f"{statement} was allowed")
        except Exception as exc:  # noqa: BLE001 - either database's trigger error
            assert "immutable" in str(exc)
        finally:
            nested.rollback()


def test_rotated_secret_still_finds_old_cards_and_rehashes_them(
    client, admin, storefront, app, session
):
    gc = issue(client, admin, amount=700)
    old = app.config["SECRET_KEYS"]
    app.config["SECRET_KEYS"] = [*old, "a-newer-secret"]
    try:
        assert lookup(client, storefront, gc["code"]).status_code == 200
        code = normalize_code(gc["code"])
        session.expire_all()
        assert session.get(GiftCard, gc["id"]).code_hash == codes.code_hash(code, "a-newer-secret")
        app.config["SECRET_KEYS"] = ["a-newer-secret"]
        assert lookup(client, storefront, gc["code"]).status_code == 200
    finally:
        app.config["SECRET_KEYS"] = old


def test_admin_adjustments_are_signed_and_never_overdraw(client, admin):
    gc = issue(client, admin, amount=1000)
    url = f"/v1/gift-cards/{gc['id']}/adjustments"
    credit = client.post(url, json={"amount": 250, "reason": "goodwill"}, headers=admin)
    assert credit.status_code == 201, credit.get_json()
    assert credit.get_json()["balance"] == 1250 and credit.get_json()["adjusted_amount"] == 250
    debit = client.post(url, json={"amount": -1250, "reason": "fraud"}, headers=admin)
    assert debit.status_code == 201 and debit.get_json()["balance"] == 0
    over = client.post(url, json={"amount": -1, "reason": "more"}, headers=admin)
    assert over.status_code == 422 and over.get_json()["type"] == "insufficient-funds"
    zero = client.post(url, json={"amount": 0, "reason": "nothing"}, headers=admin)
    assert zero.status_code == 422
    read = card(client, admin, gc["id"])
    assert [(t["kind"], t["balance_change"]) for t in read["transactions"]][1:] == [
        ("adjust", 250),
        ("adjust", -1250),
    ]
    assert read["transactions"][1]["detail"] == {"reason": "goodwill"}


def test_demo_seed_adds_a_card_with_the_documented_code(runner, client, storefront, session):
    from rewards.giftcards.seed import DEMO_CODE

    result = runner.invoke(args=["loyalty", "seed-demo"])
    assert result.exit_code == 0, result.output
    response = lookup(client, storefront, "dem0-g1ft-card-2026")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["balance"] == 5000 and response.get_json()["last4"] == "2026"
    assert normalize_code("DEM0-G1FT-CARD-2026") == DEMO_CODE


def test_program_currency_is_locked_once_a_gift_card_exists(client, admin):
    assert client.put("/v1/program", json={"currency": "EUR"}, headers=admin).status_code == 200
    assert client.put("/v1/program", json={"currency": "USD"}, headers=admin).status_code == 200
    issued = client.post("/v1/gift-cards", json={"amount": 5000, "currency": "USD"}, headers=admin)
    assert issued.status_code == 201
    refused = client.put("/v1/program", json={"currency": "EUR"}, headers=admin)
    assert refused.status_code == 409 and refused.get_json()["type"] == "conflict"
    assert client.get("/v1/program", headers=admin).get_json()["currency"] == "USD"


def test_order_paid_captures_a_hold_without_reading_back_what_it_wrote(client, admin, storefront):
    gc = issue(client, admin, amount=10000)
    held = hold(client, storefront, gc["code"], 6000, order_id="ord_gc2").get_json()
    paid = f.paid(order_id="ord_gc2", lines=[f.line(unit_price=6000)],
                  gift_card_holds=[str(held["id"])])  # fmt: skip
    with of_handler(GiftCardHolds) as calls:
        assert client.post("/v1/events", json=f.paid(), headers=storefront).status_code == 200
        response = client.post("/v1/events", json=paid, headers=storefront)
    assert response.status_code == 200, response.get_json()
    assert calls[0] == []  # no holds listed: nothing sent
    # The hold, the card's lock, the two UPDATEs (RETURNING what they wrote), the capture.
    assert [" ".join(s.split(" ")[:2]) for s in calls[1]] == [
        "SELECT gift_card_holds.id,",
        "SELECT gift_cards.id",
        "UPDATE gift_card_holds",
        "UPDATE gift_cards",
        "INSERT INTO",
    ]
    assert card(client, admin, gc["id"])["balance"] == 4000
    again = hold(client, storefront, gc["code"], 1000, order_id="ord_gc3").get_json()
    assert (
        client.post(f"/v1/gift-card-holds/{again['id']}/void", headers=storefront).json["card"][
            "balance"
        ]
        == 4000
    )
