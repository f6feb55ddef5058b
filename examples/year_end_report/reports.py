"""The report files: CSV for spreadsheets and reconciliation, HTML for people.

Both the department reports (a Python task) and the HQ report (an argv command) use these, so
the two look alike and format money the same way. Every value that reaches HTML goes through
``html.escape``: department names and parameters come from outside the program.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from year_end_report.company import display_name
from year_end_report.figures import FIGURE_KEYS, FIGURES, KPI_LABELS, format_value
from year_end_report.files import write_csv

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TOTAL = "TOTAL"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { margin-bottom: 0.2rem; } p.sub { color: #666; margin-top: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; }
th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; background: #fafafa; }
"""


def write_department_csv(path: Path, figures: Mapping[str, int]) -> Path:
    """One row per figure (``figure,value``); money as exact decimal amounts."""
    rows = [{"figure": key, "value": format_value(key, figures[key])} for key in FIGURE_KEYS]
    return write_csv(path, ("figure", "value"), rows)


def write_hq_csv(path: Path, by_department: Mapping[str, Mapping[str, int]], totals: Mapping[str, int]) -> Path:
    """One row per department plus a TOTAL row, one column per figure."""
    named = [*by_department.items(), (TOTAL, totals)]
    rows = [{"department": name, **_formatted(figures)} for name, figures in named]
    return write_csv(path, ("department", *FIGURE_KEYS), rows)


def department_page(
    title: str, figures: Mapping[str, int], kpis: Mapping[str, str], months: Sequence[Mapping[str, int]]
) -> str:
    """A department's self-contained HTML report: annual figures, KPIs, month by month."""
    sections = [
        ("Annual figures", figures_table(figures)),
        ("Key indicators", kpi_table(kpis)),
        ("Month by month", monthly_table(months)),
    ]
    return html_page(title, "Amounts in currency units; inventory is valued at month end.", sections)


def hq_page(
    title: str, by_department: Mapping[str, Mapping[str, int]], totals: Mapping[str, int], kpis: Mapping[str, str]
) -> str:
    """The company's self-contained HTML report: totals, KPIs, and every department."""
    sections = [
        ("Company totals", figures_table(totals)),
        ("Key indicators", kpi_table(kpis)),
        ("By department", department_table(by_department, totals)),
    ]
    return html_page(title, "The TOTAL row is the exact sum of the department rows.", sections)


def figures_table(figures: Mapping[str, int]) -> str:
    """Two-column table of labelled annual figures."""
    rows = [[item.label, format_value(item.key, figures[item.key], grouped=True)] for item in FIGURES]
    return html_table(["Figure", "Value"], rows)


def kpi_table(kpis: Mapping[str, str]) -> str:
    """Two-column table of the key indicators."""
    return html_table(["Indicator", "Value"], [[label, kpis[key]] for key, label in KPI_LABELS])


def monthly_table(months: Sequence[Mapping[str, int]]) -> str:
    """One row per month, one column per figure."""
    rows = [[MONTHS[month["month"] - 1], *_formatted(month, grouped=True).values()] for month in months]
    return html_table(["Month", *(item.label for item in FIGURES)], rows)


def department_table(by_department: Mapping[str, Mapping[str, int]], totals: Mapping[str, int]) -> str:
    """One row per department plus the TOTAL row, one column per figure."""
    rows = [
        [display_name(name), *_formatted(figures, grouped=True).values()] for name, figures in by_department.items()
    ]
    total = [TOTAL, *_formatted(totals, grouped=True).values()]
    return html_table(["Department", *(item.label for item in FIGURES)], rows, total)


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], total: Sequence[str] | None = None) -> str:
    """An escaped HTML table; every column after the first is numeric and right-aligned."""
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = [_table_row(row) for row in rows]
    if total is not None:
        body.append(_table_row(total, css=' class="total"'))
    return (
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody></table></div>"
    )


def html_page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """A complete HTML document; section bodies must already be HTML."""
    parts = [f"<h2>{html.escape(heading)}</h2>\n{body}" for heading, body in sections]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<h1>{html.escape(title)}</h1>\n<p class="sub">{html.escape(subtitle)}</p>\n'
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )


def _table_row(cells: Sequence[str], css: str = "") -> str:
    """One table row: first cell as a label, the rest as numbers."""
    first, *rest = cells
    numbers = "".join(f'<td class="num">{html.escape(cell)}</td>' for cell in rest)
    return f"<tr{css}><td>{html.escape(first)}</td>{numbers}</tr>"


def _formatted(figures: Mapping[str, int], grouped: bool = False) -> dict[str, str]:
    """Every figure formatted for people, in the standard order."""
    return {key: format_value(key, figures[key], grouped) for key in FIGURE_KEYS}
