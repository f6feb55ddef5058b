"""The graph's Python tasks. Each takes one ``TaskContext`` and returns a small JSON value.

Data moves between tasks as files under ``out_dir``; results carry only paths, row counts and
figures, so the controller stores kilobytes, not datasets. Every task derives everything from
its parameters, partition and inputs, and writes its files atomically, so a retry or a rerun
of the same event reproduces the same files.

    extract_finance/erp/crm -> process -> summarize -> dept_report      (per department)
                                          summarize -> hq_summary (all) -> hq_report (render_hq)

Money is integer cents in every result (see ``figures``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from baton.worker.context import TaskContext
from year_end_report.company import FIELDS, Deal, ErpLine, LedgerLine, check_slug, display_name
from year_end_report.company import load_rows as load_source_rows
from year_end_report.figures import Figures, add_up, annual, check_figures, kpis
from year_end_report.files import read_csv, read_json, write_csv, write_json, write_text_atomic
from year_end_report.params import read_params
from year_end_report.processing import (
    MonthFigures,
    drop_duplicates,
    monthly_figures,
    parse_deals,
    parse_erp,
    parse_ledger,
)
from year_end_report.reports import department_page, write_department_csv

# --- tasks ------------------------------------------------------------------------------


def extract_finance(ctx: TaskContext) -> dict[str, Any]:
    """Stage the department's general ledger as ``work/<dept>/finance.csv``."""
    return _extract(ctx, "finance")


def extract_erp(ctx: TaskContext) -> dict[str, Any]:
    """Stage the department's ERP orders and stock as ``work/<dept>/erp.csv``."""
    return _extract(ctx, "erp")


def extract_crm(ctx: TaskContext) -> dict[str, Any]:
    """Stage the department's CRM deals as ``work/<dept>/crm.csv``."""
    return _extract(ctx, "crm")


def process(ctx: TaskContext) -> dict[str, Any]:
    """Clean the three extracts and write the department's monthly figures."""
    params, department = read_params(ctx.params), department_of(ctx)
    extracts = {system: input_of(ctx, f"extract_{system}") for system in FIELDS}
    ledger = clean_finance(Path(extracts["finance"]["path"]))
    erp = clean_erp(Path(extracts["erp"]["path"]))
    deals = clean_crm(Path(extracts["crm"]["path"]))
    rows_in = sum(int(extract["rows"]) for extract in extracts.values())
    dropped = rows_in - len(ledger) - len(erp) - len(deals)
    doc = {
        "department": department,
        "year": params.year,
        "duplicates_dropped": dropped,
        "months": monthly_figures(ledger, erp, deals),
    }
    path = write_json(params.work_dir(department) / "processed.json", doc)
    ctx.log(f"processed {rows_in} rows ({dropped} duplicates dropped) into {path}")
    return {"path": str(path), "months": 12, "duplicates_dropped": dropped}


def summarize(ctx: TaskContext) -> dict[str, Any]:
    """Annual figures and KPIs for the department, from its processed months."""
    params, department = read_params(ctx.params), department_of(ctx)
    path = Path(input_of(ctx, "process")["path"])
    summary = department_summary(department, params.year, read_months(path))
    ctx.log(
        f"revenue {summary['figures']['revenue']} cents, "
        f"operating profit {summary['figures']['operating_profit']} cents"
    )
    return {**summary, "processed": str(path)}


def dept_report(ctx: TaskContext) -> dict[str, Any]:
    """Write ``departments/<dept>.html`` and ``.csv`` from the department's summary."""
    params, department = read_params(ctx.params), department_of(ctx)
    summary = input_of(ctx, "summarize")
    figures = check_figures(summary.get("figures"), f"summarize result of {department}")
    months = read_months(Path(summary["processed"]))
    title = f"{display_name(department)}: year-end report {params.year}"
    base = params.out_dir / "departments" / department
    html_path = write_text_atomic(base.with_suffix(".html"), department_page(title, figures, kpis(figures), months))
    csv_path = write_department_csv(base.with_suffix(".csv"), figures)
    ctx.log(f"wrote {html_path} and {csv_path}")
    return {"html": str(html_path), "csv": str(csv_path)}


def hq_summary(ctx: TaskContext) -> dict[str, Any]:
    """Company totals: the exact sum of every department's figures, plus the breakdown."""
    params = read_params(ctx.params)
    summaries = ctx.inputs.get("summarize")
    if not isinstance(summaries, Mapping):
        raise ValueError("hq_summary needs the summarize results of all departments")
    result = company_summary(params.year, summaries, params.departments)
    ctx.log(f"summed {len(result['departments'])} departments: revenue {result['totals']['revenue']} cents")
    return result


