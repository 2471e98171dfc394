"""WooCommerce webhooks in: signed exactly as WooCommerce signs, mapped into the order flow."""

import base64
import hashlib
import hmac
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from connectors.models import ConnectorDelivery
from connectors.woocommerce import events_from_order
from loyalty.ledger import find_drift
from loyalty.orders.models import Order, ProcessedEvent
from tests.rewards.helpers import make_member, make_reward, redeem

URL = "/v1/connectors/woocommerce/webhooks"
SECRET = "wc-secret-new"  # noqa: S105 - a test value
_deliveries = itertools.count(1)


@pytest.fixture(autouse=True)
def secrets(app, monkeypatch):
    monkeypatch.setitem(app.config, "WOOCOMMERCE_WEBHOOK_SECRETS", ["wc-secret-old", SECRET])


def wc_time(moment: datetime) -> str:
    """WooCommerce's `*_gmt` spelling: UTC without an offset."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def woo_order(order_id=727, *, status="processing", customer_id=12, currency="USD",
              line_items=None, coupons=(), refunds=(), shipping_total="5.00", total_tax="4.80",
              total=None, paid=True, ip="203.0.113.9"):  # fmt: skip
    """An order as WooCommerce's REST API v3 (and its order webhooks) sends it."""
    created = datetime.now(UTC) - timedelta(hours=1)
    if line_items is None:
        line_items = [
            {"id": 315, "name": "Woo Single #1", "product_id": 93, "variation_id": 0,
             "quantity": 2, "tax_class": "", "subtotal": "40.00", "subtotal_tax": "3.20",
             "total": "40.00", "total_tax": "3.20", "taxes": [], "meta_data": [],
             "sku": "WOO-1", "price": 20},
            {"id": 316, "name": "Ship Your Idea", "product_id": 22, "variation_id": 23,
             "quantity": 1, "tax_class": "", "subtotal": "20.00", "subtotal_tax": "1.60",
             "total": "20.00", "total_tax": "1.60", "taxes": [], "meta_data": [], "sku": "",
             "price": 20},
        ]  # fmt: skip
    goods = sum(int(item["total"].replace(".", "")) for item in line_items)
    if total is None:
        cents = goods + int(shipping_total.replace(".", "")) + int(total_tax.replace(".", ""))
        total = f"{cents // 100}.{cents % 100:02d}"
    return {
        "id": order_id, "parent_id": 0, "number": str(order_id), "order_key": "wc_order_58d2d",
        "created_via": "checkout", "version": "9.4.2", "status": status, "currency": currency,
        "date_created": wc_time(created), "date_created_gmt": wc_time(created),
        "date_modified": wc_time(created), "date_modified_gmt": wc_time(created),
        "discount_total": "0.00", "discount_tax": "0.00", "shipping_total": shipping_total,
        "shipping_tax": "0.00", "cart_tax": total_tax, "total": total, "total_tax": total_tax,
        "prices_include_tax": False, "customer_id": customer_id,
        "customer_ip_address": ip, "customer_user_agent": "Mozilla/5.0", "customer_note": "",
        "billing": {"first_name": "John", "last_name": "Doe", "company": "",
                    "address_1": "969 Market", "address_2": "", "city": "San Francisco",
                    "state": "CA", "postcode": "94103", "country": "US",
                    "email": "john.doe@example.com", "phone": "(555) 555-5555"},
        "shipping": {"first_name": "John", "last_name": "Doe", "address_1": "969 Market",
                     "city": "San Francisco", "state": "CA", "postcode": "94103",
                     "country": "US"},
        "payment_method": "bacs", "payment_method_title": "Direct Bank Transfer",
        "transaction_id": "", "date_paid": wc_time(created) if paid else None,
        "date_paid_gmt": wc_time(created) if paid else None, "date_completed": None,
        "date_completed_gmt": None, "cart_hash": "", "meta_data": [],
        "line_items": line_items, "tax_lines": [],
        "shipping_lines": [{"id": 317, "method_title": "Flat Rate", "method_id": "flat_rate",
                            "total": shipping_total, "total_tax": "0.00", "taxes": []}],
        "fee_lines": [], "coupon_lines": [
            {"id": 318 + n, "code": code, "discount": "10.00", "discount_tax": "0.00"}
            for n, code in enumerate(coupons)
        ],
        "refunds": [{"id": r[0], "reason": "", "total": r[1]} for r in reversed(refunds)],
        "set_paid": False,
    }  # fmt: skip


