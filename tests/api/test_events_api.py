"""``/api/v1`` against a real server on loopback, on both backends: submit with idempotency,
read an event's counts, and the shape of errors."""

from __future__ import annotations

from serving import Served, mint

from baton.access import Role
from baton.graphs.builder import GraphBuilder
from baton.store.protocol import Store


def _graph(backend: Store) -> None:
    g = GraphBuilder("api_demo").param("depts", "list", default=["a", "b"]).partitions(param="depts")
    g.python("extract", "m:f", partitioned=True)
    g.python("summary", "m:f", after=["extract"])
    backend.register_graph(g.build())


def test_submit_is_idempotent_by_key_and_refuses_the_same_key_with_other_parameters(
    backend: Store, served: Served
) -> None:
    _graph(backend)
    with served.client(mint(backend, Role.CLIENT)) as http:
        first = http.post("/api/v1/events", json={"type": "api_demo", "params": {}}, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 201, first.text
        again = http.post("/api/v1/events", json={"type": "api_demo", "params": {}}, headers={"Idempotency-Key": "k1"})
        assert again.status_code == 200 and again.headers["Idempotency-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        other = http.post("/api/v1/events", json={"type": "api_demo", "params": {"depts": ["x"]}},
                          headers={"Idempotency-Key": "k1"})  # fmt: skip
        assert other.status_code == 409
        assert other.headers["content-type"] == "application/problem+json"
        assert other.json()["event_id"] == first.json()["id"]
        unknown = http.post("/api/v1/events", json={"type": "nope"})
        assert unknown.status_code == 404 and unknown.json()["status"] == 404
        bad = http.post("/api/v1/events", json={"type": "api_demo", "params": {"depts": 3, "extra": 1}})
        assert bad.status_code == 422
        assert len(bad.json()["errors"]) == 2, bad.json()
        shown = http.get(f"/api/v1/events/{first.json()['id']}")
        assert shown.status_code == 200 and shown.json()["state"] == "submitted"


def test_no_token_is_401_and_a_viewer_cannot_submit(backend: Store, served: Served) -> None:
    _graph(backend)
    with served.client() as http:
        assert http.get("/api/v1/events").status_code == 401
        assert http.get("/healthz").status_code == 200
    with served.client(mint(backend, Role.VIEWER)) as http:
        assert http.get("/api/v1/events").status_code == 200
        refused = http.post("/api/v1/events", json={"type": "api_demo"})
        assert refused.status_code == 403 and refused.json()["title"] == "Forbidden"
