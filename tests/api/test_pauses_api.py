"""Pause and resume, and a graph's event limit, where a user looks for them: ``/api/v1/pauses`` (bounds and roles),
``baton pause``/``resume``/``pauses`` (alike through a server and from the database), the event's
``paused`` count and waiting reasons in ``/api/v1/events/{id}/waiting`` and ``baton status``,
the event page's header and waiting panel, ``baton.Client`` and ``/metrics``."""

from __future__ import annotations

import json

from limited import chain, claim, start
from serving import Served, mint
from test_cli_server_mode import Both, baton_all

from baton.access import Role
from baton.client import Client
from baton.engine.states import EventState
from baton.graphs.builder import GraphBuilder
from baton.store.protocol import Store
from baton.store.records import PauseTarget, TaskCounts


def test_the_api_pauses_and_resumes_within_its_bounds_and_roles(backend: Store, served: Served) -> None:
    event_id = start(backend, chain())
    claim(backend, slots=2)
    steer, viewer = mint(backend, Role.CLIENT), mint(backend, Role.VIEWER)
    other = mint(backend, Role.CLIENT, event_types=["someone_else"])
    with served.client(steer) as http:
        paused = http.post("/api/v1/pauses", json={"event_id": event_id, "reason": "ERP maintenance"})
        again = http.post("/api/v1/pauses", json={"event_id": event_id})
        both = http.post("/api/v1/pauses", json={"event_id": event_id, "graph": "paused"})
        neither = http.post("/api/v1/pauses", json={"reason": "x"})
        node_alone = http.post("/api/v1/pauses", json={"graph": "paused", "node": "load"})
        long_reason = http.post("/api/v1/pauses", json={"event_id": event_id, "reason": "x" * 501})
        unknown = http.post("/api/v1/pauses", json={"graph": "nope"})
        listed = http.get("/api/v1/pauses", params={"event_id": event_id})
        waiting = http.get(f"/api/v1/events/{event_id}/waiting")
        shown = http.get(f"/api/v1/events/{event_id}")
    with served.client(viewer) as http:
        refused = http.post("/api/v1/pauses/resume", json={"event_id": event_id})
        seen = http.get("/api/v1/pauses")
    with served.client(other) as http:
        hidden = http.post("/api/v1/pauses/resume", json={"event_id": event_id})
        none_seen = http.get("/api/v1/pauses")
    assert paused.status_code == 201, paused.text
    body = paused.json()
    assert (
        body["created"]
        and body["pause"]["target"] == f"event:{event_id}"
        and body["pause"]["reason"] == "ERP maintenance"
    )
    assert body["held"] == {"ready": 8, "pending": 10, "running": 2}
    assert again.status_code == 200 and not again.json()["created"]
    assert [r.status_code for r in (both, neither, node_alone, long_reason)] == [422] * 4
    assert unknown.status_code == 404
    assert [p["target"] for p in listed.json()] == [f"event:{event_id}"]
    assert shown.json()["paused"] == 1
    reasons = {(g["node"], g["reason"]): g for g in waiting.json()}
    extract = reasons[("extract", "paused")]
    assert extract["count"] == 8 and "ERP maintenance" in extract["sentence"]
    assert reasons[("load", "paused")]["count"] == 10
    assert refused.status_code == 403 and len(seen.json()) == 1
    assert hidden.status_code == 403 and none_seen.json() == []

    client = Client(served.url, steer)
    resumed = client.resume(event_id=event_id)
    assert resumed.released == TaskCounts(ready=8, pending=10, running=2) and resumed.still_paused == ()
    assert client.pauses() == [] and client.event(event_id).event.paused == 0
    with served.client(steer) as http:
        twice = http.post("/api/v1/pauses/resume", json={"event_id": event_id})
    assert twice.status_code == 409 and "is not paused" in twice.json()["detail"]
    graph = client.pause(graph="paused", reason="month end")
    assert graph.created and graph.pause.graph == "paused" and graph.held.ready == 8
    assert [p.target for p in client.pauses(event_id)] == ["graph:paused"]
    client.close()


