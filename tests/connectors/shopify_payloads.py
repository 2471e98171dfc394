"""Shopify's JSON as its webhooks and REST Admin API send it (2025-07), for the tests: money as
decimal strings, each amount also as a `*_set` in shop and presentment money, nested line
items with their discount allocations and tax lines, shipping lines, refunds with refund line
items and order adjustments. Ids are Shopify's large integers."""

import itertools
from datetime import UTC, datetime

_ids = itertools.count(450789469000)


def next_id() -> int:
    return next(_ids)


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def money(amount: str, currency="USD", presentment: str | None = None, presentment_currency=None):
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {
            "amount": presentment if presentment is not None else amount,
            "currency_code": presentment_currency or currency,
        },
    }


def tax_line(price: str, currency="USD", rate=0.08, title="State tax"):
    return {"price": price, "rate": rate, "title": title, "price_set": money(price, currency),
            "channel_liable": False}  # fmt: skip


def line_item(
    sku: str | None,
    price: str,
    quantity: int = 1,
    *,
    discount: str | None = None,
    gift_card: bool = False,
    tax: str | None = None,
    currency="USD",
    presentment: str | None = None,
    presentment_currency=None,
    line_id: int | None = None,
):
    line_id = line_id or next_id()
    allocations = []
    if discount is not None:
        allocations.append({
            "amount": discount,
            "amount_set": money(discount, currency, presentment_currency=presentment_currency),
            "discount_application_index": 0,
        })  # fmt: skip
    return {
        "id": line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "attributed_staffs": [],
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": gift_card,
        "grams": 0 if gift_card else 200,
        "name": f"Product {sku}",
        "price": price,
        "price_set": money(price, currency, presentment, presentment_currency),
        "product_exists": True,
        "product_id": 632910392,
        "properties": [],
        "quantity": quantity,
        "requires_shipping": not gift_card,
        "sku": sku,
        "taxable": not gift_card,
        "title": f"Product {sku}",
        "total_discount": "0.00",
        "total_discount_set": money("0.00", currency, presentment_currency=presentment_currency),
        "variant_id": 808950810,
        "variant_inventory_management": "shopify",
        "variant_title": None,
        "vendor": "Example",
        "tax_lines": [tax_line(tax, currency)] if tax is not None else [],
        "duties": [],
        "discount_allocations": allocations,
    }


def customer(customer_id: int | None = None, email="bob.norman@example.com", first="Bob",
             last="Norman", currency="USD"):  # fmt: skip
    customer_id = customer_id or next_id()
    return {
        "id": customer_id,
        "email": email,
        "created_at": "2026-01-01T10:00:00-05:00",
        "updated_at": "2026-01-01T10:00:00-05:00",
        "first_name": first,
        "last_name": last,
        "state": "enabled",
        "note": None,
        "verified_email": True,
        "multipass_identifier": None,
        "tax_exempt": False,
        "phone": None,
        "email_marketing_consent": {
            "state": "not_subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": None,
        },  # fmt: skip
        "sms_marketing_consent": None,
        "tags": "",
        "currency": currency,
        "tax_exemptions": [],
        "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
        "default_address": None,
    }