def sign(body: bytes, secret: str = SECRET) -> str:
    """What WooCommerce sends: base64 of the raw HMAC-SHA256 of the body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def deliver(client, topic, payload, *, secret=SECRET, signature=None, delivery_id=None):
    body = json.dumps(payload).encode()
    resource, event = topic.split(".")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7)",
        "X-WC-Webhook-Source": "https://shop.example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery_id or f"d{next(_deliveries):031x}",
    }
    if signature is not False:
        headers["X-WC-Webhook-Signature"] = sign(body, secret) if signature is None else signature
    return client.post(URL, data=body, headers=headers)


def deliveries(session):
    return session.scalars(select(ConnectorDelivery).order_by(ConnectorDelivery.id)).all()


def points(client, storefront, customer_id="woocommerce:12"):
    return client.get(f"/v1/members/{customer_id}", headers=storefront).get_json()["points"]


def test_missing_or_bad_signature_is_401_and_records_nothing(client, session):
    order = woo_order()
    for signature in (False, "", "bm90IGl0", sign(json.dumps(order).encode(), "wrong")):
        response = deliver(client, "order.updated", order, signature=signature)
        assert response.status_code == 401
        assert response.content_type == "application/problem+json"
    assert deliveries(session) == []
    assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_either_secret_of_a_rotation_verifies(client, session, storefront):
    assert deliver(client, "order.updated", woo_order(1), secret="wc-secret-old").status_code == 200
    assert deliver(client, "order.updated", woo_order(2), secret=SECRET).status_code == 200
    assert [d.status for d in deliveries(session)] == ["applied", "applied"]


def test_the_ping_on_webhook_creation_answers_200_and_changes_nothing(client, session):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    unsigned = client.post(URL, data=b"webhook_id=12", headers=form)
    signed = client.post(
        URL,
        data=b"webhook_id=12",
        headers={**form, "X-WC-Webhook-Signature": sign(b"webhook_id=12")},
    )
    for response in (unsigned, signed):
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["status"] == "ping"
    assert deliveries(session) == []


def test_status_walk_earns_once_and_a_full_refund_reverses_all(client, session, storefront):
    """pending → processing → completed → refunded, each an order.updated delivery."""
    assert (
        deliver(client, "order.created", woo_order(status="pending", paid=False)).json["status"]
        == "skipped"
    )
    assert client.get("/v1/members/woocommerce:12", headers=storefront).status_code == 404
    processing = deliver(client, "order.updated", woo_order(status="processing"))
    assert processing.status_code == 200, processing.get_json()
    assert processing.json["events"] == [{"id": "woocommerce:727:paid", "duplicate": False}]
    # 40.00 + 20.00 of goods earn; shipping 5.00 and tax 4.80 do not.
    assert points(client, storefront) == {"available": 0, "pending": 60, "lifetime_earned": 60}
    completed = deliver(client, "order.updated", woo_order(status="completed"))
    assert completed.json == {**completed.json, "status": "applied", "reason": "already applied"}
    assert points(client, storefront)["pending"] == 60
    refunded = deliver(
        client, "order.updated", woo_order(status="refunded", refunds=[(730, "-69.80")])
    )
    assert refunded.status_code == 200, refunded.get_json()
    assert refunded.json["events"][-1] == {"id": "woocommerce:727:refund:730", "duplicate": False}
    assert points(client, storefront) == {"available": 0, "pending": 0, "lifetime_earned": 0}
    order = session.scalar(select(Order).where(Order.order_id == "woocommerce:727"))
    assert (order.eligible_amount, order.refunded_amount, order.total_amount) == (6000, 6000, 6980)
    assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 2
    assert [d.status for d in deliveries(session)] == ["skipped", "applied", "applied", "applied"]
    assert find_drift(session) == []


def test_same_order_under_two_delivery_ids_is_one_order(client, session, storefront):
    first = deliver(client, "order.updated", woo_order(), delivery_id="a" * 32)
    again = deliver(client, "order.updated", woo_order(), delivery_id="b" * 32)
    repeat = deliver(client, "order.updated", woo_order(), delivery_id="b" * 32)
    assert first.json["events"] == [{"id": "woocommerce:727:paid", "duplicate": False}]
    assert again.status_code == 200 and again.json["reason"] == "already applied"
    assert repeat.json["duplicate"] is True
    assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert points(client, storefront)["pending"] == 60
    assert len(deliveries(session)) == 2


def test_an_edited_paid_order_is_not_a_conflict(client, storefront):
    """A paid order edited in WooCommerce (another email, another IP) arrives again: the
    payment already ran and stands; no 409."""
    deliver(client, "order.updated", woo_order())
    edited = woo_order(status="completed", ip="198.51.100.7")
    edited["billing"]["email"] = "new@example.com"
    response = deliver(client, "order.updated", edited)
    assert response.status_code == 200, response.get_json()
    assert points(client, storefront)["pending"] == 60


def test_partial_refund_reverses_its_share_of_eligible_money(client, session, storefront):
    deliver(client, "order.updated", woo_order())
    # 34.90 of 69.80 refunded: half of the order, so half of its 60.00 eligible.
    response = deliver(client, "order.updated", woo_order(refunds=[(801, "-34.90")]))
    assert response.status_code == 200, response.get_json()
    assert points(client, storefront)["pending"] == 30
    both = [(801, "-34.90"), (802, "-34.90")]
    rest = deliver(client, "order.updated", woo_order(status="refunded", refunds=both))
    assert rest.status_code == 200, rest.get_json()
    assert points(client, storefront)["pending"] == 0
    order = session.scalar(select(Order).where(Order.order_id == "woocommerce:727"))
    assert order.refunded_amount == order.eligible_amount == 6000
    assert find_drift(session) == []


def test_guest_order_is_skipped_and_recorded(client, session):
    response = deliver(client, "order.updated", woo_order(customer_id=0))
    assert response.status_code == 200
    assert response.json["status"] == "skipped"
    [record] = deliveries(session)
    assert (record.status, record.topic) == ("skipped", "order.updated")
    assert "guest" in record.reason
    assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_other_currency_is_422_and_recorded_as_refused(client, session):
    response = deliver(client, "order.updated", woo_order(currency="EUR"), delivery_id="e" * 32)
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert "EUR" in response.get_json()["detail"]
    assert response.get_json()["type"] == "currency-mismatch"  # as Shopify answers it
    session.expire_all()
    [record] = deliveries(session)
    assert (record.delivery_id, record.status) == ("e" * 32, "refused")
    assert "EUR" in record.reason
    assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_cancelled_before_payment_is_order_canceled(client, session):
    response = deliver(client, "order.updated", woo_order(status="cancelled", paid=False))
    assert response.status_code == 200, response.get_json()
    assert response.json["events"] == [{"id": "woocommerce:727:canceled", "duplicate": False}]
    order = session.scalar(select(Order).where(Order.order_id == "woocommerce:727"))
    assert order.status == "canceled"


def test_a_failed_payment_can_still_be_paid_later(client, storefront):
    """WooCommerce lets the shopper pay a failed order again: it is not canceled here."""
    failed = deliver(client, "order.updated", woo_order(status="failed", paid=False))
    assert failed.json["status"] == "skipped"
    assert deliver(client, "order.updated", woo_order()).status_code == 200
    assert points(client, storefront)["pending"] == 60


def test_coupon_codes_consume_a_real_reward_code_exactly_once(client, session, admin, storefront):
    make_member(client, admin, "woocommerce:12", points=500, email="john.doe@example.com")
    reward = make_reward(client, admin)
    code = redeem(client, storefront, "woocommerce:12", reward["id"]).get_json()["code"]
    # WooCommerce lowercases coupon codes; the store's own coupon is not ours and is no error.
    order = woo_order(coupons=[code.lower(), "summer10"])
    first = deliver(client, "order.updated", order)
    assert first.status_code == 200, first.get_json()
    deliver(
        client, "order.updated", woo_order(status="completed", coupons=[code.lower(), "summer10"])
    )
    listed = client.get("/v1/members/woocommerce:12/redemptions", headers=storefront).get_json()
    assert [item["status"] for item in listed["items"]] == ["used"]
    stored = session.get(ProcessedEvent, "woocommerce:727:paid").response
    kinds = [(e["kind"], e.get("reason")) for e in stored["effects"] if "code" in e]
    assert kinds == [("reward_code_used", None), ("reward_code_rejected", "unknown")]


def test_order_deleted_changes_nothing_and_is_recorded(client, session, storefront):
    deliver(client, "order.updated", woo_order())
    response = deliver(client, "order.deleted", {"id": 727})
    assert response.status_code == 200
    assert response.json["status"] == "skipped"
    assert deliveries(session)[-1].topic == "order.deleted"
    assert points(client, storefront)["pending"] == 60


def test_customer_created_enrols_the_customer(client, session, storefront):
    customer = {"id": 25, "date_created_gmt": wc_time(datetime.now(UTC)),
                "email": "jane@example.com", "first_name": "Jane", "last_name": "Roe",
                "role": "customer", "username": "jane",
                "billing": {"email": "jane@example.com"}, "is_paying_customer": False,
                "meta_data": []}  # fmt: skip
    response = deliver(client, "customer.created", customer)
    assert response.status_code == 200, response.get_json()
    member = client.get("/v1/members/woocommerce:25", headers=storefront).get_json()
    assert (member["email"], member["name"]) == ("jane@example.com", "Jane Roe")
    assert deliver(client, "customer.created", customer).json["reason"] == "already a member"


def test_customer_created_again_with_another_email_is_skipped_as_shopify_does(client, session):
    """WooCommerce disables a webhook after repeated failed deliveries: a customer known under
    another email is on record as skipped, answered 200, as Shopify's customers/create is."""
    customer = {"id": 26, "email": "joan@example.com", "first_name": "Joan", "last_name": "Roe",
                "role": "customer", "username": "joan", "billing": {}, "meta_data": []}  # fmt: skip
    assert deliver(client, "customer.created", customer).status_code == 200
    again = deliver(client, "customer.created", {**customer, "email": "joan@example.org"})
    assert again.status_code == 200, again.get_json()
    assert again.json["status"] == "skipped" and "another email" in again.json["reason"]
    session.expire_all()
    assert [d.status for d in deliveries(session)] == ["applied", "skipped"]


