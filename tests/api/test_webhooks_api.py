"""``/api/v1/webhooks`` against a real ``baton server`` (both backends): what an admin adds comes
back without its secret, the bounds the document states are the ones enforced, removal keeps the
log, the delivery log pages by cursor, and ``baton.Client`` (behind ``--server``) answers the
store's own records. The secret appears in no answer and in no line of the server's log."""

from __future__ import annotations

import hashlib

import pytest
from hooks import SECRET, cancelled_event, dispatch
from serving import Served, mint

from baton.access import Role
from baton.client.api import Client
from baton.client.store import HttpStore
from baton.errors import Conflict, NotFound
from baton.store.protocol import Store

HOOK = {"name": "ops", "url": "https://hooks.example/ops?token=abc", "secret": SECRET, "kinds": ["event.cancelled"]}


def test_an_admin_adds_lists_replaces_and_removes_a_webhook_and_never_sees_its_secret(
    backend: Store, served: Served
) -> None:
    answers = []
    with served.client(mint(backend, Role.ADMIN)) as http:
        answers.append(made := http.post("/api/v1/webhooks", json=HOOK))
        assert made.status_code == 201, made.text
        assert made.json()["secret_fingerprint"] == hashlib.sha256(SECRET.encode()).hexdigest()[:4]
        assert made.json()["enabled"] is True and "secret" not in made.json()
        answers.append(taken := http.post("/api/v1/webhooks", json={**HOOK, "kinds": ["event.failed"]}))
        assert taken.status_code == 409 and "replace" in taken.json()["detail"]
        answers.append(replaced := http.post("/api/v1/webhooks", json={**HOOK, "kinds": ["event.failed"],
                                                                       "replace": True}))  # fmt: skip
        assert replaced.status_code == 201 and replaced.json()["kinds"] == ["event.failed"]
        answers.append(listed := http.get("/api/v1/webhooks"))
        assert [w["name"] for w in listed.json()] == ["ops"]
        answers.append(removed := http.delete("/api/v1/webhooks/ops"))
        assert removed.status_code == 200 and removed.json()["enabled"] is False
        answers.append(again := http.delete("/api/v1/webhooks/ops"))
        assert again.json() == removed.json()
        assert http.delete("/api/v1/webhooks/nope").status_code == 404
        assert http.get("/api/v1/webhooks").json()[0]["disabled_at"] is not None
    assert not any(SECRET in a.text for a in answers)
    assert SECRET not in served.log.read_text(errors="replace")


OUTSIDE = [
    {"url": "https://user:pw@hooks.example/"},
    {"url": "file:///etc/passwd"},
    {"url": "https://hooks.example/" + "a" * 2048},
    {"secret": "too-short"},
    {"secret": "a long secret with spaces in it"},
    {"kinds": ["event.exploded"]},
    {"kinds": []},
    {"event_types": []},
    {"name": "has space"},
    {"nope": 1},
    {"replace": "yes"},
]


def test_a_body_outside_the_documents_bounds_is_refused_422_without_echoing_the_secret(
    backend: Store, served: Served
) -> None:
    with served.client(mint(backend, Role.ADMIN)) as http:
        for change in OUTSIDE:
            refused = http.post("/api/v1/webhooks", json={**HOOK, **change})
            assert refused.status_code == 422, (change, refused.text)
            assert SECRET not in refused.text and str(change.get("secret", SECRET)) not in refused.text
        assert http.get("/api/v1/webhooks").json() == []


def test_the_delivery_log_pages_by_cursor_and_filters_by_webhook_and_state(backend: Store, served: Served) -> None:
    backend.add_webhook("a", "https://hooks.example/a", SECRET, ["event.cancelled"])
    backend.add_webhook("b", "https://hooks.example/b", SECRET, ["event.cancelled"])
    for _ in range(3):
        cancelled_event(backend)
    dispatch(backend)
    with served.client(mint(backend, Role.ADMIN)) as http:
        first = http.get("/api/v1/webhooks/deliveries", params={"limit": 4}).json()
        rest = http.get("/api/v1/webhooks/deliveries", params={"limit": 4, "cursor": first["next_cursor"]}).json()
        assert rest["next_cursor"] is None
        assert [d["id"] for d in first["deliveries"] + rest["deliveries"]] == [d.id for d in backend.deliveries()]
        only = http.get("/api/v1/webhooks/deliveries", params={"webhook": "a", "state": "pending"}).json()
        assert len(only["deliveries"]) == 3 and {d["webhook"] for d in only["deliveries"]} == {"a"}
        assert http.get("/api/v1/webhooks/deliveries", params={"webhook": "zz"}).status_code == 404
        assert http.get("/api/v1/webhooks/deliveries", params={"state": "lost"}).status_code == 422


def test_the_client_and_the_http_store_answer_the_stores_own_records(backend: Store, served: Served) -> None:
    with Client(served.url, mint(backend, Role.ADMIN)) as client:
        remote = HttpStore(client)
        made = remote.add_webhook("ops", "https://hooks.example/ops", SECRET, ["event.cancelled"], ["hooked"])
        assert made == backend.webhooks()[0]
        with pytest.raises(Conflict):
            remote.add_webhook("ops", "https://hooks.example/ops", SECRET, ["event.cancelled"])
        cancelled_event(backend)
        dispatch(backend)
        assert remote.deliveries() == backend.deliveries() and len(remote.deliveries()) == 1
        assert remote.deliveries(webhook="ops", state="delivered") == []
        assert remote.remove_webhook("ops") == backend.webhooks()[0] == remote.webhooks()[0]
        with pytest.raises(NotFound):
            remote.deliveries(webhook="nope")
