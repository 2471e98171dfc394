"""Program settings in a merchant's words: money amounts, multipliers, and earning rules.

`describe_rule` phrases an earning rule as the API shows it (`EarningRuleSchema`: tier *names*
in its conditions) — "2× points on skincare, 1–31 March", "100 bonus points on a first order of
$50 or more", "Signup bonus: 200 points", "50 points per product review, at most 3 a month",
"200 points to members who haven't ordered for 90 days, once each time".
Money is read and written in major units of the program's currency; the API and the services
keep minor units.
"""

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from marshmallow import ValidationError

from console import display
from loyalty.program.service import currency_exponent

_AMOUNT = re.compile(r"[0-9]{1,18}(\.[0-9]{1,12})?")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


# --- money and multipliers ------------------------------------------------------------------


def money(minor: int, currency: str) -> str:
    """12345 USD → "$123.45"; whole amounts without decimals ("$350"), thousands grouped."""
    return display.money(minor, currency, whole=True)


def major_units(minor: int | None, currency: str) -> str:
    """A form's value for an amount: 35000 USD → "350", 35050 → "350.50"."""
    return display.major_units(minor, currency, whole=True)


def parse_money(text: str | None, currency: str, field: str) -> int | None:
    """A typed amount in major units → minor units; None when empty. A ValidationError on
    `field` for anything that is not an amount of this currency ("350", "350.5", "1,000")."""
    text = (text or "").strip().replace(",", "").replace(" ", "")
    symbol = display.SYMBOLS.get(currency)
    if symbol and text.startswith(symbol):
        text = text[len(symbol) :]
    if not text:
        return None
    exponent = currency_exponent(currency)
    if not _AMOUNT.fullmatch(text):  # plain digits only: no sign, exponent, NaN or Infinity
        raise ValidationError({field: [f"Enter an amount in {currency}, e.g. 350 or 350.50."]})
    minor = Decimal(text).scaleb(exponent)
    if minor != minor.to_integral_value():
        places = f"{exponent} decimal places" if exponent else "no decimal places"
        raise ValidationError({field: [f"{currency} amounts have {places}."]})
    return int(minor)


def multiplier(value) -> str:
    """Decimal("1.2500") → "1.25×"."""
    return f"{format(Decimal(value).normalize(), 'f')}×"


def points(n: int) -> str:
    return f"{n:,} point" + ("" if n == 1 else "s")


def names(items) -> str:
    """["a"] → "a"; ["a", "b"] → "a and b"; ["a", "b", "c"] → "a, b and c"."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


# --- time windows ---------------------------------------------------------------------------


def _local(moment: datetime | str | None, zone: ZoneInfo) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(zone)


def _day(moment: datetime, year: bool) -> str:
    text = f"{moment.day} {MONTHS[moment.month - 1]}"
    return f"{text} {moment.year}" if year else text


def _moment(moment: datetime, year: bool) -> str:
    return f"{_day(moment, year)}, {moment:%H:%M}"


def describe_window(starts_at, ends_at, timezone: str = "UTC", now: datetime | None = None) -> str:
    """A rule's window in the program's time zone; the end is exclusive, so a window ending
    at midnight on 1 April reads "…–31 March". "" when it has no bounds."""
    zone = ZoneInfo(timezone)
    start, end = _local(starts_at, zone), _local(ends_at, zone)
    if start is None and end is None:
        return ""
    this_year = (now or datetime.now(zone)).astimezone(zone).year
    midnight = all(m is None or (m.hour, m.minute, m.second) == (0, 0, 0) for m in (start, end))
    if midnight:
        last = end - timedelta(days=1) if end is not None else None
        if start is not None and last is not None and last < start:
            last = start
        show_year = any(m is not None and m.year != this_year for m in (start, last))
        if start is None:
            return f"until {_day(last, show_year)}" if last is not None else ""
        if last is None:
            return f"from {_day(start, show_year)}"
        if start.date() == last.date():
            return _day(start, show_year)
        if start.year == last.year and start.month == last.month:
            return f"{start.day}–{_day(last, show_year)}"
        if start.year == last.year:
            return f"{_day(start, False)} – {_day(last, show_year)}"
        return f"{_day(start, True)} – {_day(last, True)}"
    show_year = any(m is not None and m.year != this_year for m in (start, end))
    if start is None:
        return f"until {_moment(end, show_year)}" if end is not None else ""
    if end is None:
        return f"from {_moment(start, show_year)}"
    return f"{_moment(start, show_year)} – {_moment(end, show_year)}"


# --- earning rules --------------------------------------------------------------------------


def _lines(conditions: Mapping) -> str:
    categories, skus = conditions.get("categories"), conditions.get("skus")
    if categories and skus:
        return f"{names(categories)} items with SKU {names(skus)}"
    if categories:
        return names(categories)
    if skus:
        return f"SKU {names(skus)}"
    return ""


# Built-in action types in words: the action's name, "per ..." and "once for ...".
ACTIONS = {
    "review": ("Review", "per product review", "for a product review"),
    "social_follow": ("Social follow", "per social follow", "for following us"),
    "newsletter_signup": (
        "Newsletter signup", "per newsletter signup", "for signing up to the newsletter"
    ),
    "profile_completed": (
        "Profile completed", "per completed profile", "for completing their profile"
    ),
}  # fmt: skip
CAPS = (("per_day", "a day"), ("per_month", "a month"), ("lifetime", "in all"))


def action_name(action_type: str) -> str:
    """ "review" → "Review"; a store's own "quiz_done" → "Quiz done"."""
    known = ACTIONS.get(action_type)
    return known[0] if known else action_type.replace("_", " ").capitalize()