# --- pure helpers -----------------------------------------------------------------------


def department_of(ctx: TaskContext) -> str:
    """The department this task works on (its partition), checked to be path-safe."""
    if ctx.partition is None:
        raise ValueError(f"{ctx.node} must run per department (partition), got none")
    return check_slug(ctx.partition)


def input_of(ctx: TaskContext, node: str) -> Mapping[str, Any]:
    """The result of upstream ``node``, which must be a JSON object."""
    value = ctx.inputs.get(node)
    if not isinstance(value, Mapping):
        raise ValueError(f"{ctx.node} needs the result of {node}, got {value!r}")
    return value


def clean_finance(path: Path) -> list[LedgerLine]:
    """Cleaned, de-duplicated ledger lines from an extracted finance file."""
    source = str(path)
    lines = parse_ledger(read_csv(path, FIELDS["finance"]), source)
    return drop_duplicates(lines, lambda line: line.entry_id, source)


def clean_erp(path: Path) -> list[ErpLine]:
    """Cleaned, de-duplicated ERP lines from an extracted ERP file."""
    source = str(path)
    lines = parse_erp(read_csv(path, FIELDS["erp"]), source)
    return drop_duplicates(lines, lambda line: line.line_id, source)


def clean_crm(path: Path) -> list[Deal]:
    """Cleaned, de-duplicated deals from an extracted CRM file."""
    source = str(path)
    deals = parse_deals(read_csv(path, FIELDS["crm"]), source)
    return drop_duplicates(deals, lambda deal: deal.deal_id, source)


def read_months(path: Path) -> list[MonthFigures]:
    """The twelve months of a ``processed.json`` file, validated."""
    doc = read_json(path)
    months = doc.get("months") if isinstance(doc, dict) else None
    if not isinstance(months, list) or len(months) != 12:
        raise ValueError(f"{path}: expected a 'months' list of 12 entries")
    return [_month_entry(path, number, entry) for number, entry in enumerate(months, 1)]


def _month_entry(path: Path, number: int, entry: Any) -> MonthFigures:
    """One month of ``processed.json``: its number and every figure."""
    if not isinstance(entry, dict) or entry.get("month") != number:
        raise ValueError(f"{path}: month {number} is missing or out of order")
    figures = {key: value for key, value in entry.items() if key != "month"}
    return {"month": number, **check_figures(figures, f"{path} month {number}")}


def department_summary(department: str, year: int, months: Sequence[Mapping[str, int]]) -> dict[str, Any]:
    """A department's annual figures and KPIs from its months."""
    figures = annual(months)
    return {"department": department, "year": year, "figures": figures, "kpis": kpis(figures)}


def company_summary(year: int, summaries: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """Sum the departments' figures into company totals, listing departments in ``order``
    (the ``departments`` parameter) and refusing to report with any of them missing."""
    missing = [name for name in order if name not in summaries]
    if missing:
        raise ValueError(f"no summarize result for department(s): {', '.join(missing)}")
    names = [*order, *sorted(set(summaries) - set(order))]
    by_department = {name: _figures_of(name, summaries[name]) for name in names}
    totals: Figures = add_up(by_department.values())
    return {"year": year, "departments": names, "by_department": by_department, "totals": totals, "kpis": kpis(totals)}


def _figures_of(department: str, summary: Any) -> Figures:
    """The validated figures of one department's summarize result."""
    if not isinstance(summary, Mapping):
        raise ValueError(f"summarize result of {department} is not an object: {summary!r}")
    return check_figures(summary.get("figures"), f"summarize result of {department}")


def _extract(ctx: TaskContext, system: str) -> dict[str, Any]:
    """Pull one system's rows for the department and stage them as a work CSV."""
    params, department = read_params(ctx.params), department_of(ctx)
    rows = load_source_rows(system, department, params.year, params.source_dir)
    path = write_csv(params.work_dir(department) / f"{system}.csv", FIELDS[system], rows)
    origin = params.source_dir or "simulated source systems"
    ctx.log(f"extracted {len(rows)} {system} rows for {params.year} from {origin} to {path}")
    return {"path": str(path), "rows": len(rows)}


__all__ = [
    "clean_crm",
    "clean_erp",
    "clean_finance",
    "company_summary",
    "department_of",
    "department_summary",
    "dept_report",
    "extract_crm",
    "extract_erp",
    "extract_finance",
    "hq_summary",
    "input_of",
    "process",
    "read_months",
    "summarize",
]
