"""Cancelling an event inside a transaction: for the operator's ``cancel`` and for a schedule
whose overlap policy cancels its previous event."""

from __future__ import annotations

from baton.engine.states import EventState
from baton.errors import Conflict, NotFound
from baton.store import advance, outbox
from baton.store.reads import StateRow
from baton.store.rerun import NodeName
from baton.store.tx import Tx, read_one, read_rows, select_list


def cancel_event(tx: Tx, event_id: int, actor: str, lock: str) -> None:
    """Cancel an unfinished event in ``tx``: a submitted one at once, a running one's waiting
    tasks at once and its running ones at their workers' next heartbeat. ``lock``: the store's
    clause that locks the event's row (two cancels, or a cancel and a report, in turn)."""
    row = read_one(tx, StateRow, f"SELECT state FROM events WHERE id = ? {lock}", (event_id,))
    if row is None:
        raise NotFound(f"no event {event_id}")
    state = EventState(row.state)
    if state.terminal:
        raise Conflict(f"event {event_id} is already {state}")
    tx.q("UPDATE events SET cancel_requested = 1 WHERE id = ?", (event_id,))
    tx.changed()
    tx.audit(actor, "event.cancel_requested", "cancel", event_id)
    if state is EventState.SUBMITTED:
        tx.q("UPDATE events SET state = 'cancelled', finished_at = ? WHERE id = ?", (tx.now, event_id))
        tx.audit(actor, "event.cancelled", "cancelled before expansion", event_id)
        outbox.notice(tx, outbox.Kind.EVENT_CANCELLED, event_id)
        outbox.ended_late(tx, event_id)
        return
    n = 0
    for old in ("pending", "ready"):
        sql = (f"UPDATE tasks SET state = 'cancelled', finished_at = ?, parked = 0 WHERE event_id = ? AND state = ? "
               f"RETURNING {select_list(NodeName)}")  # fmt: skip
        for r in read_rows(tx, NodeName, sql, (tx.now, event_id, old)):
            tx.moved(event_id, r.node, old, "cancelled")
            n += 1
    tx.q("UPDATE tasks SET cancel_requested = 1 WHERE event_id = ? AND state = 'running'", (event_id,))
    tx.audit(actor, "task.cancelled", "event cancelled", event_id, tasks=n)
    advance.settle(tx, {event_id: n})