def test_events_from_order_is_the_mapping_the_webhook_uses():
    order = woo_order(
        line_items=[
            {"id": 1, "product_id": 5, "variation_id": 0, "quantity": 3, "sku": "TEE",
             "subtotal": "10.00", "total": "8.00", "total_tax": "0.00", "price": 3.3333333333},
        ],
        shipping_total="0.00", total_tax="0.00", coupons=["vip"], refunds=[(9, "-4.00")],
        ip="not-an-ip",
    )  # fmt: skip
    mapped = events_from_order(order, "USD")
    assert mapped.skipped_reason is None
    paid, refund = mapped.events
    assert paid["id"] == "woocommerce:727:paid"
    assert paid["order"]["customer_id"] == "woocommerce:12"
    # 10.00 for 3 is 3.33 + 3.33 + 3.34, exactly; the 2.00 of discount stays on the lines.
    assert paid["order"]["lines"] == [
        {"sku": "TEE", "quantity": 2, "unit_price": 333, "discount": 200},
        {"sku": "TEE", "quantity": 1, "unit_price": 334, "discount": 0},
    ]
    assert (paid["order"]["reward_codes"], paid["order"]["ip"]) == (["vip"], None)
    assert refund["refund"] == {"id": "woocommerce:9", "amount": 400}
    guest = events_from_order(woo_order(customer_id=0), "USD")
    assert (guest.events, guest.refused) == ([], False)
    other = events_from_order(woo_order(currency="EUR"), "USD")
    assert (other.events, other.refused) == ([], True)


