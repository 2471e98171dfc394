"""Shopify in: webhooks signed exactly as Shopify signs them, mapped into the order flow of
`POST /v1/events` and `POST /v1/members`, and the mapping the bulk import calls."""

import base64
import hashlib
import hmac
import json
import uuid

import pytest
from sqlalchemy import select

from connectors import shopify
from connectors.models import ConnectorDelivery
from loyalty.audit import AuditLog
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.orders.models import Order, ProcessedEvent
from tests.connectors import shopify_payloads as s

SECRETS = ["shpss_old_app_secret", "shpss_new_app_secret"]
URL = "/v1/connectors/shopify/webhooks"


@pytest.fixture(autouse=True)
def _secrets(request, monkeypatch):
    if "app" in request.fixturenames:  # the mapping's own tests need no app
        app = request.getfixturevalue("app")
        monkeypatch.setitem(app.config, "SHOPIFY_WEBHOOK_SECRETS", list(SECRETS))


def sign(body: bytes, secret: str = SECRETS[-1]) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def deliver(client, topic: str, payload: dict, *, webhook_id=None, secret=SECRETS[-1],
            signature=None):  # fmt: skip
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature if signature is not None else sign(body, secret),
        "X-Shopify-Shop-Domain": "example.myshopify.com",
        "X-Shopify-API-Version": "2025-07",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": s.now(),
    }
    if signature == "":
        del headers["X-Shopify-Hmac-Sha256"]
    return client.post(URL, data=body, headers=headers)


def ok(response, status="applied"):
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == status, body
    return body


def member_of(client, storefront, buyer):
    response = client.get(f"/v1/members/shopify:{buyer['id']}", headers=storefront)
    return response.get_json() if response.status_code == 200 else None


def points(client, storefront, buyer) -> dict:
    return member_of(client, storefront, buyer)["points"]


def activity(client, storefront, buyer) -> list[dict]:
    response = client.get(f"/v1/members/shopify:{buyer['id']}/activity", headers=storefront)
    return response.get_json()["items"]


def deliveries(session) -> list[ConnectorDelivery]:
    session.expire_all()
    return session.scalars(select(ConnectorDelivery).order_by(ConnectorDelivery.id)).all()


# --- signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "tampered", "other secret"])
def test_a_missing_or_wrong_signature_is_401_and_records_nothing(
    client, storefront, session, signature
):
    order = s.order([s.line_item("S1", "50.00")])
    body = json.dumps(order).encode()
    if signature == "tampered":  # signed, then changed
        signature = sign(body.replace(b'"50.00"', b'"5000.00"'))
    elif signature == "other secret":
        signature = sign(body, "shpss_someone_elses_secret")
    response = deliver(client, "orders/paid", order, signature=signature)
    assert response.status_code == 401
    assert response.get_json()["type"] == "unauthorized"
    assert deliveries(session) == []
    assert member_of(client, storefront, order["customer"]) is None


def test_every_secret_of_a_rotation_verifies(client, storefront):
    first = s.order([s.line_item("S1", "20.00")])
    ok(deliver(client, "orders/paid", first, secret=SECRETS[0]))
    second = s.order([s.line_item("S1", "30.00")])
    ok(deliver(client, "orders/paid", second, secret=SECRETS[1]))
    assert points(client, storefront, first["customer"])["pending"] == 20
    assert points(client, storefront, second["customer"])["pending"] == 30


# --- orders/paid -----------------------------------------------------------------------------