def order(
    lines: list[dict],
    *,
    buyer: dict | None = "new",
    order_id: int | None = None,
    currency="USD",
    presentment_currency=None,
    shipping: str = "10.00",
    shipping_presentment: str | None = None,
    total_tax: str = "0.00",
    financial_status="paid",
    discount_codes=(),
    refunds=(),
    processed_at: str | None = None,
    **extra,
):
    order_id = order_id or next_id()
    if buyer == "new":
        buyer = customer()
    presentment_currency = presentment_currency or currency
    moment = processed_at or now()
    subtotal = "0.00"  # Shopify's totals are not read by the mapping; kept for shape
    body = {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "app_id": 580111,
        "browser_ip": "203.0.113.7",
        "buyer_accepts_marketing": False,
        "cancel_reason": None,
        "cancelled_at": None,
        "cart_token": None,
        "checkout_id": 901414060,
        "checkout_token": "bd5a8aa1ecd019dd3520ff791ee3a24c",
        "client_details": {
            "accept_language": None,
            "browser_height": None,
            "browser_ip": "203.0.113.7",
            "browser_width": None,
            "session_hash": None,
            "user_agent": "Mozilla/5.0",
        },  # fmt: skip
        "closed_at": None,
        "confirmation_number": "XPAV284CT",
        "confirmed": True,
        "contact_email": buyer["email"] if buyer else "guest@example.com",
        "created_at": moment,
        "currency": currency,
        "current_subtotal_price": subtotal,
        "current_subtotal_price_set": money(subtotal, currency),
        "current_total_tax": total_tax,
        "current_total_tax_set": money(total_tax, currency),
        "customer_locale": "en",
        "discount_codes": [
            {"code": code, "amount": "5.00", "type": "fixed_amount"} for code in discount_codes
        ],
        "email": buyer["email"] if buyer else "guest@example.com",
        "estimated_taxes": False,
        "financial_status": financial_status,
        "fulfillment_status": None,
        "landing_site": "/",
        "name": "#1001",
        "note": None,
        "note_attributes": [],
        "number": 1,
        "order_number": 1001,
        "order_status_url": "https://example.myshopify.com/status",
        "payment_gateway_names": ["bogus"],
        "phone": None,
        "presentment_currency": presentment_currency,
        "processed_at": moment,
        "reference": None,
        "referring_site": None,
        "source_name": "web",
        "subtotal_price": subtotal,
        "subtotal_price_set": money(subtotal, currency),
        "tags": "",
        "tax_exempt": False,
        "tax_lines": [tax_line(total_tax, currency)] if total_tax != "0.00" else [],
        "taxes_included": False,
        "test": False,
        "token": "b1946ac92492d2347c6235b4d2611184",
        "total_discounts": "0.00",
        "total_discounts_set": money("0.00", currency),
        "total_line_items_price": subtotal,
        "total_line_items_price_set": money(subtotal, currency),
        "total_price": subtotal,
        "total_price_set": money(subtotal, currency),
        "total_tax": total_tax,
        "total_tax_set": money(total_tax, currency),
        "updated_at": moment,
        "user_id": None,
        "billing_address": None,
        "customer": buyer,
        "discount_applications": [],
        "fulfillments": [],
        "line_items": lines,
        "payment_terms": None,
        "refunds": list(refunds),
        "shipping_address": {
            "first_name": "Bob",
            "address1": "Chestnut Street 92",
            "address2": "",
            "city": "Louisville",
            "zip": "40202",
            "province": "Kentucky",
            "country": "United States",
            "country_code": "US",
            "last_name": "Norman",
        },  # fmt: skip
        "shipping_lines": [
            {
                "id": next_id(),
                "carrier_identifier": None,
                "code": "Standard",
                "discounted_price": shipping,
                "discounted_price_set": money(
                    shipping, currency, shipping_presentment, presentment_currency
                ),  # fmt: skip
                "price": shipping,
                "price_set": money(shipping, currency, shipping_presentment, presentment_currency),
                "source": "shopify",
                "title": "Standard",
                "tax_lines": [],
                "discount_allocations": [],
            }
        ],
        **extra,
    }
    return body


def refund(
    order_body: dict,
    items: list[tuple[dict, int]] = (),
    *,
    shipping: str | None = None,
    discrepancy: str | None = None,
    currency="USD",
    restock_type="return",
    transactions: bool = True,
):
    """refunds/create: `items` are (line item, quantity) pairs; `shipping` refunds shipping
    (an order adjustment of kind `shipping_refund`)."""
    refund_id = next_id()
    refund_lines = []
    total = 0
    for item, quantity in items:
        subtotal = f"{float(item['price']) * quantity:.2f}"
        total += float(subtotal)
        refund_lines.append({
            "id": next_id(),
            "line_item_id": item["id"],
            "location_id": 24826418,
            "quantity": quantity,
            "restock_type": restock_type,
            "subtotal": subtotal,
            "subtotal_set": money(subtotal, currency),
            "total_tax": "0.00",
            "total_tax_set": money("0.00", currency),
            "line_item": item,
        })  # fmt: skip
    adjustments = []
    if shipping is not None:
        total += float(shipping)
        adjustments.append({
            "id": next_id(), "order_id": order_body["id"], "refund_id": refund_id,
            "amount": f"-{shipping}", "amount_set": money(f"-{shipping}", currency),
            "tax_amount": "0.00", "tax_amount_set": money("0.00", currency),
            "kind": "shipping_refund", "reason": "Shipping refund",
        })  # fmt: skip
    if discrepancy is not None:
        total += float(discrepancy)
        adjustments.append({
            "id": next_id(), "order_id": order_body["id"], "refund_id": refund_id,
            "amount": f"-{discrepancy}", "amount_set": money(f"-{discrepancy}", currency),
            "tax_amount": "0.00", "tax_amount_set": money("0.00", currency),
            "kind": "refund_discrepancy", "reason": "Refund discrepancy",
        })  # fmt: skip
    moment = now()
    return {
        "id": refund_id,
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "created_at": moment,
        "note": None,
        "order_id": order_body["id"],
        "processed_at": moment,
        "restock": restock_type != "no_restock",
        "total_duties_set": money("0.00", currency),
        "user_id": 548380009,
        "order_adjustments": adjustments,
        "transactions": [
            {
                "id": next_id(), "order_id": order_body["id"], "kind": "refund",
                "gateway": "bogus", "status": "success", "amount": f"{total:.2f}",
                "currency": currency, "created_at": moment, "processed_at": moment,
            }
        ] if transactions and total else [],
        "refund_line_items": refund_lines,
        "duties": [],
    }  # fmt: skip
