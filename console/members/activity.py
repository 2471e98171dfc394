"""Ledger entries in words: what each one was for, from the numbers it was computed with
(`detail`), as the member page's activity shows them."""

from console import display
from console.wording import action_name, points

KINDS = {
    "earn": "Purchase",
    "bonus": "Bonus",
    "adjust": "Adjustment by an admin",
    "redeem": "Redemption",
    "redeem_cancel": "Redemption canceled",
    "expire": "Expiry",
    "referral": "Referral",
    "reversal": "Refund",
    "clawback": "Refund",
}


def field(entry, name):
    return entry[name] if isinstance(entry, dict) else getattr(entry, name)


def source_of(entry) -> dict:
    if isinstance(entry, dict):
        return entry.get("source") or {}
    return {"type": entry.source_type, "id": entry.source_id}


def explain(entry, currency: str, admins: dict | None = None) -> str:
    """A ledger entry in words, from the numbers it was computed with (`detail`)."""
    kind, detail, source = field(entry, "kind"), field(entry, "detail") or {}, source_of(entry)
    cur = detail.get("currency") or currency
    if kind == "earn":
        text = f"Order {source.get('id')}"
        if "eligible_amount" in detail:
            text += (
                f": {display.money(detail['eligible_amount'], cur)} eligible × "
                f"{detail.get('points_per_unit', '1')} point per unit"
            )
            if detail.get("multiplier") not in (None, "1"):
                text += f" × {detail['multiplier']} ({detail.get('tier')} tier)"
        return text
    if kind == "bonus":
        if source.get("type") == "action":  # "Review (action rv-1): 50 points — rule “…”"
            what = action_name(detail.get("action_type") or "action")
            text = f"{what} (action {source.get('id')})"
            if detail.get("fixed_points"):
                text += f": {points(detail['fixed_points'])}"
            return f"{text} — rule “{detail['rule']}”" if detail.get("rule") else text
        if detail.get("rule"):
            text = f"Bonus rule “{detail['rule']}”"
            if source.get("type") == "order":
                text += f" on order {source.get('id')}"
            if "matching_amount" in detail:
                text += f" ({display.money(detail['matching_amount'], cur)} matching)"
            return text
        return detail.get("reason") or "Bonus"
    if kind == "adjust":
        who = (admins or {}).get(source.get("id"), source.get("id"))
        return f"Adjusted by {who}: {detail.get('reason', '')}".rstrip(": ")
    if kind == "redeem":
        if detail.get("checkout"):  # points at checkout: money off one cart
            return (
                f"Points at checkout: {display.money(detail.get('amount'), currency)} off a cart "
                f"of {display.money(detail.get('cart_subtotal'), currency)}"
            )
        return f"Redeemed “{detail.get('reward', 'a reward')}”"
    if kind == "redeem_cancel":
        if detail.get("reason") == "expired":
            return "Reward code expired unused: its points returned"
        return "Reward code canceled: its points returned"
    if kind == "expire":
        days = detail.get("inactive_days")
        return f"Expired after {days} days without activity" if days else "Points expired"
    if kind == "referral":
        return f"Referral reward (friend's order {detail.get('order_id') or '—'})"
    if kind in ("reversal", "clawback"):
        refunded = detail.get("refunded_amount")
        what = "Pending points canceled" if kind == "reversal" else "Points taken back"
        if refunded is not None:
            refund = display.money(refunded, currency)
            return f"{what}: refund of {refund} on order {source.get('id')}"
        return f"{what} (refund on order {source.get('id')})"
    return detail.get("reason") or kind.replace("_", " ").capitalize()
