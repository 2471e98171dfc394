"""The RFM segments in words: each segment's name and what puts a member in it, with the
thresholds the report used (`loyalty.reports.service.segment_thresholds`)."""

from console import display

NAMES = {
    "new_subscribers": "New subscribers",
    "loyal_high_value": "Loyal, high value",
    "at_risk_high_value": "At risk, high value",
    "low_value_inactive": "Low value, inactive",
    "frequent_low_aov": "Frequent, low order value",
    "other_active": "Other active",
}


def high_value_words(thresholds: dict, currency: str) -> str:
    minimum = thresholds["high_value_min"]
    if minimum is None:
        return "nobody (no member has bought yet)"
    spend = f"net spend of {display.money(minimum, currency)} or more"
    top = thresholds["high_value_top"]
    if top is None:
        return spend
    share = f"{float(top) * 100:g}%"
    return f"{spend} (the top {share} of buyers by spend)"


def describe(segment: str, thresholds: dict, currency: str) -> str:
    days = thresholds["active_days"]
    low_aov = thresholds["low_aov_max"]
    if segment == "new_subscribers":
        return "Members without a paid order yet."
    if segment == "loyal_high_value":
        return f"High spenders whose last order is within the last {days} days."
    if segment == "at_risk_high_value":
        return f"High spenders who have not ordered in the last {days} days."
    if segment == "low_value_inactive":
        return f"Other members who have not ordered in the last {days} days."
    if segment == "frequent_low_aov":
        aov = display.money(low_aov, currency) if low_aov is not None else "—"
        return (
            f"Active members with {thresholds['frequent_orders']} or more orders and an "
            f"average order below {aov}."
        )
    return "Active members in none of the segments above."