def test_the_cli_pauses_resumes_and_lists_alike_through_a_server_and_the_database(
    backend: Store, served: Served
) -> None:
    event_id = start(backend, chain())
    token = mint(backend, Role.CLIENT)
    both = Both(backend.url, served.url, token)
    (paused,) = baton_all(["pause", str(event_id), "--node", "load", "--reason", "late ERP", "--db", backend.url])
    assert paused.returncode == 0, paused.stderr
    said = f"paused event:{event_id}:node:load: 0 ready tasks out of the queue, 10 pending tasks will wait, "
    assert paused.stdout.strip() == said + "0 running tasks finish"
    listed = both.compare("pauses")
    assert listed.returncode == 0 and f"event:{event_id}:node:load  (paused by operator since" in listed.stdout
    assert "late ERP" in listed.stdout
    as_json = both.compare("pauses", "--json", "--event", str(event_id))
    assert [p["target"] for p in json.loads(as_json.stdout)] == [f"event:{event_id}:node:load"]
    for status in baton_all(both.remote("status", str(event_id)), both.direct("status", str(event_id))):
        head, *_ = status.stdout.splitlines()  # (its elapsed time differs)
        assert head.endswith("· paused") and "\nnot running:\n" in status.stdout
        assert f"  load     paused     10 held by pause event:{event_id}:node:load (by " in status.stdout
    for argv, wanted in (
        (["pause"], "name either an EVENT_ID or a --graph"),
        (["pause", "--graph", "paused", "--node", "load"], "give its EVENT_ID"),
        (["pause", str(event_id), "--graph", "paused"], "name either"),
        (["resume", "--graph", "paused"], "graph paused is not paused"),
        (["pause", "--graph", "nope"], "no graph named 'nope'"),
    ):
        for ran in baton_all([*argv, "--db", backend.url]):
            assert ran.returncode == 2 and wanted in ran.stderr, (argv, ran.stderr)
    (resumed,) = baton_all(["resume", str(event_id), "--node", "load", "--json", "--db", backend.url])
    released = {"ready": 0, "pending": 10, "running": 0}
    assert json.loads(resumed.stdout) == {"target": f"event:{event_id}:node:load", "released": released,
                                          "still_paused": []}  # fmt: skip
    backend.pause(PauseTarget(graph="paused"))
    with served.client(token) as http:
        through = http.get("/metrics")
    assert "baton_pauses 1.0" in through.text or "baton_pauses " in through.text
    sample = backend.metrics_sample(None, None, 100, 60.0)
    assert (sample.pauses, sample.tasks_paused) == (1, 20)


def test_the_event_page_shows_who_paused_it_and_offers_to_resume(backend: Store, served: Served) -> None:
    event_id = start(backend, chain())
    backend.pause(PauseTarget(event_id=event_id), reason="ERP maintenance", actor="ops")
    token = mint(backend, Role.CLIENT)
    with served.client(token) as http:
        header = http.get(f"/ui/events/{event_id}/header")
        panel = http.get(f"/ui/events/{event_id}/waiting")
    assert header.status_code == 200 and 'data-paused="1"' in header.text
    assert f'data-pause="event:{event_id}"' in header.text and "ERP maintenance" in header.text
    assert f'data-url="/ui/events/{event_id}/resume"' in header.text
    assert 'data-reason="paused"' in panel.text and "held by pause" in panel.text


def test_an_event_queued_by_its_graphs_limit_says_where_it_stands_everywhere(backend: Store, served: Served) -> None:
    g = GraphBuilder("year_end", defaults={"retries": 0}).event_limit(1)
    g.python("summary", "m:f", partitioned=False)
    first, queued = start(backend, g.build()), start(backend, g.build())
    assert backend.event(first).state is EventState.RUNNING and backend.event(queued).state is EventState.SUBMITTED
    token = mint(backend, Role.VIEWER)
    with served.client(token) as http:
        waiting = http.get(f"/api/v1/events/{queued}/waiting")
        panel = http.get(f"/ui/events/{queued}/waiting")
        graph_page = http.get(f"/ui/graphs/{backend.event(queued).graph_id}")
        metrics = http.get("/metrics")
    (group,) = waiting.json()
    assert (group["node"], group["reason"], group["count"]) == ("", "queued", 1)
    assert f"graph year_end runs 1 of its 1 at once (events {first})" in group["sentence"]
    assert 'data-reason="queued"' in panel.text and "<b>queued</b> (#1)" in panel.text
    assert 'data-event-limit="1"' in graph_page.text and "waits for a place" in graph_page.text
    assert "baton_events_queued " in metrics.text
    assert backend.metrics_sample(None, None, 100, 60.0).events_queued == 1
    both = Both(backend.url, served.url, token)
    for status in baton_all(both.remote("status", str(queued)), both.direct("status", str(queued))):
        assert "  (event)  queued     the event waits for a place: graph year_end runs 1 of its 1" in status.stdout