def test_an_order_not_shaped_as_woocommerce_sends_is_refused_not_an_error(client, session):
    order = woo_order(refunds=[(5, "-1.00")])
    del order["refunds"][0]["id"]
    response = deliver(client, "order.updated", order)
    assert response.status_code == 422
    assert [d.status for d in deliveries(session)] == ["refused"]
    bad_money = deliver(client, "order.updated", woo_order(shipping_total="5.001", total="1.00"))
    assert bad_money.status_code == 422
    assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_a_refused_delivery_sent_again_is_tried_again(client, session, admin, storefront):
    """A delivery refused for the program's state (another currency) is retried when the
    same delivery id comes back, and its record then says what became of it."""
    order = woo_order(currency="EUR")
    assert deliver(client, "order.updated", order, delivery_id="r" * 32).status_code == 422
    changed = client.put("/v1/program", json={"currency": "EUR"}, headers=admin)
    assert changed.status_code == 200, changed.get_json()
    again = deliver(client, "order.updated", order, delivery_id="r" * 32)
    assert again.status_code == 200, again.get_json()
    session.expire_all()
    [record] = deliveries(session)
    assert (record.status, record.event_id) == ("applied", "woocommerce:727:paid")


@pytest.mark.parametrize("bad", ["WOO\x00-1", "WOO\ud800-1"])
def test_a_value_the_database_cannot_keep_is_refused_on_record_not_a_500(client, session, bad):
    """A signed body skips the request-level input checks, so the event made from it is
    checked before it runs: a NUL or a lone surrogate in a line's SKU is a 422 on record."""
    order = woo_order(31)
    order["line_items"][0]["sku"] = bad
    response = deliver(client, "order.updated", order)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    assert [d.status for d in deliveries(session)] == ["refused"]
    assert session.scalar(select(func.count()).select_from(Order)) == 0
