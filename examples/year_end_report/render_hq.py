"""The HQ report, run by the graph as an argv command rather than a Python callable.

    python -m year_end_report.render_hq

It shows the other way to plug work into Baton: any program that reads its inputs from the
environment and files. Reads

    BATON_INPUTS_FILE  JSON file: {"hq_summary": <result of the hq_summary task>}
    BATON_PARAMS_FILE  JSON file: the event's parameters (out_dir is used)

writes ``<out_dir>/hq/company.html`` and ``<out_dir>/hq/company.csv``, and, when
``BATON_RESULT_FILE`` is set, its result there: the two paths and the company totals.

Before writing anything it checks that the totals are the exact sum of the departments, so a
report whose numbers do not reconcile is never produced. Bad input exits with status 2 and a
message on stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from year_end_report.figures import Figures, add_up, check_figures, kpis
from year_end_report.files import read_json, write_json, write_text_atomic
from year_end_report.params import read_params
from year_end_report.reports import hq_page, write_hq_csv

# The same names as baton.worker.context.ENV_*; repeated so this command runs without Baton installed.
ENV_INPUTS_FILE = "BATON_INPUTS_FILE"
ENV_PARAMS_FILE = "BATON_PARAMS_FILE"
ENV_RESULT_FILE = "BATON_RESULT_FILE"


def render(summary: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    """Write the HQ HTML and CSV reports from an ``hq_summary`` result; return the result."""
    year = summary.get("year")
    by_department = _by_department(summary.get("by_department"))
    totals = check_figures(summary.get("totals"), "hq_summary totals")
    if add_up(by_department.values()) != totals:
        raise ValueError("hq_summary totals are not the sum of the department figures")
    html_path = write_text_atomic(
        out_dir / "hq" / "company.html", hq_page(f"Company year-end report {year}", by_department, totals, kpis(totals))
    )
    csv_path = write_hq_csv(out_dir / "hq" / "company.csv", by_department, totals)
    return {"html": str(html_path), "csv": str(csv_path), "year": year, "totals": totals}


def _by_department(value: Any) -> dict[str, Figures]:
    """The per-department figures of an ``hq_summary`` result, validated."""
    if not isinstance(value, Mapping) or not value:
        raise ValueError("hq_summary has no 'by_department' figures")
    return {str(name): check_figures(figures, f"hq_summary figures of {name}") for name, figures in value.items()}


def read_inputs(environ: Mapping[str, str]) -> tuple[Mapping[str, Any], Path]:
    """The ``hq_summary`` result and the output directory, from Baton's environment."""
    inputs = read_json(Path(_required(environ, ENV_INPUTS_FILE)))
    summary = inputs.get("hq_summary") if isinstance(inputs, dict) else None
    if not isinstance(summary, dict):
        raise ValueError(f"{environ[ENV_INPUTS_FILE]} has no 'hq_summary' object")
    params = read_json(Path(_required(environ, ENV_PARAMS_FILE)))
    if not isinstance(params, dict):
        raise ValueError(f"{environ[ENV_PARAMS_FILE]} must hold a JSON object")
    return summary, read_params(params).out_dir


def _required(environ: Mapping[str, str], name: str) -> str:
    """A required environment variable."""
    value = environ.get(name, "")
    if not value:
        raise ValueError(f"environment variable {name} is not set")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the HQ report from the environment; 0 on success, 2 on bad input."""
    if argv:
        print(
            "usage: python -m year_end_report.render_hq  (input comes from BATON_* environment variables)",
            file=sys.stderr,
        )
        return 2
    try:
        summary, out_dir = read_inputs(os.environ)
        result = render(summary, out_dir)
    except (OSError, ValueError) as exc:
        print(f"render_hq: error: {exc}", file=sys.stderr)
        return 2
    if os.environ.get(ENV_RESULT_FILE):
        write_json(Path(os.environ[ENV_RESULT_FILE]), result)
    print(f"wrote {result['html']} and {result['csv']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
