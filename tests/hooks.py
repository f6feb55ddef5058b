"""What the webhook tests share: a secret, events whose end writes a notice, and the dispatch of
notices into deliveries as the controller's dispatch duty does it (one transaction: enqueue each
undispatched notice in id order, then mark them dispatched)."""

from __future__ import annotations

from typing import Any, cast

from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.store import outbox
from baton.store.outbox import NoticeRow
from baton.store.protocol import Store
from baton.store.sql import SqlStore
from baton.store.tx import read_rows, select_list
from baton.store.webhooks import enqueue

SECRET = "whsec-0123456789-abcdefghij"  # what a test then looks for, everywhere it must not be
UNDISPATCHED = f"SELECT {select_list(NoticeRow)} FROM notices WHERE dispatched_at IS NULL ORDER BY id"


def sql(backend: Store) -> SqlStore:
    return cast(SqlStore, backend)


def dispatch(backend: Store) -> int:
    """Turn every undispatched notice into deliveries; return how many were made."""
    with sql(backend).transaction() as tx:
        notices = read_rows(tx, NoticeRow, UNDISPATCHED)
        made = sum(enqueue(tx, n) for n in notices)
        tx.q("UPDATE notices SET dispatched_at = ? WHERE dispatched_at IS NULL", (tx.now,))
    return made


def notices(backend: Store) -> list[NoticeRow]:
    with sql(backend).transaction(write=False) as tx:
        return read_rows(tx, NoticeRow, f"SELECT {select_list(NoticeRow)} FROM notices ORDER BY id")


def cancelled_event(backend: Store, event_type: str = "hooked", key: str | None = None, **params: Any) -> int:
    """An event submitted and cancelled before it ran: its end writes an ``event.cancelled`` notice."""
    g = GraphBuilder(event_type).param("note", "string", default="")
    graph = g.python("only", "m:f").build()
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, params), key=key)
    backend.cancel(event.id)
    return event.id


def notice(backend: Store, kind: outbox.Kind, event_id: int | None = None, **detail: Any) -> None:
    """A notice written as the transaction that makes it true would write it."""
    with sql(backend).transaction() as tx:
        outbox.notice(tx, kind, event_id, **detail)
