"""`flask connectors import` on exports shaped as each platform's API returns orders."""

import json
from datetime import UTC, datetime

from loyalty.ledger import find_drift
from tests.connectors import shopify_payloads as s
from tests.connectors.test_shopify import SECRETS as SHOPIFY_SECRETS
from tests.connectors.test_shopify import deliver as shopify_deliver
from tests.connectors.test_woocommerce import SECRET as WOO_SECRET
from tests.connectors.test_woocommerce import deliver as woo_deliver
from tests.connectors.test_woocommerce import wc_time, woo_order


def _export(tmp_path, orders) -> str:
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(order) + "\n" for order in orders))
    return str(path)


def _points(client, storefront, customer_id) -> dict:
    return client.get(f"/v1/members/{customer_id}", headers=storefront).get_json()["points"]


def test_a_shopify_export_imports_once_and_skips_guests(runner, client, storefront, session,
                                                        tmp_path):  # fmt: skip
    tee = s.line_item("TEE", "10.00", 3)
    refunded = s.order([tee], financial_status="partially_refunded")
    refunded["refunds"] = [s.refund(refunded, [(tee, 1)])]
    plain = s.order([s.line_item("MUG", "25.00")], discount_codes=[])
    guest = s.order([s.line_item("CAP", "15.00")], buyer=None)
    path = _export(tmp_path, [refunded, plain, guest])

    first = runner.invoke(args=["connectors", "import", "shopify", path])
    assert first.exit_code == 0, first.output
    assert "orders read: 3" in first.stdout
    assert "events imported: 3" in first.stdout  # two paid orders and one refund
    assert "orders skipped: 1" in first.stdout
    assert _points(client, storefront, f"shopify:{refunded['customer']['id']}")["pending"] == 20
    assert _points(client, storefront, f"shopify:{plain['customer']['id']}")["pending"] == 25

    again = runner.invoke(args=["connectors", "import", "shopify", path])
    assert again.exit_code == 0, again.output
    assert "events imported: 0" in again.stdout
    assert "duplicates (already imported): 3" in again.stdout
    assert _points(client, storefront, f"shopify:{refunded['customer']['id']}")["pending"] == 20
    assert find_drift(session) == []


def test_a_woocommerce_export_imports_once_and_skips_guests(runner, client, storefront, session,
                                                            tmp_path):  # fmt: skip
    refunded = woo_order(801, status="refunded", refunds=[(9001, "-69.80")])
    paid = woo_order(802, customer_id=13)
    guest = woo_order(803, customer_id=0)
    path = _export(tmp_path, [refunded, paid, guest])

    first = runner.invoke(args=["connectors", "import", "woocommerce", path])
    assert first.exit_code == 0, first.output
    assert "orders read: 3" in first.stdout
    assert "events imported: 3" in first.stdout
    assert "orders skipped: 1" in first.stdout
    assert _points(client, storefront, "woocommerce:12") == {
        "available": 0, "pending": 0, "lifetime_earned": 0,
    }  # fmt: skip
    assert _points(client, storefront, "woocommerce:13")["pending"] == 60

    again = runner.invoke(args=["connectors", "import", "woocommerce", path])
    assert "events imported: 0" in again.stdout, again.output
    assert find_drift(session) == []


def test_orders_taken_by_webhook_then_exported_later_are_duplicates_not_refusals(
    app, runner, client, storefront, session, tmp_path, monkeypatch
):
    """The export is read days after the webhooks: WooCommerce's refunds carry no date of their
    own (the order's `date_modified_gmt` stands in, and moves), a Shopify order may have been
    edited. The first version stands, as on the webhooks, and the import is not a failure."""
    monkeypatch.setitem(app.config, "WOOCOMMERCE_WEBHOOK_SECRETS", [WOO_SECRET])
    monkeypatch.setitem(app.config, "SHOPIFY_WEBHOOK_SECRETS", [SHOPIFY_SECRETS[-1]])
    woo = woo_order(811, refunds=[(9101, "-10.00")])
    assert woo_deliver(client, "order.updated", woo).status_code == 200
    tee = s.line_item("TEE", "10.00", 3)
    shop = s.order([tee])
    assert shopify_deliver(client, "orders/paid", shop).status_code == 200
    woo_later = {**woo, "status": "completed", "date_modified_gmt": wc_time(datetime.now(UTC))}
    shop_edited = {**shop, "line_items": [{**tee, "quantity": 2}]}

    for platform, order in (("woocommerce", woo_later), ("shopify", shop_edited)):
        result = runner.invoke(args=["connectors", "import", platform, _export(tmp_path, [order])])
        assert result.exit_code == 0, result.output
        assert "refused: 0" in result.stdout, result.stdout
        assert "events imported: 0" in result.stdout
    assert _points(client, storefront, f"shopify:{shop['customer']['id']}")["pending"] == 30
    assert find_drift(session) == []
