"""Test data builders: order events and members as API.md spells them."""

import itertools
from datetime import UTC, datetime

_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def line(sku="S1", quantity=1, unit_price=5000, discount=0, category=None, gift_card=False):
    data = {"sku": sku, "quantity": quantity, "unit_price": unit_price, "discount": discount}
    if category is not None:
        data["category"] = category
    if gift_card:
        data["gift_card"] = True
    return data


def paid(
    customer_id="c_1",
    order_id=None,
    lines=None,
    *,
    event_id=None,
    occurred_at=None,
    email=None,
    currency="USD",
    shipping=0,
    tax=0,
    **order_extra,
):
    order = {
        "id": order_id or next_id("ord"),
        "customer_id": customer_id,
        "email": email or f"{customer_id}@example.com",
        "currency": currency,
        "lines": lines or [line()],
        "shipping": shipping,
        "tax": tax,
        **order_extra,
    }
    return {
        "id": event_id or next_id("evt"),
        "type": "order.paid",
        "occurred_at": iso(occurred_at or datetime.now(UTC)),
        "order": order,
    }


def refunded(
    order_id,
    customer_id="c_1",
    *,
    amount=None,
    lines=None,
    refund_id=None,
    event_id=None,
    occurred_at=None,
    currency="USD",
):
    refund = {"id": refund_id or next_id("re")}
    if lines is not None:
        refund["lines"] = lines
    else:
        refund["amount"] = amount
    return {
        "id": event_id or next_id("evt"),
        "type": "order.refunded",
        "occurred_at": iso(occurred_at or datetime.now(UTC)),
        "order": {"id": order_id, "customer_id": customer_id, "currency": currency},
        "refund": refund,
    }


def canceled(order_id, customer_id="c_1", *, event_id=None, occurred_at=None, currency="USD"):
    return {
        "id": event_id or next_id("evt"),
        "type": "order.canceled",
        "occurred_at": iso(occurred_at or datetime.now(UTC)),
        "order": {"id": order_id, "customer_id": customer_id, "currency": currency},
    }


def run_job(runner, name: str, now: datetime | None = None) -> str:
    """`flask loyalty jobs NAME [--now ...]` through the app's CLI runner; its output."""
    args = ["loyalty", "jobs", name]
    if now is not None:
        args += ["--now", now.isoformat()]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return result.output
