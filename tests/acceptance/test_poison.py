"""A poison graph beside a good one, with ``baton controller`` and ``baton worker`` as real
processes; and ``baton run`` on a store that holds other events runs only its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import GRAPHS, Cluster, running_cluster
from conftest import baton

from baton.engine.states import EventState
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(store_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from running_cluster(store_url, tmp_path)


def one_node(name: str) -> Graph:
    g = GraphBuilder(name, python_path=[GRAPHS])
    g.param("ledger", "string", default="").param("sleep_s", "number", default=0.0)
    return g.python("only", "fault_tasks:slow").build()


def store_as_an_older_release_would(cluster: Cluster, graph: Graph, priority: int) -> int:
    """Register ``graph``, then give its stored spec a priority today's validation refuses."""
    record = cluster.backend.register_graph(graph)
    spec = dict(record.spec)
    spec["nodes"] = {name: {**node, "priority": priority} for name, node in spec["nodes"].items()}
    with cluster.backend.transaction() as tx:
        tx.q("UPDATE graphs SET spec = ? WHERE id = ?", (json.dumps(spec), record.id))
    return record.id


def test_a_poison_graph_fails_its_event_with_the_cause_and_the_good_event_succeeds(cluster: Cluster) -> None:
    poison_graph = store_as_an_older_release_would(cluster, one_node("poison"), 2**70)
    poison, _ = cluster.backend.submit(poison_graph, {"ledger": "", "sleep_s": 0.0})
    good = cluster.submit(one_node("good"))
    cluster.start_controller()
    cluster.start_worker(2)

    assert cluster.wait(good) is EventState.SUCCEEDED  # before the fix it stayed submitted forever
    assert cluster.wait(poison.id) is EventState.FAILED
    assert cluster.controller is not None and cluster.controller.poll() is None  # still running

    status = baton("status", str(poison.id), "--db", cluster.db_url)
    assert status.returncode == 0, status.stderr
    assert f"event {poison.id} failed: cannot expand:" in status.stdout
    as_json = json.loads(baton("status", str(poison.id), "--json", "--db", cluster.db_url).stdout)
    assert as_json["state"] == "failed" and as_json["error"].startswith("cannot expand:")


def test_baton_run_runs_only_its_own_event(store_url: str, tmp_path: Path) -> None:
    cluster = Cluster(store_url, tmp_path)
    other_graph = one_node("someone-elses")
    record = cluster.backend.register_graph(other_graph)
    other, _ = cluster.backend.submit(record.id, validate_params(other_graph, {}))

    result = baton("run", str(Path(GRAPHS) / "cli_params.yaml"), "-p", "year=2025", "--workers", "1",
                   "--json", "--db", store_url, cwd=tmp_path)  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "succeeded"
    untouched = cluster.backend.event(other.id)  # before the fix it was expanded and run too
    assert untouched.state is EventState.SUBMITTED
    assert cluster.backend.tasks(other.id) == []
    cluster.backend.close()
