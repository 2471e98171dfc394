"""The cohort heatmap: each first-order-month cohort's retention as percentages, shaded in ten
steps (`heat-0` … `heat-9`, console/static/reports.css), and the legend of those steps."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

STEPS = 10


@dataclass(frozen=True)
class Cell:
    months: int  # months since the first order
    customers: int  # of the cohort, with a paid order that month
    percent: int  # of the cohort, rounded half up
    step: int  # 0 (under 10%) … 9 (90% and more)

    @property
    def css(self) -> str:
        return f"heat-{self.step}"


@dataclass(frozen=True)
class Row:
    month: str  # `YYYY-MM`
    label: str  # `Mar 2026`
    customers: int
    cells: list[Cell]


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_label(month: str) -> str:
    year, number = month.split("-")
    return f"{_MONTHS[int(number) - 1]} {year}"


def step(customers: int, cohort: int) -> int:
    """The shade of `customers` of `cohort`: one step per ten percent, exact (no rounding up
    into the next step: 99.9% is step 8, 9.99% is step 0)."""
    return min(STEPS - 1, customers * STEPS // cohort) if cohort else 0


def rows(items: list[dict]) -> list[Row]:
    """The API's `first_order_month` cohort items as heatmap rows, oldest cohort first."""
    made = []
    for item in items:
        cohort = item["customers"]
        cells = [
            Cell(
                months=k,
                customers=count,
                percent=int(
                    (Decimal(count) * 100 / cohort).quantize(Decimal(1), rounding=ROUND_HALF_UP)
                ),
                step=step(count, cohort),
            )
            for k, count in enumerate(item["retention"])
        ]
        made.append(Row(item["cohort"], month_label(item["cohort"]), cohort, cells))
    return made


def legend() -> list[tuple[str, str]]:
    """(css class, range in words) of each step."""
    shown = []
    for index in range(STEPS):
        low, high = index * 10, index * 10 + 9
        text = f"{low}–{high}%" if index < STEPS - 1 else f"{low}–100%"
        shown.append((f"heat-{index}", text))
    return shown
