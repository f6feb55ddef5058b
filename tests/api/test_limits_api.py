"""Concurrency keys where a user looks for them: ``/api/v1/limits``, ``baton limits`` (alike
through a server and from the database), the event page's waiting panel and ``/metrics``."""

from __future__ import annotations

import json

from limited import claim, limited, start
from serving import Served, mint
from test_cli_server_mode import Both, baton_all

from baton.access import Role
from baton.store.protocol import Store
from baton.store.records import KeyWait, LimitKeyRecord
from baton.store.waiting import Snapshot, waiting_groups


def test_the_api_and_the_cli_list_each_key_with_its_tasks(backend: Store, served: Served) -> None:
    event_id = start(backend, limited())
    start(backend, limited(key="dept:{partition}", limit=1, parts=["A", "B"]))
    claim(backend)
    keys = backend.limit_keys()
    assert [k.key for k in keys] == ["dept:A", "dept:B", "erp"]
    erp = keys[-1]
    assert (erp.max_running, erp.running, erp.ready + erp.parked) == (3, 3, 7)
    token = mint(backend, Role.VIEWER)
    with served.client(token) as http:
        listed = http.get("/api/v1/limits")
        paged = http.get("/api/v1/limits", params={"after": "dept:B", "limit": 1})
        too_many = http.get("/api/v1/limits", params={"limit": 1001})
    with served.client(mint(backend, Role.VIEWER, event_types=["limited"])) as http:
        scoped = http.get("/api/v1/limits")
    assert listed.status_code == 200 and [LimitKeyRecord(**k) for k in listed.json()] == keys
    assert [k["key"] for k in paged.json()] == ["erp"]
    assert too_many.status_code == 422
    assert scoped.status_code == 403 and "shared by every event type" in scoped.json()["detail"]

    both = Both(backend.url, served.url, token)
    shown = both.compare("limits")
    assert shown.returncode == 0 and "erp" in shown.stdout and "full" in shown.stdout
    as_json = both.compare("limits", "--json")
    assert [k["key"] for k in json.loads(as_json.stdout)] == ["dept:A", "dept:B", "erp"]
    (empty,) = baton_all(["limits", "--after", "erp", "--db", backend.url])
    assert empty.returncode == 0 and "no concurrency keys" in empty.stdout

    waits = backend.key_waits(event_id)
    assert [(w.node, w.key, w.running, w.max_running) for w in waits] == [("extract", "erp", 3, 3)]
    assert len(waits[0].holders) == 3 and all(
        h.startswith("extract[") and h.endswith("on w1") for h in waits[0].holders
    )
    with served.client(token) as http:
        panel = http.get(f"/ui/events/{event_id}/waiting")
        metrics = http.get("/metrics")
    assert panel.status_code == 200 and 'data-reason="limit"' in panel.text and "concurrency key erp" in panel.text
    assert "baton_tasks_parked " in metrics.text and "baton_limit_keys_full " in metrics.text
    sample = backend.metrics_sample(None, None, 100, 60.0)  # what /metrics reads at its next refresh
    # erp is full (all 7 of its ready tasks wait for it), and so is dept:A: fair turns took its one
    # extract beside erp's first three
    assert (waits[0].tasks, sample.limit_keys_full) == (7, 2)
    assert sample.tasks_parked == 0  # the claim's eight slots filled before it met an erp task over the limit


def test_the_waiting_panel_says_which_key_a_task_waits_for_and_who_holds_it() -> None:
    graph = limited()
    seen = Snapshot(graph, {"extract": {"ready": 7, "running": 3}}, {"extract": 10}, [], [], 0.0,
                    [KeyWait("extract", "erp", 5, 3, 3, ("extract[d00] on w1", "extract[d01] on w1"))])  # fmt: skip
    groups = {g.reason: g for g in waiting_groups(seen) if g.node == "extract"}
    assert groups["limit"].count == 5
    assert groups["limit"].sentence == (
        "5 wait for concurrency key erp (3 of 3 running: extract[d00] on w1, extract[d01] on w1 and more)"
    )
    assert groups["no_worker"].count == 2  # the two not parked, with no live worker
