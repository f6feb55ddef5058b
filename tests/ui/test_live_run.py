"""The year-end report watched in a real browser while it runs (``baton dev``, Debian chromium).

The server and controller start with no worker, so the page first shows every extraction waiting
for a worker; then a worker starts and the page follows the run live (no reload: a marker set in
the page survives). One department's ERP export is held back, so its extraction fails: the test
opens that task's drawer, sees the cause and the log, brings the file back and reruns the
partition from the page; the event then succeeds. A second event is cancelled from its page.
Screenshots of each page are written to ``screenshot_dir``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from playwright.sync_api import Page, expect
from serving import free_port

from baton.local.workers import stop_processes

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "year_end_report" / "graph.yaml"
DEPARTMENTS = ["sales", "marketing", "branch_chengdu"]
RUN_S = 90_000  # ms: a whole run on a busy 2-core machine, with its retries
TOKEN = re.compile(r"#token=(baton_admin_[A-Za-z0-9_-]+)")


@dataclass
class Dev:
    url: str
    token: str
    db: str
    folder: Path
    processes: list[subprocess.Popen[bytes]]

    def worker(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "baton", "worker", "--db", self.db, "--slots", "4", "--label", "erp"]
        with open(self.folder / "worker.log", "ab") as log:
            proc = subprocess.Popen(argv, cwd=self.folder, stdout=log, stderr=log)
        self.processes.append(proc)
        return proc

    def submit(self, sources: Path) -> int:
        params = {"departments": DEPARTMENTS, "source_dir": str(sources), "out_dir": str(self.folder / "out")}
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = httpx.post(f"{self.url}/api/v1/events", json={"type": "year_end_report", "params": params},
                            headers=headers, timeout=30)  # fmt: skip
        assert answer.status_code == 201, answer.text
        event_id: int = answer.json()["id"]
        return event_id


def _wait_for_token(log: Path, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = TOKEN.search(log.read_text())
        if found:
            return found.group(1)
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"baton dev printed no login link:\n{log.read_text()}")


@contextlib.contextmanager
def started_dev(folder: Path, graph: Path, workers: int, env: dict[str, str]) -> Iterator[Dev]:
    port, db = free_port(), f"sqlite:///{folder / 'baton.db'}"
    log = folder / "dev.log"
    argv = [sys.executable, "-m", "baton", "dev", "--graph", str(graph), "--db", db, "--port", str(port),
            "--workers", str(workers)]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=folder, stdout=out, stderr=out, env={**os.environ, **env})
    running = Dev(f"http://127.0.0.1:{port}", "", db, folder, [proc])
    try:
        running.token = _wait_for_token(log, proc)
        yield running
        children = psutil.Process(proc.pid).children(recursive=True)
        stop_processes([proc], 30)  # SIGTERM: baton dev stops its own workers, then exits 0
        assert proc.returncode == 0, log.read_text()
        assert not [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:
        stop_processes(list(reversed(running.processes)), 20)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    with started_dev(tmp_path, EXAMPLE, 0, {"PYTHONUNBUFFERED": "1"}) as running:
        yield running


def _sources(folder: Path) -> Path:
    sources = folder / "sources"
    subprocess.run([sys.executable, "-m", "year_end_report.company", "--out", str(sources),
                    "--departments", ",".join(DEPARTMENTS)], check=True, cwd=ROOT / "examples", timeout=60)  # fmt: skip
    return sources


WATCH = """() => {  // every state each node of the graph is drawn in, as the page changes
  window.__seen = {}; window.__marker = "not reloaded";
  const note = () => document.querySelectorAll("[data-node][data-state]").forEach((g) => {
    const states = (window.__seen[g.dataset.node] ||= []);
    if (!states.includes(g.dataset.state)) states.push(g.dataset.state);
  });
  note();
  new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true });
}"""


def test_a_run_seen_live_its_failed_task_opened_and_its_partition_rerun(
    dev: Dev, page: Page, screenshot_dir: Path
) -> None:
    sources = _sources(dev.folder)
    held_back = sources / "erp" / "marketing.csv"
    shutil.move(held_back, dev.folder / "held_back.csv")
    event_id = dev.submit(sources)
    page.goto(f"{dev.url}/ui/login?next=/ui/events/{event_id}#token={dev.token}")
    page.wait_for_url(f"**/ui/events/{event_id}")
    graph_node = page.locator('#f-graph [data-node="extract_finance"]')
    expect(graph_node).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(page.locator('#f-waiting [data-node="extract_finance"][data-reason="no_worker"]')).to_be_visible()
    page.evaluate(WATCH)
    page.screenshot(path=screenshot_dir / "event-mid-run.png", full_page=True)

    dev.worker()
    expect(page.locator("#event-state")).to_have_text("failed", timeout=RUN_S)
    assert page.evaluate("window.__marker") == "not reloaded"
    seen = page.evaluate("window.__seen")
    assert {"ready", "succeeded"} <= set(seen["extract_finance"]), seen  # drawn in each state, live
    assert "failed" in seen["extract_erp"], seen

    page.locator('tr[data-partition="marketing"] td[data-state="failed"] a').first.click()
    drawer = page.locator("#drawer")
    expect(drawer.locator('.attempt[data-outcome="failed"]').first).to_be_visible()
    expect(drawer).to_contain_text("marketing.csv")
    page.screenshot(path=screenshot_dir / "failed-task-drawer.png")

    shutil.move(dev.folder / "held_back.csv", held_back)
    page.once("dialog", lambda dialog: dialog.accept())
    drawer.get_by_role("button", name="Rerun partition marketing").click()
    expect(page.locator("#flash")).to_contain_text("reset to run again")
    expect(page.locator("#event-state")).to_have_text("succeeded", timeout=RUN_S)
    expect(page.locator('#f-graph [data-node="hq_report"]')).to_have_attribute("data-state", "succeeded")
    # the timeline the page fetches as the event ends is its final one (not one held from the run):
    # every node has run
    expect(page.locator("#f-timeline")).not_to_contain_text("run —", timeout=15_000)
    assert page.evaluate("window.__marker") == "not reloaded"

    page.goto(f"{dev.url}/ui/workers")
    expect(page.locator('tr[data-state="active"]')).to_have_count(1)
    page.screenshot(path=screenshot_dir / "workers.png", full_page=True)
    page.goto(f"{dev.url}/ui/events")
    expect(page.locator(f'tr[data-event="{event_id}"]')).to_have_attribute("data-state", "succeeded")
    page.screenshot(path=screenshot_dir / "events.png", full_page=True)


def test_an_event_cancelled_from_its_page(dev: Dev, page: Page) -> None:
    event_id = dev.submit(_sources(dev.folder))  # no worker: nothing of it starts
    page.goto(f"{dev.url}/ui/login?next=/ui/events/{event_id}#token={dev.token}")
    expect(page.locator("#event-state")).to_have_text("running", timeout=30_000)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel event").click()
    expect(page.locator("#event-state")).to_have_text("cancelled", timeout=30_000)
    expect(page.locator('#f-graph [data-node="process"]')).to_have_attribute("data-state", "cancelled")


TALKING = """graph: ui_tail
python_path: [{graphs}]
params:
  release: {{type: string, required: true}}
