"""How the console writes numbers, money and moments for people: `$1,234.50`, `12,500`,
`6 Dec 2026, 09:30` (in the program's time zone), and reads money typed in major units."""

from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty.program.service import currency_exponent

SYMBOLS = {
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "INR": "₹",
    "KRW": "₩",
}  # fmt: skip


def points(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def signed_points(value: int) -> str:
    return f"+{value:,}" if value > 0 else f"−{-value:,}" if value < 0 else "0"


def money(minor: int | None, currency: str, *, whole: bool = False) -> str:
    """Minor units as the currency's major units: 123450 USD → `$1,234.50`; with `whole`, a
    whole amount without its decimals (`$350`, as a rule or a threshold reads)."""
    if minor is None:
        return "—"
    exponent = currency_exponent(currency)
    major = Decimal(minor).scaleb(-exponent)
    places = 0 if whole and major == major.to_integral_value() else exponent
    text = f"{abs(major):,.{places}f}"
    sign = "−" if minor < 0 else ""
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def major_units(minor: int | None, currency: str, *, whole: bool = False) -> str:
    """Minor units as a form shows them: 1000 USD → `10.00` (empty for none); with `whole`,
    a whole amount without its decimals (35000 → `350`, 35050 → `350.50`)."""
    if minor is None:
        return ""
    exponent = currency_exponent(currency)
    major = Decimal(minor).scaleb(-exponent)
    places = 0 if whole and major == major.to_integral_value() else exponent
    return f"{major:.{places}f}"


def minor_units(text: str | None, currency: str) -> int | None:
    """Money typed in major units (`10`, `10.5`, `1,000.00`) as minor units; None for empty.
    ValueError for anything else or for more decimals than the currency has."""
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    exponent = currency_exponent(currency)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("Enter an amount such as 10.00.") from None
    if not value.is_finite():
        raise ValueError("Enter an amount such as 10.00.")
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValueError(f"{currency} has {exponent} decimals at most.")
    return int(minor)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def moment(value: datetime | str | None, tz: ZoneInfo, *, time: bool = True) -> str:
    """A moment in the program's time zone: `6 Dec 2026, 09:30` (or `6 Dec 2026`)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    local = value.astimezone(tz)
    day = f"{local.day} {local:%b %Y}"
    return f"{day}, {local:%H:%M}" if time else day
