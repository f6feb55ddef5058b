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
from baton.graphs.spec import load_graph_file, load_graph_text
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


SOURCE = """
graph: source
params: {n: {type: integer, default: 0}}
nodes:
  only: {run: "cli_tasks:collect", partitioned: false}
python_path: [GRAPHS]
"""
CHAINED = """
graph: chained
params: {n: {type: integer}}
raised_by:
  - {event: source, params: {n: "{source.params.n}"}}
nodes:
  only: {run: "cli_tasks:collect", partitioned: false}
python_path: [GRAPHS]
"""


def test_a_controller_killed_between_a_sources_end_and_its_chained_event_raises_it_once(
    cluster: Cluster,
) -> None:
    """The fault point ``dispatch.before_commit`` kills the controller inside the transaction
    that would raise the chained event: the source has ended (its outbox row is committed), the
    chained event is not. The next controller raises it, once."""
    from tests.cluster import GRAPHS

    store = cluster.backend
    for text in (SOURCE, CHAINED):
        store.register_graph(load_graph_text(text.replace("GRAPHS", json.dumps(GRAPHS))))
    cluster.start_worker(2)
    dying = cluster.start_controller(env={"BATON_FAULT": "dispatch.before_commit"})
    source = store.submit(store.latest_graph("source").id, {"n": 7})[0].id
    assert dying.wait(timeout=60) == 99  # died in the dispatch, after the source ended
    assert store.event_state(source) is EventState.SUCCEEDED
    assert year_ends(cluster, "chained") == []
    cluster.start_controller()
    wait_for(lambda: [e.state for e in year_ends(cluster, "chained")] == [EventState.SUCCEEDED],
             timeout_s=60, what="the chained event to run")  # fmt: skip
    (chained,) = year_ends(cluster, "chained")
    assert chained.params == {"n": 7} and chained.source_event_id == source
