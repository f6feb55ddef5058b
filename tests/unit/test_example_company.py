"""The year-end report example (examples/year_end_report), tested without the Baton engine.

The tasks are plain functions of a ``TaskContext``, so these tests build contexts by hand and
call them in dependency order, the way the engine would; the HQ report is an argv command and
is run as a real subprocess with Baton's environment variables. The point of the example is
that the numbers reconcile, so most checks are exact: department figures must add up to the
HQ totals to the cent, and CSV sources must give the same figures as the simulated systems.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
for _entry in (str(ROOT), str(EXAMPLES)):
    if _entry not in sys.path:
        sys.path.insert(0, _entry)

from year_end_report import (  # noqa: E402
    company,
    figures,
    params,
    processing,
    render_hq,
    reports,
    tasks,
)
from year_end_report.figures import FIGURE_KEYS  # noqa: E402

from baton.worker import context as baton_context  # noqa: E402
from baton.worker.context import TaskContext  # noqa: E402

YEAR = 2025
DEPARTMENTS = list(company.DEFAULT_DEPARTMENTS)
EXTRACTS = ("extract_finance", "extract_erp", "extract_crm")


# --- helpers ----------------------------------------------------------------------------


def make_ctx(node: str, partition: str | None, event_params: dict[str, Any], inputs: dict[str, Any]) -> TaskContext:
    """A context like the engine's for one task of event 1."""
    return TaskContext(
        event_id=1,
        event_type="year_end_report",
        node=node,
        partition=partition,
        attempt=1,
        params=event_params,
        inputs=inputs,
    )


def stored(value: Any) -> Any:
    """A result as the engine hands it on: through JSON (which also proves it serialises)."""
    return json.loads(json.dumps(value))


def run_graph(event_params: dict[str, Any]) -> dict[str, Any]:
    """Run every Python task by hand, in dependency order, as the engine would."""
    summaries: dict[str, Any] = {}
    reports: dict[str, Any] = {}
    for dept in event_params["departments"]:
        extracts = {node: stored(getattr(tasks, node)(make_ctx(node, dept, event_params, {}))) for node in EXTRACTS}
        processed = stored(tasks.process(make_ctx("process", dept, event_params, extracts)))
        summaries[dept] = stored(tasks.summarize(make_ctx("summarize", dept, event_params, {"process": processed})))
        reports[dept] = stored(
            tasks.dept_report(make_ctx("dept_report", dept, event_params, {"summarize": summaries[dept]}))
        )
    hq = stored(tasks.hq_summary(make_ctx("hq_summary", None, event_params, {"summarize": summaries})))
    return {"summaries": summaries, "reports": reports, "hq_summary": hq}


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for running the example's modules as programs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES), str(ROOT)])
    return {**env, **extra}


