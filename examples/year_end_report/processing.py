"""Cleaning source rows and turning them into monthly figures: pure functions, no I/O.

Source exports are untidy: stray whitespace, upper-case codes, lines exported twice. Cleaning
normalises them, drops exact duplicates, and rejects anything it cannot interpret (a bad month,
an unknown account, a fraction of a cent) with the file and row, because a figure silently
built from a misread row is worse than a failed task that can be fixed and retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from year_end_report.company import ACCOUNTS, ERP_KINDS, STAGES, Deal, ErpLine, LedgerLine
from year_end_report.figures import FIGURE_KEYS, parse_cents

_T = TypeVar("_T")
Row = Mapping[str, str]
MonthFigures = dict[str, int]  # "month" plus every figure key

# Which figures each deal stage feeds: (count, value).
_STAGE_FIGURES = {
    "won": ("deals_won", "won_value"),
    "lost": ("deals_lost", "lost_value"),
    "open": ("deals_open", "pipeline_value"),
}


def parse_ledger(rows: Iterable[Row], source: str) -> list[LedgerLine]:
    """General-ledger lines from finance rows."""
    return _parse_all(rows, source, _ledger_line)


def parse_erp(rows: Iterable[Row], source: str) -> list[ErpLine]:
    """ERP lines from ERP rows."""
    return _parse_all(rows, source, _erp_line)


def parse_deals(rows: Iterable[Row], source: str) -> list[Deal]:
    """Deals from CRM rows."""
    return _parse_all(rows, source, _deal)


def drop_duplicates(records: Sequence[_T], key: Callable[[_T], str], source: str) -> list[_T]:
    """Drop records exported twice (same id, same content); a reused id with different
    content is a data error, not a duplicate, and raises."""
    seen: dict[str, _T] = {}
    for record in records:
        earlier = seen.setdefault(key(record), record)
        if earlier != record:
            raise ValueError(f"{source}: id {key(record)!r} used by two different records")
    return list(seen.values())


def monthly_figures(ledger: Iterable[LedgerLine], erp: Iterable[ErpLine], deals: Iterable[Deal]) -> list[MonthFigures]:
    """Twelve months of figures (in cents and counts) from cleaned records."""
    months = {month: dict.fromkeys(FIGURE_KEYS, 0) for month in range(1, 13)}
    for line in ledger:  # account codes are also the figure keys
        months[line.month][line.account] += line.amount
    for item in erp:
        _add_erp(months[item.month], item)
    for deal in deals:
        count, value = _STAGE_FIGURES[deal.stage]
        months[deal.month][count] += 1
        months[deal.month][value] += deal.value
    return [{"month": month, **_with_profits(figures)} for month, figures in months.items()]


def _add_erp(figures: dict[str, int], item: ErpLine) -> None:
    """Shipped units count as sold; month-end stock is valued at its unit cost."""
    if item.kind == "order":
        figures["units_sold"] += item.units
    else:
        figures["inventory_value"] += item.units * item.unit_cost


def _with_profits(figures: dict[str, int]) -> dict[str, int]:
    """Fill in the derived profit figures."""
    figures["gross_profit"] = figures["revenue"] - figures["cogs"]
    figures["operating_profit"] = figures["gross_profit"] - figures["opex"] - figures["payroll"]
    return figures


def _parse_all(rows: Iterable[Row], source: str, parse: Callable[[Row], _T]) -> list[_T]:
    """Parse every row, naming the source and row number of the first bad one."""
    records = []
    for number, row in enumerate(rows, 1):
        try:
            records.append(parse(row))
        except ValueError as exc:
            raise ValueError(f"{source}: data row {number}: {exc}") from None
    return records


def _ledger_line(row: Row) -> LedgerLine:
    """One finance row, normalised."""
    return LedgerLine(
        _text(row["entry_id"], "entry_id"),
        _month(row["month"]),
        _code(row["account"], ACCOUNTS, "account"),
        row["description"].strip(),
        parse_cents(row["amount"]),
    )


def _erp_line(row: Row) -> ErpLine:
    """One ERP row, normalised."""
    return ErpLine(
        _text(row["line_id"], "line_id"),
        _month(row["month"]),
        _code(row["kind"], ERP_KINDS, "kind"),
        _text(row["product"], "product"),
        _count(row["units"]),
        parse_cents(row["unit_cost"]),
    )


def _deal(row: Row) -> Deal:
    """One CRM row, normalised."""
    return Deal(
        _text(row["deal_id"], "deal_id"),
        _month(row["month"]),
        _text(row["customer"], "customer"),
        _code(row["stage"], STAGES, "stage"),
        parse_cents(row["value"]),
    )


def _text(value: str, what: str) -> str:
    """A required, whitespace-trimmed text cell."""
    text = value.strip()
    if not text:
        raise ValueError(f"empty {what}")
    return text


def _code(value: str, allowed: Sequence[str], what: str) -> str:
    """A code cell such as an account or stage, case-insensitive."""
    code = value.strip().lower()
    if code not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
    return code


def _month(value: str) -> int:
    """A month number 1-12."""
    month = _count(value)
    if not 1 <= month <= 12:
        raise ValueError(f"month out of range: {value!r}")
    return month


def _count(value: str) -> int:
    """A non-negative whole number."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"not a whole number: {value!r}")
    return int(text)