def test_paid_order_earns_on_eligible_spend_once_under_two_webhook_ids(client, storefront, session):
    order = s.order(
        [
            s.line_item("TEE", "25.00", 2),
            s.line_item("MUG", "50.00", discount="5.00"),  # a discount allocated to the line
            s.line_item(None, "40.00", gift_card=True),  # buying a gift card never earns
        ],
        shipping="10.00",
        total_tax="8.00",
    )
    first = ok(deliver(client, "orders/paid", order))
    assert first["event_id"] == f"shopify:order:{order['id']}:paid"
    assert first["duplicate"] is False
    # Shopify delivers the same order again under another webhook id: one order.
    again = ok(deliver(client, "orders/paid", order))
    assert again["duplicate"] is True
    # 2 × 25.00 + 50.00 − 5.00 = 95.00 eligible; gift card, shipping and tax excluded.
    assert points(client, storefront, order["customer"]) == {
        "available": 0, "pending": 95, "lifetime_earned": 95,
    }  # fmt: skip
    earned = [e for e in activity(client, storefront, order["customer"]) if e["kind"] == "earn"]
    assert [e["points"] for e in earned] == [95]
    member = member_of(client, storefront, order["customer"])
    assert (member["email"], member["name"]) == ("bob.norman@example.com", "Bob Norman")
    assert [(d.topic, d.status) for d in deliveries(session)] == [("orders/paid", "applied")] * 2