def run_render_hq(
    work: Path, inputs: Any, event_params: dict[str, Any], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m year_end_report.render_hq`` the way a worker runs an argv node."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "inputs.json").write_text(json.dumps(inputs), encoding="utf-8")
    (work / "params.json").write_text(json.dumps(event_params), encoding="utf-8")
    env = subprocess_env(
        BATON_INPUTS_FILE=str(work / "inputs.json"),
        BATON_PARAMS_FILE=str(work / "params.json"),
        BATON_RESULT_FILE=str(work / "result.json"),
    )
    return subprocess.run(
        [sys.executable, "-m", "year_end_report.render_hq"],
        env=env,
        cwd=cwd or work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def read_csv_dicts(path: Path) -> list[dict[str, str]]:
    """All rows of a CSV file."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def figures_of(event_run: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Each department's annual figures from a run."""
    return {dept: summary["figures"] for dept, summary in event_run["summaries"].items()}


def rows_digest(department: str, year: int) -> str:
    """A digest of every system's simulated rows for one department."""
    data = [company.simulated_rows(system, department, year) for system in company.SYSTEMS]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def simulated_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One full run over the default departments from the simulated systems, HQ included."""
    base = tmp_path_factory.mktemp("simulated")
    event_params = {"year": YEAR, "departments": DEPARTMENTS, "out_dir": str(base / "out"), "source_dir": ""}
    run = run_graph(event_params)
    proc = run_render_hq(base / "hq_node", {"hq_summary": run["hq_summary"]}, event_params)
    run.update(params=event_params, out=base / "out", render=proc, result_file=base / "hq_node" / "result.json")
    return run


# --- the simulated company --------------------------------------------------------------


def test_seed_is_a_stable_crc_of_year_department_system() -> None:
    assert company.seed_for(2025, "sales", "finance") == zlib.crc32(b"2025:sales:finance")


def test_same_inputs_give_same_data_even_in_another_process() -> None:
    here = rows_digest("branch_shenzhen", YEAR)
    assert here == rows_digest("branch_shenzhen", YEAR)
    code = (
        "from year_end_report.company import simulated_rows, SYSTEMS; import hashlib, json; "
        "d = [simulated_rows(s, 'branch_shenzhen', 2025) for s in SYSTEMS]; "
        "print(hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(PYTHONHASHSEED="123"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == here


def test_years_and_systems_give_different_data() -> None:
    assert rows_digest("sales", 2024) != rows_digest("sales", 2025)
    assert company.seed_for(YEAR, "sales", "erp") != company.seed_for(YEAR, "sales", "crm")


def test_departments_differ(simulated_run: dict[str, Any]) -> None:
    per_dept = figures_of(simulated_run)
    assert len({dept_figures["revenue"] for dept_figures in per_dept.values()}) == len(DEPARTMENTS)
    assert len({rows_digest(dept, YEAR) for dept in DEPARTMENTS}) == len(DEPARTMENTS)
    assert per_dept["sales"]["revenue"] > 10 * per_dept["marketing"]["revenue"]


def test_records_look_like_their_systems() -> None:
    ledger = company.generate("finance", "operations", YEAR)
    erp = company.generate("erp", "operations", YEAR)
    deals = company.generate("crm", "operations", YEAR)
    assert {line.account for line in ledger if isinstance(line, company.LedgerLine)} == set(company.ACCOUNTS)
    assert {item.kind for item in erp if isinstance(item, company.ErpLine)} == {"order", "stock"}
    assert {deal.stage for deal in deals if isinstance(deal, company.Deal)} == {"won", "lost", "open"}
    assert {row["month"] for row in company.simulated_rows("finance", "operations", YEAR)} == {
        str(month) for month in range(1, 13)
    }


def test_unknown_department_gets_its_own_scale_and_bad_slugs_are_refused() -> None:
    assert company.generate("finance", "branch_beijing", YEAR)
    assert company.profile_for("branch_beijing") != company.profile_for("branch_xian")
    for bad in ("../etc", "Sales", "", "a/b"):
        with pytest.raises(ValueError, match="department slug"):
            company.generate("finance", bad, YEAR)


def test_display_names() -> None:
    assert company.display_name("customer_service") == "Customer Service"
    assert company.display_name("branch_chengdu") == "Chengdu branch"


# --- exact money and cleaning -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cents"),
    [("0.00", 0), ("1234.56", 123456), ("-0.05", -5), ("7", 700), (" 12.5 ", 1250), ("-1000000.01", -100000001)],
)
def test_cents_parse_exactly(text: str, cents: int) -> None:
    assert figures.parse_cents(text) == cents
    assert figures.parse_cents(figures.format_cents(cents)) == cents


@pytest.mark.parametrize("text", ["1.005", "abc", "", "NaN", "inf"])
def test_cents_refuse_what_is_not_whole_cents(text: str) -> None:
    with pytest.raises(ValueError):
        figures.parse_cents(text)


def test_format_cents_groups_thousands_for_people() -> None:
    assert figures.format_cents(-123456789, grouped=True) == "-1,234,567.89"
    assert figures.format_value("units_sold", 12345, grouped=True) == "12,345"


def test_cleaning_normalises_rows_and_drops_exact_duplicates() -> None:
    row = {"entry_id": " GL-1 ", "month": "03", "account": " Revenue ", "description": "x", "amount": "10.50"}
    lines = processing.parse_ledger([row, dict(row)], "test.csv")
    assert lines[0] == company.LedgerLine("GL-1", 3, "revenue", "x", 1050)
    assert processing.drop_duplicates(lines, lambda line: line.entry_id, "test.csv") == lines[:1]


def test_cleaning_refuses_conflicting_ids_and_bad_rows() -> None:
    first = company.Deal("D-1", 1, "Acme", "won", 100)
    with pytest.raises(ValueError, match="two different records"):
        processing.drop_duplicates(
            [first, company.Deal("D-1", 1, "Acme", "lost", 100)], lambda deal: deal.deal_id, "crm.csv"
        )
    bad = {"line_id": "E-1", "month": "13", "kind": "order", "product": "p", "units": "1", "unit_cost": "1.00"}
    with pytest.raises(ValueError, match=r"erp\.csv: data row 1: month out of range"):
        processing.parse_erp([bad], "erp.csv")
    with pytest.raises(ValueError, match="unknown stage"):
        processing.parse_deals(
            [{"deal_id": "D", "month": "1", "customer": "c", "stage": "maybe", "value": "1"}], "crm.csv"
        )


def test_monthly_figures_derive_profits_and_value_stock() -> None:
    ledger = [
        company.LedgerLine("1", 1, "revenue", "", 1000),
        company.LedgerLine("2", 1, "cogs", "", 400),
        company.LedgerLine("3", 1, "opex", "", 100),
        company.LedgerLine("4", 1, "payroll", "", 200),
    ]
    erp = [company.ErpLine("1", 1, "order", "p", 5, 300), company.ErpLine("2", 1, "stock", "p", 3, 250)]
    deals = [company.Deal("1", 1, "c", "won", 700), company.Deal("2", 1, "c", "open", 90)]
    january = processing.monthly_figures(ledger, erp, deals)[0]
    assert january["gross_profit"] == 600
    assert january["operating_profit"] == 300
    assert (january["units_sold"], january["inventory_value"]) == (5, 750)
    assert (january["deals_won"], january["won_value"], january["pipeline_value"]) == (1, 700, 90)


def test_annual_adds_flows_and_keeps_december_stock() -> None:
    months = [dict.fromkeys(FIGURE_KEYS, month) for month in range(1, 13)]
    year = figures.annual(months)
    assert year["revenue"] == sum(range(1, 13))
    assert year["inventory_value"] == 12


# --- running the tasks ------------------------------------------------------------------


def test_tasks_write_every_file(simulated_run: dict[str, Any]) -> None:
    out: Path = simulated_run["out"]
    for dept in DEPARTMENTS:
        for name in ("finance.csv", "erp.csv", "crm.csv", "processed.json"):
            assert (out / "work" / dept / name).is_file()
        report = simulated_run["reports"][dept]
        assert report == {
            "html": str(out / "departments" / f"{dept}.html"),
            "csv": str(out / "departments" / f"{dept}.csv"),
        }
        assert "<table>" in Path(report["html"]).read_text(encoding="utf-8")
    assert (out / "hq" / "company.html").is_file()
    assert (out / "hq" / "company.csv").is_file()


def test_results_stay_small(simulated_run: dict[str, Any]) -> None:
    assert len(json.dumps(simulated_run["hq_summary"])) < 10_000
    for summary in simulated_run["summaries"].values():
        assert len(json.dumps(summary)) < 2_000


def test_annual_figures_are_consistent(simulated_run: dict[str, Any]) -> None:
    for dept_figures in figures_of(simulated_run).values():
        assert dept_figures["gross_profit"] == dept_figures["revenue"] - dept_figures["cogs"]
        assert dept_figures["operating_profit"] == (
            dept_figures["gross_profit"] - dept_figures["opex"] - dept_figures["payroll"]
        )
        assert all(type(value) is int for value in dept_figures.values())


def test_hq_totals_are_exact_sums_of_departments(simulated_run: dict[str, Any]) -> None:
    hq = simulated_run["hq_summary"]
    per_dept = figures_of(simulated_run)
    assert hq["departments"] == DEPARTMENTS
    assert hq["by_department"] == per_dept
    for key in FIGURE_KEYS:
        assert hq["totals"][key] == sum(dept_figures[key] for dept_figures in per_dept.values())


def test_hq_csv_total_row_equals_sum_of_department_csvs(simulated_run: dict[str, Any]) -> None:
    out: Path = simulated_run["out"]
    hq_rows = {row["department"]: row for row in read_csv_dicts(out / "hq" / "company.csv")}
    assert list(hq_rows) == [*DEPARTMENTS, "TOTAL"]
    sums = dict.fromkeys(FIGURE_KEYS, Decimal(0))
    for dept in DEPARTMENTS:
        dept_rows = read_csv_dicts(out / "departments" / f"{dept}.csv")
        assert [row["figure"] for row in dept_rows] == list(FIGURE_KEYS)
        for row in dept_rows:
            sums[row["figure"]] += Decimal(row["value"])
            assert Decimal(hq_rows[dept][row["figure"]]) == Decimal(row["value"])
    assert {key: Decimal(hq_rows["TOTAL"][key]) for key in FIGURE_KEYS} == sums


def test_render_hq_runs_as_a_command(simulated_run: dict[str, Any]) -> None:
    proc: subprocess.CompletedProcess[str] = simulated_run["render"]
    assert proc.returncode == 0, proc.stderr
    result = json.loads(simulated_run["result_file"].read_text(encoding="utf-8"))
    out: Path = simulated_run["out"]
    assert result["html"] == str(out / "hq" / "company.html")
    assert result["csv"] == str(out / "hq" / "company.csv")
    assert result["totals"] == simulated_run["hq_summary"]["totals"]
    page = (out / "hq" / "company.html").read_text(encoding="utf-8")
    assert "Chengdu branch" in page and "TOTAL" in page


def test_csv_sources_give_the_same_figures_as_the_simulation(simulated_run: dict[str, Any], tmp_path: Path) -> None:
    chosen = ["sales", "branch_chengdu", "customer_service"]
    cli = [
        sys.executable,
        "-m",
        "year_end_report.company",
        "--out",
        str(tmp_path / "src"),
        "--year",
        str(YEAR),
        "--departments",
        ",".join(chosen),
    ]
    subprocess.run(cli, env=subprocess_env(), capture_output=True, text=True, timeout=60, check=True)
    for system in company.SYSTEMS:
        assert sorted(p.name for p in (tmp_path / "src" / system).iterdir()) == sorted(f"{dept}.csv" for dept in chosen)
    from_files = run_graph(
        {"year": YEAR, "departments": chosen, "out_dir": str(tmp_path / "out"), "source_dir": str(tmp_path / "src")}
    )
    simulated = figures_of(simulated_run)
    assert figures_of(from_files) == {dept: simulated[dept] for dept in chosen}


def test_missing_source_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "src" / "finance").mkdir(parents=True)
    event_params = {
        "year": YEAR,
        "departments": ["sales"],
        "out_dir": str(tmp_path / "out"),
        "source_dir": str(tmp_path / "src"),
    }
    with pytest.raises(FileNotFoundError) as caught:
        tasks.extract_erp(make_ctx("extract_erp", "sales", event_params, {}))
    assert str(tmp_path / "src" / "erp" / "sales.csv") in str(caught.value)


def test_source_file_with_missing_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "src" / "crm" / "sales.csv"
    path.parent.mkdir(parents=True)
    path.write_text("deal_id,month,customer,stage\nD-1,1,Acme,won\n", encoding="utf-8")
    event_params = {
        "year": YEAR,
        "departments": ["sales"],
        "out_dir": str(tmp_path / "out"),
        "source_dir": str(tmp_path / "src"),
    }
    with pytest.raises(ValueError, match="missing column"):
        tasks.extract_crm(make_ctx("extract_crm", "sales", event_params, {}))


def test_rerun_reproduces_identical_files(tmp_path: Path) -> None:
    event_params = {"year": YEAR, "departments": ["operations"], "out_dir": str(tmp_path), "source_dir": ""}
    run_graph(event_params)
    first = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    run_graph(event_params)
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == first


def test_tasks_refuse_missing_partition_or_inputs(tmp_path: Path) -> None:
    event_params = {"year": YEAR, "departments": ["sales"], "out_dir": str(tmp_path)}
    with pytest.raises(ValueError, match="per department"):
        tasks.extract_finance(make_ctx("extract_finance", None, event_params, {}))
    with pytest.raises(ValueError, match="needs the result of extract_finance"):
        tasks.process(make_ctx("process", "sales", event_params, {}))


def test_hq_summary_refuses_missing_departments() -> None:
    summary = {"figures": dict.fromkeys(FIGURE_KEYS, 1)}
    with pytest.raises(ValueError, match="marketing"):
        tasks.company_summary(YEAR, {"sales": summary}, ["sales", "marketing"])
    result = tasks.company_summary(YEAR, {"sales": summary, "extra": summary}, ["sales"])
    assert result["departments"] == ["sales", "extra"]
    assert result["totals"] == dict.fromkeys(FIGURE_KEYS, 2)


def test_params_are_validated() -> None:
    assert params.read_params({"year": "2024", "departments": "sales, marketing"}).departments == ("sales", "marketing")
    bad_params: list[dict[str, Any]] = [
        {"year": "next"},
        {"year": True},
        {"departments": []},
        {"departments": ["sales", "sales"]},
        {"departments": ["../x"]},
        {"out_dir": ""},
    ]
    for bad in bad_params:
        with pytest.raises(ValueError):
            params.read_params(bad)


def test_department_report_escapes_html() -> None:
    months = [{"month": month, **dict.fromkeys(FIGURE_KEYS, 0)} for month in range(1, 13)]
    zero = dict.fromkeys(FIGURE_KEYS, 0)
    page = reports.department_page("<R&D> report", zero, figures.kpis(zero), months)
    assert "&lt;R&amp;D&gt; report" in page
    assert "<R&D>" not in page


# --- the HQ command's failure modes -----------------------------------------------------


def test_render_hq_refuses_bad_input(simulated_run: dict[str, Any], tmp_path: Path) -> None:
    event_params = {"out_dir": str(tmp_path / "out")}
    proc = run_render_hq(tmp_path / "a", {"something_else": {}}, event_params)
    assert proc.returncode == 2
    assert "hq_summary" in proc.stderr
    tampered = json.loads(json.dumps(simulated_run["hq_summary"]))
    tampered["totals"]["revenue"] += 1
    proc = run_render_hq(tmp_path / "b", {"hq_summary": tampered}, event_params)
    assert proc.returncode == 2
    assert "not the sum" in proc.stderr
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "b" / "result.json").exists()


def test_render_hq_needs_its_environment(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "year_end_report.render_hq"],
        env=subprocess_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "BATON_INPUTS_FILE" in proc.stderr


def test_render_hq_relative_out_dir_is_relative_to_cwd(simulated_run: dict[str, Any], tmp_path: Path) -> None:
    proc = run_render_hq(
        tmp_path / "node", {"hq_summary": simulated_run["hq_summary"]}, {"out_dir": "relative_out"}, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "relative_out" / "hq" / "company.csv").is_file()


# --- the graph file ---------------------------------------------------------------------


def test_graph_file_matches_the_code() -> None:
    yaml = pytest.importorskip("yaml")
    graph = yaml.safe_load((EXAMPLES / "year_end_report" / "graph.yaml").read_text("utf-8"))
    assert graph["params"]["departments"]["default"] == DEPARTMENTS
    assert graph["params"]["year"]["default"] == company.DEFAULT_YEAR
    assert graph["params"]["out_dir"]["default"] == params.DEFAULT_OUT_DIR
    assert graph["partitions"] == {"param": "departments"}
    for name, node in graph["nodes"].items():
        if "run" in node:
            module, function = node["run"].split(":")
            assert module == "year_end_report.tasks" and function == name
            assert callable(getattr(tasks, function))
    assert graph["nodes"]["hq_report"]["command"] == ["{python}", "-m", "year_end_report.render_hq"]


def test_render_hq_uses_batons_variable_names() -> None:
    assert render_hq.ENV_INPUTS_FILE == baton_context.ENV_INPUTS_FILE
    assert render_hq.ENV_PARAMS_FILE == baton_context.ENV_PARAMS_FILE
    assert render_hq.ENV_RESULT_FILE == baton_context.ENV_RESULT_FILE
