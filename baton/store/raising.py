"""Creating an event, whoever raises it: a client's submit, a schedule's fire, a backfill, the
end of another event. One insert under the idempotency key, inside the caller's transaction, so
the event exists exactly when what raised it is recorded as done."""

from __future__ import annotations

from dataclasses import dataclass

from baton.store.rows import IdRow
from baton.store.tx import Tx, read_one


@dataclass(frozen=True)
class Origin:
    """What raised an event, kept on it (all None: a client submitted it)."""

    schedule_id: int | None = None
    scheduled_for: float | None = None
    backfill_id: int | None = None
    source_event_id: int | None = None
    deadline_at: float | None = None
    priority: int = 0  # the event's (a client's --priority, or its schedule's priority:)

    def cause(self) -> str:
        if self.backfill_id is not None:
            return f"backfill {self.backfill_id}"
        if self.schedule_id is not None:
            return f"schedule {self.schedule_id}"
        if self.source_event_id is not None:
            return f"event {self.source_event_id} ended"
        return "submitted"


_INSERT = (
    "INSERT INTO events (type, graph_id, idem_key, params, state, submitted_at, schedule_id, scheduled_for, "
    "backfill_id, source_event_id, deadline_at, priority) VALUES (?, ?, ?, ?, 'submitted', ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING RETURNING id"
)


def schedule_priority(tx: Tx, graph_id: int, schedule: str) -> int:
    """The priority a schedule of this graph version gives the events it raises (0 if the
    version no longer declares it)."""
    found = tx.graph_of(graph_id).schedule(schedule)
    return 0 if found is None else found.priority


def insert_event(tx: Tx, graph_id: int, event_type: str, canonical: str, key: str | None, origin: Origin) -> int | None:
    """The new event's id; None when ``key`` already names an event (nothing is written)."""
    o = origin
    row = read_one(tx, IdRow, _INSERT, (event_type, graph_id, key, canonical, tx.now, o.schedule_id, o.scheduled_for,
                                        o.backfill_id, o.source_event_id, o.deadline_at, o.priority))  # fmt: skip
    if row is not None:
        tx.changed()
    return None if row is None else int(row.id)
