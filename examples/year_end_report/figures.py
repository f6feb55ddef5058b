"""The figures the year-end report shows, and exact arithmetic on them.

Money is integer cents in every task result and work file. Integer sums are exact, so the
departments' figures add up to the HQ totals to the cent, which is the check a finance reader
makes first. Decimal strings (``"1234.56"``) appear only where people read: the CSV and HTML
reports, and the source CSV files exported by the source systems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

Figures = dict[str, int]


@dataclass(frozen=True)
class Figure:
    """One reported figure: money in cents or a count; ``stock`` marks a month-end balance,
    whose value for the year is December's rather than the sum of the months."""

    key: str
    label: str
    money: bool
    stock: bool = False


FIGURES: tuple[Figure, ...] = (
    Figure("revenue", "Revenue", money=True),
    Figure("cogs", "Cost of goods sold", money=True),
    Figure("gross_profit", "Gross profit", money=True),
    Figure("opex", "Operating expense", money=True),
    Figure("payroll", "Payroll", money=True),
    Figure("operating_profit", "Operating profit", money=True),
    Figure("units_sold", "Units sold", money=False),
    Figure("inventory_value", "Inventory value (month end)", money=True, stock=True),
    Figure("deals_won", "Deals won", money=False),
    Figure("deals_lost", "Deals lost", money=False),
    Figure("deals_open", "Deals open", money=False),
    Figure("won_value", "Won deal value", money=True),
    Figure("lost_value", "Lost deal value", money=True),
    Figure("pipeline_value", "Open pipeline value", money=True),
)
FIGURE_KEYS: tuple[str, ...] = tuple(item.key for item in FIGURES)

KPI_LABELS: tuple[tuple[str, str], ...] = (
    ("gross_margin_pct", "Gross margin %"),
    ("operating_margin_pct", "Operating margin %"),
    ("payroll_share_pct", "Payroll as % of revenue"),
    ("win_rate_pct", "Deal win rate %"),
    ("average_won_deal", "Average won deal"),
)

_CENT = Decimal("0.01")


def figure(key: str) -> Figure:
    """Look up a figure's definition by key."""
    for item in FIGURES:
        if item.key == key:
            return item
    raise KeyError(f"unknown figure {key!r}")


def parse_cents(text: str) -> int:
    """Parse a decimal amount such as ``"-1234.5"`` into integer cents, exactly.

    Goes through ``Decimal`` (never float) and refuses fractions of a cent rather than
    rounding them away, because a silently rounded source amount breaks reconciliation.
    """
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if not amount.is_finite() or amount != amount.quantize(_CENT):
        raise ValueError(f"not an amount in whole cents: {text!r}")
    return int(amount.scaleb(2))


def format_cents(cents: int, grouped: bool = False) -> str:
    """Format cents as a decimal amount: ``123456`` -> ``"1234.56"`` (``"1,234.56"`` grouped)."""
    units, rest = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    whole = f"{units:,}" if grouped else str(units)
    return f"{sign}{whole}.{rest:02d}"


def format_value(key: str, value: int, grouped: bool = False) -> str:
    """Format a figure for people: money as a decimal amount, counts as integers."""
    if figure(key).money:
        return format_cents(value, grouped)
    return f"{value:,}" if grouped else str(value)


def check_figures(value: Any, what: str) -> Figures:
    """Validate a figures mapping read from JSON: exactly the known keys, integer values."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: expected an object of figures, got {type(value).__name__}")
    if set(value) != set(FIGURE_KEYS):
        wrong = sorted(set(value) ^ set(FIGURE_KEYS))
        raise ValueError(f"{what}: unexpected or missing figures: {', '.join(wrong)}")
    bad = [key for key in FIGURE_KEYS if type(value[key]) is not int]
    if bad:
        raise ValueError(f"{what}: figures must be integers: {', '.join(bad)}")
    return {key: value[key] for key in FIGURE_KEYS}


def annual(months: Sequence[Mapping[str, int]]) -> Figures:
    """The year's figures from its months (in month order): flows add up, stocks take the
    last month's balance."""
    totals = add_up(months)
    for item in FIGURES:
        if item.stock:
            totals[item.key] = months[-1][item.key] if months else 0
    return totals


def add_up(items: Iterable[Mapping[str, int]]) -> Figures:
    """Sum figures key by key (exact: integers only)."""
    totals = dict.fromkeys(FIGURE_KEYS, 0)
    for item in items:
        for key in FIGURE_KEYS:
            totals[key] += item[key]
    return totals


def kpis(figures: Mapping[str, int]) -> dict[str, str]:
    """Ratios derived from figures. They do not add up across departments, so HQ recomputes
    them from its totals instead of summing them; strings keep the rounding explicit."""
    closed = figures["deals_won"] + figures["deals_lost"]
    revenue = figures["revenue"]
    return {
        "gross_margin_pct": percent(figures["gross_profit"], revenue),
        "operating_margin_pct": percent(figures["operating_profit"], revenue),
        "payroll_share_pct": percent(figures["payroll"], revenue),
        "win_rate_pct": percent(figures["deals_won"], closed),
        "average_won_deal": _average_cents(figures["won_value"], figures["deals_won"]),
    }


def percent(part: int, whole: int) -> str:
    """``part`` as a percentage of ``whole`` to one decimal place, or ``"n/a"`` for zero."""
    if whole == 0:
        return "n/a"
    ratio = Decimal(part * 100) / Decimal(whole)
    return str(ratio.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _average_cents(total: int, count: int) -> str:
    """Average amount per item, rounded half-up to the cent, as a decimal string."""
    if count == 0:
        return "n/a"
    cents = (Decimal(total) / Decimal(count)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return format_cents(int(cents))
