"""The event centre end to end, as real processes: the example's backfill of five year-end
reports with at most two running, each success publishing its reports through a chained event,
and the controller killed in the middle (-9) and started again, without a duplicate."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from baton.engine.states import EventState
from baton.graphs.calendars import load_calendar_text
from baton.graphs.spec import load_graph_file
from baton.store.records import BackfillRequest, EventRecord
from tests.cluster import Cluster, running_cluster, wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "year_end_report"
YEARS = [2020, 2021, 2022, 2023, 2024]  # the fires of January 2021 to 2025 report on the year before


@pytest.fixture
def cluster(db_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from running_cluster(db_url, tmp_path)


def year_ends(cluster: Cluster, kind: str = "year_end_report") -> list[EventRecord]:
    return sorted((e for e in cluster.backend.events(limit=1000) if e.type == kind), key=lambda e: e.id)


def most_at_once(events: list[EventRecord]) -> int:
    """The most events unfinished at one instant, from their submit and end times."""
    edges = sorted([(e.submitted_at, 1) for e in events] + [(e.finished_at or float("inf"), -1) for e in events])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_the_examples_backfill_survives_its_controller_and_publishes_each_report_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    store = cluster.backend
    store.register_calendar(load_calendar_text((EXAMPLE / "calendar.yaml").read_text()))
    for name in ("graph.yaml", "publish.yaml"):
        store.register_graph(load_graph_file(EXAMPLE / name))
    controller = cluster.start_controller()
    for _ in range(2):
        cluster.start_worker(4, "--label", "erp")
    start, end = datetime(2021, 1, 1, tzinfo=UTC).timestamp(), datetime(2025, 12, 31, tzinfo=UTC).timestamp()
    backfill = store.start_backfill(BackfillRequest("year_end", start, end, max_running=2), actor="test")
    assert backfill.total == 5

    wait_for(lambda: store.backfill(backfill.id).raised >= 3, timeout_s=120, what="three reports raised")
    controller.send_signal(signal.SIGKILL)  # mid-backfill, with reports running
    controller.wait()
    cluster.start_controller()
    wait_for(lambda: store.backfill(backfill.id).state == "done", timeout_s=180, what="the backfill to finish")
    wait_for(lambda: len(year_ends(cluster, "publish_reports")) == 5 and all(
        e.state.terminal for e in year_ends(cluster) + year_ends(cluster, "publish_reports")),
        timeout_s=180, what="every report and its publishing to end")  # fmt: skip

    reports = year_ends(cluster)
    assert sorted(e.params["year"] for e in reports) == YEARS
    assert all(e.state is EventState.SUCCEEDED and e.backfill_id == backfill.id for e in reports)
    assert most_at_once(reports) <= 2
    published = year_ends(cluster, "publish_reports")
    assert sorted(e.source_event_id for e in published) == sorted(e.id for e in reports)  # type: ignore[type-var]
    assert all(e.state is EventState.SUCCEEDED for e in published)
    for year in YEARS:
        manifest = json.loads((tmp_path / "year_end_report_published" / str(year) / "manifest.json").read_text())
        assert manifest["year"] == year and "hq/company.html" in manifest["files"]
    done = store.backfill(backfill.id)
    assert (done.raised, done.skipped, done.running) == (5, 0, 0)
