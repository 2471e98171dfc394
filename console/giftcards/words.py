"""A card's transactions and holds in words, as the card page shows them."""

from datetime import datetime

from console import display

RELEASE_REASONS = {"expired": "the hold expired", "disabled": "the card was disabled"}


def explain(txn, currency: str) -> str:
    """One transaction as a sentence: `Spent $12.00 on order 1001`."""
    amount = display.money(txn.amount, currency)
    detail = txn.detail or {}
    order = f"order {txn.order_id}" if txn.order_id else "an order"
    if txn.kind == "issue":
        paid = display.money(detail.get("paid", txn.amount), currency)
        bonus = detail.get("bonus") or 0
        bought = detail.get("source") == "stripe"
        how = "Bought with Stripe Checkout for" if bought else "Issued with"
        extra = f" and a {display.money(bonus, currency)} bonus" if bonus else ""
        return f"{how} {paid}{extra}"
    if txn.kind == "hold":
        return f"Held {amount} for {order}"
    if txn.kind == "capture":
        return f"Spent {amount} on {order}"
    if txn.kind == "release":
        why = RELEASE_REASONS.get(str(detail.get("reason")))
        return f"Released {amount} held for {order}" + (f": {why}" if why else "")
    if txn.kind == "refund":
        return f"Refunded {amount} from {order}"
    if txn.kind == "adjust":
        return f"Adjusted: {detail.get('reason') or 'no reason given'}"
    if txn.kind == "expire":
        return f"{amount} lapsed when the card expired"
    return f"{txn.kind.capitalize()} {amount}"


def actor(name: str, admins: dict[str, str]) -> str:
    """Who moved the value: an admin's email, or what the system calls it."""
    if name in admins:
        return admins[name]
    if name.startswith("api_key:"):
        return f"API key {name.partition(':')[2]}"
    if name.startswith("event:"):
        return "Order event"
    if name.startswith("job:"):
        return "Scheduled job"
    if name.startswith("stripe:"):
        return "Stripe"
    return name


def hold_state(hold, now: datetime) -> tuple[str, str]:
    """(label, badge class) of where a hold stands."""
    if hold.status == "active" and hold.expires_at <= now:
        return "Expired, not yet released", "badge-warn"
    if hold.status == "active":
        return "Active", "badge-warn"
    if hold.status == "captured":
        if hold.captured_amount < hold.amount:
            return "Partly captured", "badge-ok"
        return "Captured", "badge-ok"
    if hold.status == "voided":
        return "Voided", "badge-muted"
    return "Expired", "badge-muted"


STATUS_BADGES = {"active": "badge-ok", "disabled": "badge-danger", "expired": "badge-muted"}