def _action_rule(rule: Mapping) -> str:
    """ "50 points per product review, at most 3 a month"; "100 points once for following us"
    (a lifetime cap of 1)."""
    action_type = (rule.get("conditions") or {}).get("action_type") or ""
    per, once = ACTIONS.get(action_type, ("", f"per “{action_type}” action",
                                          f"for a “{action_type}” action"))[1:]  # fmt: skip
    amount = points(rule.get("points") or 0)
    tiers = (rule.get("conditions") or {}).get("tiers") or []
    who = f" for {names(tiers)} members" if tiers else ""
    caps = rule.get("caps") or {}
    if caps.get("lifetime") == 1:
        return f"{amount} once {once}{who}"
    limits = [f"{caps[name]:,} {words}" for name, words in CAPS if caps.get(name)]
    text = f"{amount} {per}{who}"
    return f"{text}, at most {names(limits)}" if limits else text


def describe_rule(
    rule: Mapping,
    currency: str,
    timezone: str = "UTC",
    *,
    window: bool = True,
    now: datetime | None = None,
) -> str:
    """One earning rule in plain words, e.g. "2× points on skincare for VIB members, 1–31
    March". `rule` is the rule as the API shows it (trigger, multiplier, points, conditions
    with tier names, starts_at, ends_at); `window=False` leaves the dates out (a list shows
    them in a column of their own)."""
    trigger = rule["trigger"]
    conditions = rule.get("conditions") or {}
    tiers = conditions.get("tiers") or []
    min_spend = conditions.get("min_spend")
    lines = _lines(conditions)
    spend = f" of {money(min_spend, currency)} or more" if min_spend else ""
    bonus_points = rule.get("points")
    if trigger == "action":
        text = _action_rule(rule)
    elif trigger == "lapse":
        who = f"{names(tiers)} members" if tiers else "members"
        days = conditions.get("days") or 0
        text = (f"{points(bonus_points or 0)} to {who} who haven't ordered for {days:,} "
                f"day{'' if days == 1 else 's'}, once each time")  # fmt: skip
    elif trigger in ("signup", "birthday"):
        label = "Signup bonus" if trigger == "signup" else "Birthday bonus"
        text = f"{label}: {points(bonus_points or 0)}"
    elif rule.get("multiplier") is not None:
        text = f"{multiplier(rule['multiplier'])} points"
        if lines:
            text += f" on {lines}"
            if trigger == "first_order":
                text += f" in a first order{spend}"
            elif spend:
                text += f" in orders{spend}"
        elif trigger == "first_order":
            text += f" on a first order{spend}"
        else:
            text += f" on orders{spend}" if spend else " on every order"
    else:
        amount = bonus_points or 0
        text = f"{amount:,} bonus point" + ("" if amount == 1 else "s")
        if trigger == "first_order":
            text += f" on a first order{spend}"
        else:
            text += f" on orders{spend}" if spend else " on every order"
        if lines:
            text += f" with {lines}"
    if tiers and trigger not in ("action", "lapse"):  # those name them in their sentence
        text += f" for {names(tiers)} members"
    if window:
        dates = describe_window(rule.get("starts_at"), rule.get("ends_at"), timezone, now)
        if dates:
            text += f", {dates}"
    return text


def rule_status(rule: Mapping, now: datetime) -> str:
    """active, paused (switched off), scheduled (starts later) or ended (its window passed)."""
    starts, ends = rule.get("starts_at"), rule.get("ends_at")
    if isinstance(starts, str):
        starts = datetime.fromisoformat(starts)
    if isinstance(ends, str):
        ends = datetime.fromisoformat(ends)
    if ends is not None and ends <= now:
        return "ended"
    if not rule.get("active", True):
        return "paused"
    if starts is not None and starts > now:
        return "scheduled"
    return "active"
