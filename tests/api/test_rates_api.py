"""Rate limits where a user looks for them: ``/api/v1/limits/rates``, ``baton limits --rates``
(alike through a server and from the database), the event page's waiting panel (reason ``rate``
with when the next start is allowed) and ``/metrics``. The server runs on the real clock, so
the windows here are an hour long: nothing passes while the test runs."""

from __future__ import annotations

import json
import time

from limited import claim, start
from rated import rated
from serving import Served, mint
from test_cli_server_mode import Both, baton_all

from baton.access import Role
from baton.store.protocol import Store
from baton.store.records import RateKeyRecord, RateWait
from baton.store.waiting import Snapshot, waiting_groups

HOUR_S = 3600.0


def test_the_api_and_the_cli_list_each_rate_key_with_its_window(backend: Store, served: Served) -> None:
    event_id = start(backend, rated(3, HOUR_S, parts=[f"p{i}" for i in range(8)]))
    start(backend, rated(1, HOUR_S, parts=["a"], key="zz-other"))
    before = backend.metrics_sample(None, None, 100, 60.0).audit_id
    got = claim(backend, slots=3)
    assert [c.node for c in got] == ["call"] * 3
    keys = backend.rate_keys()
    assert [k.key for k in keys] == ["partner-api", "zz-other"]
    api = keys[0]
    # fair turns: the other event's one call (its turn just after the head's) is the third taken
    assert (api.max_starts, api.period_s, api.started, api.queued + api.parked) == (3, HOUR_S, 2, 6)
    token = mint(backend, Role.VIEWER)
    with served.client(token) as http:
        listed = http.get("/api/v1/limits/rates")
        paged = http.get("/api/v1/limits/rates", params={"after": "partner-api", "limit": 1})
        too_many = http.get("/api/v1/limits/rates", params={"limit": 1001})
    with served.client(mint(backend, Role.VIEWER, event_types=["rated"])) as http:
        scoped = http.get("/api/v1/limits/rates")
    assert listed.status_code == 200 and [RateKeyRecord(**k) for k in listed.json()] == backend.rate_keys()
    assert [k["key"] for k in paged.json()] == ["zz-other"]
    assert too_many.status_code == 422
    assert scoped.status_code == 403 and "shared by every event type" in scoped.json()["detail"]

    both = Both(backend.url, served.url, token)
    shown = both.compare("limits", "--rates")
    assert shown.returncode == 0 and "partner-api" in shown.stdout and "NEXT START" in shown.stdout
    as_json = both.compare("limits", "--rates", "--json")
    assert [k["key"] for k in json.loads(as_json.stdout)] == ["partner-api", "zz-other"]
    (empty,) = baton_all(["limits", "--rates", "--after", "zz-other", "--db", backend.url])
    assert empty.returncode == 0 and "no rate limits" in empty.stdout

    claim(backend, "w2", slots=8)  # the spent rate parks every call left
    (wait,) = backend.rate_waits(event_id)
    assert (wait.node, wait.key, wait.tasks, wait.started, wait.max_starts) == ("call", "partner-api", 5, 3, 3)
    assert wait.until is not None and wait.until == backend.rate_keys()[0].next_start_at
    assert wait.until > time.time() + HOUR_S - 600.0
    with served.client(token) as http:
        panel = http.get(f"/ui/events/{event_id}/waiting")
        metrics = http.get("/metrics")
    assert panel.status_code == 200 and 'data-reason="rate"' in panel.text
    (line,) = [li for li in panel.text.split("<li ") if 'data-reason="rate"' in li]
    assert "5 wait for rate limit partner-api (3 of 3 starts in 1 h); the next may start in" in line
    assert "(until " in line  # when the next start is allowed, as the page writes times
    assert "baton_tasks_rate_waiting " in metrics.text and "baton_rate_starts_refused_total " in metrics.text
    sample = backend.metrics_sample(before, backend.metrics_sample(None, None, 100, 60.0).audit_id, 1000, 60.0)
    assert sample.tasks_rate_waiting == 5
    assert sample.activity.rate_starts_refused == 5


def test_the_waiting_panel_says_which_rate_a_task_waits_for_and_until_when() -> None:
    graph = rated(3, 60.0)
    seen = Snapshot(graph, {"call": {"ready": 7, "running": 3}}, {"call": 10}, [], [], 100.0,
                    rate_waits=[RateWait("call", "partner-api", 5, 3, 3, 60.0, 130.0)])  # fmt: skip
    groups = {g.reason: g for g in waiting_groups(seen) if g.node == "call"}
    assert groups["rate"].count == 5 and groups["rate"].until == 130.0
    assert groups["rate"].sentence == (
        "5 wait for rate limit partner-api (3 of 3 starts in 1 min); the next may start in 30 s"
    )
    assert groups["no_worker"].count == 2  # the two still in the queue, with no live worker
