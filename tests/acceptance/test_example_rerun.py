"""The year-end report with real source files: one department's finance export is missing.

The event fails with every other department's report written; once the file arrives,
``baton rerun EVENT --workers N`` finishes the event without re-running any success, and
the HQ report then adds up all departments.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import EXAMPLE, ROOT, baton

from baton.engine.states import EventState, Outcome, TaskState
from baton.store import open_store

pytestmark = pytest.mark.slow
DEPARTMENTS = ["sales", "marketing", "branch_chengdu"]


def test_a_missing_source_file_fails_one_department_and_rerun_finishes_after_it_arrives(tmp_path: Path) -> None:
    sources, out, db = tmp_path / "sources", tmp_path / "out", f"sqlite:///{tmp_path / 'baton.db'}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "year_end_report.company",
            "--out",
            str(sources),
            "--departments",
            ",".join(DEPARTMENTS),
        ],
        check=True,
        cwd=ROOT / "examples",
        timeout=60,
    )
    missing = sources / "finance" / "marketing.csv"
    shutil.move(missing, tmp_path / "held_back.csv")
    params = ["-p", f"departments={','.join(DEPARTMENTS)}", "-p", f"source_dir={sources}", "-p", f"out_dir={out}"]

    first = baton("run", str(EXAMPLE), *params, "--db", db, "--json", "--workers", "2", "--slots", "2")
    assert first.returncode == 1, first.stderr
    summary = json.loads(first.stdout)
    assert summary["state"] == "failed"
    assert [(f["node"], f["partition"]) for f in summary["failed"]] == [("extract_finance", "marketing")]
    assert "marketing.csv" in summary["failed"][0]["error"]
    assert {p.name for p in (out / "departments").glob("*.html")} == {"sales.html", "branch_chengdu.html"}
    assert not (out / "hq").exists()

    backend = open_store(db)
    event_id = summary["event_id"]
    succeeded_before = {t.id for t in backend.tasks(event_id) if t.state is TaskState.SUCCEEDED}
    shutil.move(tmp_path / "held_back.csv", missing)

    second = baton("rerun", str(event_id), "--db", db, "--json", "--workers", "2", "--slots", "2")
    assert second.returncode == 0, second.stderr
    assert backend.event(event_id).state is EventState.SUCCEEDED
    for task in backend.tasks(event_id):
        successes = [a for a in backend.attempts([task.id]) if a.outcome is Outcome.SUCCEEDED]
        assert len(successes) == 1, f"{task.node}[{task.partition}] succeeded {len(successes)} times"
        if task.id in succeeded_before:
            assert task.attempt == 1, f"{task.node}[{task.partition}] ran again"

    with open(out / "hq" / "company.csv", newline="", encoding="utf-8") as f:
        rows = {r["department"]: r for r in csv.DictReader(f)}
    assert set(rows) == {*DEPARTMENTS, "TOTAL"}
    revenue = sum(Decimal(rows[d]["revenue"]) for d in DEPARTMENTS)
    assert revenue == Decimal(rows["TOTAL"]["revenue"]) > 0
    backend.close()