nodes:
  talk:
    run: fault_tasks:talk_then_wait
    partitioned: false
"""


def test_a_running_tasks_output_is_tailed_in_its_drawer(tmp_path: Path, page: Page) -> None:
    """The task prints, then waits for a file: its line shows in the drawer while it runs;
    once released, the drawer shows the attempt's final log."""
    graph = tmp_path / "tail.yaml"
    graph.write_text(TALKING.format(graphs=ROOT / "tests" / "graphs"))
    release = tmp_path / "release"
    env = {"BATON_LOG_TAIL_S": "0.2", "PYTHONUNBUFFERED": ""}
    with started_dev(tmp_path, graph, 1, env) as dev:
        answer = httpx.post(f"{dev.url}/api/v1/events", json={"type": "ui_tail", "params": {"release": str(release)}},
                            headers={"Authorization": f"Bearer {dev.token}"}, timeout=30)  # fmt: skip
        assert answer.status_code == 201, answer.text
        event_id = answer.json()["id"]
        page.goto(f"{dev.url}/ui/login?next=/ui/events/{event_id}#token={dev.token}")
        cell = page.locator('p.whole a[data-state="running"]')
        expect(cell).to_be_visible(timeout=30_000)
        cell.click()
        live = page.locator('#drawer .attempt.live pre[data-stream="stdout"]')
        expect(live).to_contain_text("started talk, attempt 1", timeout=30_000)
        assert not release.exists()  # so the task was still running when its line was seen
        release.touch()
        expect(page.locator('#drawer .attempt[data-outcome="succeeded"]')).to_be_visible(timeout=30_000)
        expect(page.locator("#drawer")).to_contain_text("released")
