"""The periods the retention report offers in one click, and a period in words.

A period is `[from, to)` between two midnights UTC, as the reports API takes it: "to" is the
first day not included.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class Preset:
    label: str
    start: date
    end: date  # not included


def _add_months(day: date, months: int) -> date:
    """The first of the month `months` after `day`'s month (negative: before)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def presets(today: date) -> list[Preset]:
    """Last 30 days and last 12 months (both through today), the last whole quarter, last
    calendar year and this one so far."""
    tomorrow = today + timedelta(days=1)
    quarter_start = _add_months(today.replace(day=1), -((today.month - 1) % 3))
    last_quarter = _add_months(quarter_start, -3)
    year_ago = _year_before(tomorrow)
    return [
        Preset("Last 30 days", tomorrow - timedelta(days=30), tomorrow),
        Preset(
            f"Last quarter (Q{(last_quarter.month - 1) // 3 + 1} {last_quarter.year})",
            last_quarter,
            quarter_start,
        ),
        Preset("Last 12 months", year_ago, tomorrow),
        Preset(str(today.year - 1), date(today.year - 1, 1, 1), date(today.year, 1, 1)),
        Preset(f"{today.year} so far", date(today.year, 1, 1), tomorrow),
    ]


def in_words(start: datetime, end: datetime) -> str:
    """`1 Mar 2026 – 31 Mar 2026` for [2026-03-01, 2026-04-01); times shown when not midnight."""

    def day(moment: datetime) -> str:
        return f"{moment.day} {moment:%b %Y}"

    def moment_text(moment: datetime) -> str:
        return f"{day(moment)}, {moment:%H:%M} UTC"

    midnights = all(m.time() == datetime.min.time() for m in (start, end))
    if midnights:
        last = end - timedelta(days=1)
        return day(start) if last.date() == start.date() else f"{day(start)} – {day(last)}"
    return f"{moment_text(start)} up to {moment_text(end)}"
