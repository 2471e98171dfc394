"""`flask connectors import` on exports shaped as each platform's API returns orders."""

import json

from loyalty.ledger import find_drift
from tests.connectors import shopify_payloads as s
from tests.connectors.test_woocommerce import woo_order


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