def test_a_retry_of_one_delivery_is_answered_from_its_record(client, storefront, session):
    order = s.order([s.line_item("S1", "12.00")])
    ok(deliver(client, "orders/paid", order, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"))
    again = ok(
        deliver(client, "orders/paid", order, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    )
    assert again["event_id"] == f"shopify:order:{order['id']}:paid"
    assert points(client, storefront, order["customer"])["pending"] == 12
    assert len(deliveries(session)) == 1


def test_presentment_currency_is_ignored_for_shop_money(client, storefront):
    # The shop runs in USD; the buyer paid in EUR. Points come from the shop's amounts.
    line = s.line_item("S1", "60.00", presentment="55.20", presentment_currency="EUR",
                       discount="6.00")  # fmt: skip
    line["discount_allocations"][0]["amount_set"]["presentment_money"]["amount"] = "5.52"
    order = s.order([line], presentment_currency="EUR", shipping_presentment="9.20")
    ok(deliver(client, "orders/paid", order))
    assert points(client, storefront, order["customer"])["pending"] == 54


def test_another_shop_currency_is_422_and_recorded_refused(client, storefront, session):
    order = s.order([s.line_item("S1", "50.00", currency="EUR")], currency="EUR")
    response = deliver(client, "orders/paid", order)
    assert response.status_code == 422
    assert response.get_json()["type"] == "currency-mismatch"
    assert member_of(client, storefront, order["customer"]) is None
    [record] = deliveries(session)  # kept though the request's transaction rolled back
    assert (record.status, record.event_id) == ("refused", f"shopify:order:{order['id']}:paid")
    assert "EUR" in record.reason and "USD" in record.reason
    # Its refunds are skipped, not retried for days.
    refund = s.refund(order, [(order["line_items"][0], 1)], currency="EUR")
    body = ok(deliver(client, "refunds/create", refund), "skipped")
    assert "not taken" in body["reason"]


def test_a_refused_delivery_taken_on_its_retry_is_recorded_applied(
    client, storefront, admin, session
):
    """Shopify retries a delivery it saw refused under the same webhook id; once the program
    can take it, the record says what became of it, not the old refusal."""
    order = s.order([s.line_item("S1", "50.00", currency="EUR")], currency="EUR")
    assert deliver(client, "orders/paid", order, webhook_id="w-retry").status_code == 422
    changed = client.put("/v1/program", json={"currency": "EUR"}, headers=admin)
    assert changed.status_code == 200, changed.get_json()
    ok(deliver(client, "orders/paid", order, webhook_id="w-retry"))
    [record] = deliveries(session)
    assert (record.status, record.reason) == ("applied", None)
    # Answered from its record from now on, not run again.
    assert ok(deliver(client, "orders/paid", order, webhook_id="w-retry"))["event_id"] == (
        f"shopify:order:{order['id']}:paid"
    )


def test_a_guest_order_earns_nothing_and_is_recorded_skipped(client, session):
    order = s.order([s.line_item("S1", "80.00")], buyer=None)
    body = ok(deliver(client, "orders/paid", order), "skipped")
    assert "guest" in body["reason"]
    [record] = deliveries(session)
    assert (record.topic, record.status) == ("orders/paid", "skipped")
    refund = s.refund(order, [(order["line_items"][0], 1)])
    assert "guest" in ok(deliver(client, "refunds/create", refund), "skipped")["reason"]


def test_store_discount_codes_do_not_fail_the_order_and_reward_codes_are_used(
    client, storefront, admin
):
    buyer = s.customer()
    ok(deliver(client, "customers/create", buyer))
    member_id = f"shopify:{buyer['id']}"
    reward = client.post("/v1/rewards", headers=admin, json={
        "name": "5 off", "points_cost": 100, "kind": "amount_off", "amount": 500,
        "code_valid_days": 30,
    }).get_json()  # fmt: skip
    client.post(f"/v1/members/{member_id}/adjustments", headers=admin,
                json={"points": 100, "reason": "welcome"})  # fmt: skip
    redemption = client.post(f"/v1/members/{member_id}/redemptions", headers=storefront,
                             json={"reward_id": reward["id"]}).get_json()  # fmt: skip
    code = redemption["code"]
    order = s.order(
        [s.line_item("S1", "40.00", discount="5.00"), s.line_item("S2", "20.00", discount="5.00")],
        buyer=buyer,
        discount_codes=[code, "SUMMER10"],
    )
    ok(deliver(client, "orders/paid", order))
    assert points(client, storefront, buyer)["pending"] == 50  # (40 − 5) + (20 − 5)
    codes = client.get(f"/v1/members/{member_id}/redemptions", headers=storefront).get_json()
    assert [item["status"] for item in codes["items"]] == ["used"]


# --- refunds and cancellations ---------------------------------------------------------------


def test_a_partial_line_refund_reverses_in_proportion(client, storefront, session):
    tee = s.line_item("TEE", "25.00", 4, discount="10.00")  # 90.00 eligible, 22.50 a shirt
    order = s.order([tee, s.line_item("MUG", "10.00")])
    ok(deliver(client, "orders/paid", order))
    assert points(client, storefront, order["customer"])["pending"] == 100
    body = ok(deliver(client, "refunds/create", s.refund(order, [(tee, 1)])))
    assert body["event_id"].startswith("shopify:refund:")
    assert points(client, storefront, order["customer"])["pending"] == 78  # 100 − 22 (of 22.50)
    reversal = activity(client, storefront, order["customer"])[0]
    assert reversal["points"] == -22


def test_a_full_refund_in_two_parts_nets_zero(client, storefront):
    tee, mug = s.line_item("TEE", "33.33", 3), s.line_item("MUG", "12.34")
    order = s.order([tee, mug])
    ok(deliver(client, "orders/paid", order))
    assert points(client, storefront, order["customer"])["pending"] == 112  # 99.99 + 12.34
    ok(deliver(client, "refunds/create", s.refund(order, [(tee, 1)])))
    last = s.refund(order, [(tee, 2), (mug, 1)], shipping="10.00")
    ok(deliver(client, "refunds/create", last))
    assert points(client, storefront, order["customer"]) == {
        "available": 0, "pending": 0, "lifetime_earned": 0,
    }  # fmt: skip


def test_a_refund_of_shipping_only_is_skipped(client, storefront, session):
    order = s.order([s.line_item("S1", "30.00")], shipping="12.00")
    ok(deliver(client, "orders/paid", order))
    body = ok(deliver(client, "refunds/create", s.refund(order, shipping="12.00")), "skipped")
    assert "shipping" in body["reason"]
    assert points(client, storefront, order["customer"])["pending"] == 30
    assert deliveries(session)[-1].status == "skipped"


def test_a_refund_of_money_without_items_reverses_that_amount(client, storefront):
    order = s.order([s.line_item("S1", "80.00")])
    ok(deliver(client, "orders/paid", order))
    ok(deliver(client, "refunds/create", s.refund(order, discrepancy="20.00")))
    assert points(client, storefront, order["customer"])["pending"] == 60


def test_a_refund_before_its_order_is_409_and_taken_once_the_order_came(client, storefront):
    line = s.line_item("S1", "50.00", 2)
    order = s.order([line])
    refund = s.refund(order, [(line, 1)])
    response = deliver(client, "refunds/create", refund)
    assert response.status_code == 409  # Shopify sends it again later
    ok(deliver(client, "orders/paid", order))
    ok(deliver(client, "refunds/create", refund))
    assert points(client, storefront, order["customer"])["pending"] == 50


def test_a_cancellation_before_payment_cancels_and_after_payment_is_skipped(
    client, storefront, session
):
    unpaid = s.order([s.line_item("S1", "50.00")], financial_status="voided",
                     cancelled_at=s.now(), cancel_reason="customer")  # fmt: skip
    body = ok(deliver(client, "orders/cancelled", unpaid))
    assert body["event_id"] == f"shopify:order:{unpaid['id']}:canceled"
    from loyalty.orders.models import Order

    assert (
        session.scalar(select(Order.status).where(Order.order_id == f"shopify:{unpaid['id']}"))
        == "canceled"
    )

    paid = s.order([s.line_item("S1", "50.00")])
    ok(deliver(client, "orders/paid", paid))
    paid.update(cancelled_at=s.now(), cancel_reason="customer", financial_status="refunded")
    body = ok(deliver(client, "orders/cancelled", paid), "skipped")
    assert "refunds" in body["reason"]
    assert points(client, storefront, paid["customer"])["pending"] == 50


def test_an_order_edited_after_payment_keeps_what_it_earned_and_removals_refund(
    client, storefront, session
):
    tee = s.line_item("TEE", "20.00", 3)
    order = s.order([tee])
    ok(deliver(client, "orders/paid", order))
    # Edited after payment: a mug added and paid for, sent again as orders/paid.
    edited = json.loads(json.dumps(order))
    edited["line_items"].append(s.line_item("MUG", "15.00"))
    body = ok(deliver(client, "orders/paid", edited), "skipped")
    assert "first version stands" in body["reason"]
    assert points(client, storefront, order["customer"])["pending"] == 60
    # An edit that takes a shirt off comes as a refund of that item (no money moved yet).
    removal = s.refund(order, [(tee, 1)], restock_type="cancel", transactions=False)
    ok(deliver(client, "refunds/create", removal))
    assert points(client, storefront, order["customer"])["pending"] == 40


# --- customers and GDPR ----------------------------------------------------------------------


def test_customers_create_enrols_once(client, storefront, session):
    buyer = s.customer(email="Ana.Silva@Example.com", first="Ana", last="Silva")
    assert ok(deliver(client, "customers/create", buyer))["reason"] == "enrolled"
    member = member_of(client, storefront, buyer)
    assert (member["id"], member["name"]) == (f"shopify:{buyer['id']}", "Ana Silva")
    assert member["points"] == {"available": 0, "pending": 0, "lifetime_earned": 0}
    assert ok(deliver(client, "customers/create", buyer))["reason"] == "already a member"
    no_email = s.customer(email=None)
    assert "email" in ok(deliver(client, "customers/create", no_email), "skipped")["reason"]
    assert member_of(client, storefront, no_email) is None


def test_customers_redact_erases_the_member(client, storefront, admin, session):
    order = s.order([s.line_item("S1", "50.00")])
    ok(deliver(client, "orders/paid", order))
    buyer = order["customer"]
    asked = {"shop_id": 954889, "shop_domain": "example.myshopify.com", "orders_requested": [],
             "customer": {"id": buyer["id"], "email": buyer["email"], "phone": None},
             "data_request": {"id": 9998}}  # fmt: skip
    ok(deliver(client, "customers/data_request", asked))
    request = {"shop_id": 954889, "shop_domain": "example.myshopify.com",
               "customer": {"id": buyer["id"], "email": buyer["email"], "phone": None},
               "orders_to_redact": [order["id"]]}  # fmt: skip
    assert ok(deliver(client, "customers/redact", request))["reason"] == "member erased"
    assert member_of(client, storefront, buyer) is None
    response = client.get(f"/v1/members/shopify:{buyer['id']}/export", headers=admin)
    assert response.status_code == 404
    session.expire_all()
    logged = session.scalars(
        select(AuditLog).where(AuditLog.action.like("member.%")).order_by(AuditLog.id)
    ).all()
    assert [entry.action for entry in logged] == ["member.data_request", "member.erase"]
    assert logged[0].after["customer_id"] is None  # erasure leaves no copy of the id
    again = ok(deliver(client, "customers/redact", request), "skipped")
    assert "no member" in again["reason"]


def test_customers_redact_of_a_customer_who_never_enrolled_scrubs_their_orders(
    client, storefront, admin, session
):
    """With auto-enrolment off, a paid order is kept under the Shopify customer id without a
    member: the redaction still takes their id, mailbox and order attributes off it, and out
    of the event's stored answer."""
    assert client.put("/v1/program", json={"auto_enroll": False}, headers=admin).status_code == 200
    order = s.order([s.line_item("S1", "50.00")])
    ok(deliver(client, "orders/paid", order))
    buyer = order["customer"]
    customer_id = f"shopify:{buyer['id']}"
    request = {"shop_id": 954889, "shop_domain": "example.myshopify.com",
               "customer": {"id": buyer["id"], "email": buyer["email"], "phone": None},
               "orders_to_redact": [order["id"]]}  # fmt: skip
    ok(deliver(client, "customers/redact", request))
    session.expire_all()
    stored = session.scalar(select(Order).where(Order.order_id == f"shopify:{order['id']}"))
    assert (stored.customer_id, stored.email_normalized, stored.attributes) == (None, None, {})
    answer = session.get(ProcessedEvent, f"shopify:order:{order['id']}:paid").response
    text = json.dumps(answer).casefold()
    assert customer_id.casefold() not in text and buyer["email"].casefold() not in text


def test_customers_data_request_is_recorded_and_the_export_is_there(client, admin, session):
    order = s.order([s.line_item("S1", "50.00")])
    ok(deliver(client, "orders/paid", order))
    buyer = order["customer"]
    request = {"shop_id": 954889, "shop_domain": "example.myshopify.com",
               "orders_requested": [order["id"]],
               "customer": {"id": buyer["id"], "email": buyer["email"], "phone": None},
               "data_request": {"id": 9999}}  # fmt: skip
    ok(deliver(client, "customers/data_request", request))
    entry = session.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
    assert entry.action == "member.data_request"
    assert entry.after == {"shop": "example.myshopify.com", "data_request_id": 9999,
                           "customer_id": f"shopify:{buyer['id']}",
                           "orders_requested": [order["id"]]}  # fmt: skip
    export = client.get(f"/v1/members/shopify:{buyer['id']}/export", headers=admin).get_json()
    assert export["profile"]["email"] == buyer["email"]
    assert [o["id"] for o in export["orders"]] == [f"shopify:{order['id']}"]
    assert deliveries(session)[-1].topic == "customers/data_request"


def test_shop_redact_erases_every_shopify_member_and_no_one_else(client, storefront, session):
    buyers = [s.order([s.line_item("S1", "10.00")]) for _ in range(2)]
    for order in buyers:
        ok(deliver(client, "orders/paid", order))
    other = client.post("/v1/members", headers=storefront,
                        json={"id": "pos_7", "email": "pos@example.com"})  # fmt: skip
    assert other.status_code == 201
    body = ok(deliver(client, "shop/redact", {"shop_id": 954889,
                                              "shop_domain": "example.myshopify.com"}))  # fmt: skip
    assert body["reason"] == "2 members erased"
    for order in buyers:
        assert member_of(client, storefront, order["customer"]) is None
    assert client.get("/v1/members/pos_7", headers=storefront).status_code == 200


def test_shop_redact_also_scrubs_orders_of_buyers_who_never_enrolled(client, admin, session):
    assert client.put("/v1/program", json={"auto_enroll": False}, headers=admin).status_code == 200
    order = s.order([s.line_item("S1", "10.00")])
    ok(deliver(client, "orders/paid", order))
    ok(deliver(client, "shop/redact", {"shop_id": 954889, "shop_domain": "example.myshopify.com"}))
    session.expire_all()
    stored = session.scalar(select(Order).where(Order.order_id == f"shopify:{order['id']}"))
    assert (stored.customer_id, stored.email_normalized, stored.attributes) == (None, None, {})


def test_a_payload_not_shaped_as_the_topic_says_is_refused_and_recorded(client, session):
    response = deliver(client, "orders/paid", {"order_number": 1001, "line_items": []})
    assert response.status_code == 422
    assert deliveries(session)[-1].status == "refused"


def test_a_signed_body_sent_again_under_another_topic_is_refused(client, storefront, session):
    order = s.order([s.line_item("S1", "50.00")])
    ok(deliver(client, "orders/paid", order))
    # The topic header is not signed: an order's body as customers/redact erases no one.
    assert deliver(client, "customers/redact", order).status_code == 422
    assert deliver(client, "shop/redact", order).status_code == 422
    redact = {"shop_id": 954889, "shop_domain": "example.myshopify.com",
              "customer": {"id": 1, "email": "x@example.com", "phone": None},
              "orders_to_redact": []}  # fmt: skip
    assert deliver(client, "shop/redact", redact).status_code == 422
    assert points(client, storefront, order["customer"])["pending"] == 50
    assert [d.status for d in deliveries(session)] == ["applied"] + ["refused"] * 3


def test_a_topic_not_taken_is_recorded_skipped(client, session):
    ok(deliver(client, "products/update", {"id": 632910392, "title": "IPod Nano"}), "skipped")
    assert deliveries(session)[-1].topic == "products/update"


# --- the mapping the import calls ------------------------------------------------------------


def test_events_from_order_maps_a_rest_order_with_its_refunds():
    tee = s.line_item("TEE", "25.00", 2, discount="4.00", tax="3.68")
    gift = s.line_item(None, "30.00", gift_card=True)
    order = s.order([tee, gift], total_tax="3.68", financial_status="partially_refunded",
                    discount_codes=["SUMMER10"],
                    note_attributes=[{"name": "referral_code", "value": "FRIEND42"}])  # fmt: skip
    order["browser_ip"] = None
    order["client_details"]["browser_ip"] = "::ffff:198.51.100.4"
    order["refunds"] = [s.refund(order, shipping="10.00"), s.refund(order, [(tee, 1)])]
    mapped = shopify.events_from_order(order, "USD")
    assert mapped.skipped_reason is None
    paid, refund = mapped.events  # the shipping-only refund is left out
    assert paid == {
        "id": f"shopify:order:{order['id']}:paid",
        "type": "order.paid",
        "occurred_at": order["processed_at"],
        "order": {
            "id": f"shopify:{order['id']}",
            "customer_id": f"shopify:{order['customer']['id']}",
            "currency": "USD",
            "email": "bob.norman@example.com",
            "name": "Bob Norman",
            "lines": [
                {"sku": "TEE", "quantity": 2, "unit_price": 2500, "discount": 400},
                {
                    "sku": f"shopify-line:{gift['id']}",
                    "quantity": 1,
                    "unit_price": 3000,
                    "discount": 0,
                    "gift_card": True,
                },
            ],  # fmt: skip
            "shipping": 1000,
            "tax": 368,
            "reward_codes": ["SUMMER10"],
            "referral_code": "FRIEND42",
            "ip": "198.51.100.4",
            "shipping_address_hash": paid["order"]["shipping_address_hash"],
        },
    }
    assert len(paid["order"]["shipping_address_hash"]) == 64
    assert refund["type"] == "order.refunded"
    assert refund["order"] == {"id": f"shopify:{order['id']}",
                               "customer_id": f"shopify:{order['customer']['id']}",
                               "currency": "USD"}  # fmt: skip
    assert refund["refund"] == {"id": f"shopify:{order['refunds'][1]['id']}",
                                "lines": [{"sku": "TEE", "quantity": 1}]}  # fmt: skip


def test_events_from_order_with_prices_including_tax_takes_the_tax_off_the_lines():
    order = s.order([s.line_item("S1", "12.00", tax="2.00")], taxes_included=True,
                    total_tax="2.00")  # fmt: skip
    order["shipping_lines"][0]["tax_lines"] = [s.tax_line("1.00")]
    [paid] = shopify.events_from_order(order, "USD").events
    assert paid["order"]["lines"][0] == {"sku": "S1", "quantity": 1, "unit_price": 1200,
                                         "discount": 200}  # fmt: skip
    assert (paid["order"]["shipping"], paid["order"]["tax"]) == (900, 200)


@pytest.mark.parametrize(
    ("changes", "reason", "refused"),
    [
        ({"customer": None}, "guest checkout", False),
        ({"currency": "EUR"}, "currency EUR", True),
        ({"financial_status": "pending"}, "not paid", False),
        ({"financial_status": "partially_paid"}, "not paid", False),
    ],
)
def test_events_from_order_says_why_it_skips(changes, reason, refused):
    order = {**s.order([s.line_item("S1", "10.00")]), **changes}
    mapped = shopify.events_from_order(order, "USD")
    assert mapped.events == []
    assert reason in mapped.skipped_reason
    assert mapped.refused is refused


def test_events_from_order_of_an_order_cancelled_before_payment():
    order = s.order([s.line_item("S1", "10.00")], financial_status="voided",
                    cancelled_at="2026-11-23T10:00:00-05:00")  # fmt: skip
    [event] = shopify.events_from_order(order, "USD").events
    assert event == {
        "id": f"shopify:order:{order['id']}:canceled",
        "type": "order.canceled",
        "occurred_at": "2026-11-23T10:00:00-05:00",
        "order": {
            "id": f"shopify:{order['id']}",
            "customer_id": f"shopify:{order['customer']['id']}",
            "currency": "USD",
        },
    }


def test_an_imported_order_after_its_webhooks_is_the_same_order(client, storefront, app):
    tee = s.line_item("TEE", "10.00", 3)
    order = s.order([tee])
    refund = s.refund(order, [(tee, 1)])
    ok(deliver(client, "orders/paid", order))
    ok(deliver(client, "refunds/create", refund))
    order["refunds"] = [refund]
    order["financial_status"] = "partially_refunded"
    mapped = shopify.events_from_order(order, "USD")
    with app.test_request_context():
        outcomes = [shopify.take_event(db.session, hooks(), event) for event in mapped.events]
    assert [json.loads(o.answer)["duplicate"] for o in outcomes] == [True, True]
    assert points(client, storefront, order["customer"])["pending"] == 20


def test_an_address_that_is_not_one_is_dropped():
    order = s.order([s.line_item("S1", "10.00")])
    order["browser_ip"] = "203.0.113.09"
    order["client_details"]["browser_ip"] = "localhost"
    [paid] = shopify.events_from_order(order, "USD").events
    assert "ip" not in paid["order"]


@pytest.mark.postgres
@pytest.mark.concurrency
def test_one_order_delivered_8_times_at_once_under_8_webhook_ids_earns_once(pg_app, pg_keys):
    from concurrent.futures import ThreadPoolExecutor

    from loyalty.ledger import find_drift

    pg_app.config["SHOPIFY_WEBHOOK_SECRETS"] = list(SECRETS)
    order = s.order([s.line_item("S1", "123.45")])

    def send(_):
        response = deliver(pg_app.test_client(), "orders/paid", order)
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))
    assert {status for status, _ in results} == {200}
    assert sorted(body["duplicate"] for _, body in results) == [False] + [True] * 7
    client = pg_app.test_client()
    assert points(client, pg_keys["storefront"], order["customer"])["pending"] == 123
    with pg_app.app_context():
        assert len(db.session.scalars(select(ConnectorDelivery)).all()) == 8
        assert find_drift(db.session) == []
