"""The outbox: facts written in the transaction that makes them true, acted on afterwards.

An event's end, a deadline at risk or missed, a schedule's missed fires: each is a row of
``notices`` inserted by the very transaction that settles it, so no crash can lose one or
record one that did not happen. The controller's dispatch duty then turns each row, in id order,
into chained events and webhook deliveries, each under a unique key made from the row's id, and
marks the row dispatched in the same transaction: dispatching twice creates nothing twice.

A notice's id is the notification's identity: every delivery of it, to every receiver, carries
it, so a receiver drops what it has already seen.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

from baton.store.tx import Tx, compact, read_one


class Kind(StrEnum):
    """What a notice says. The values are what webhook receivers see as ``kind``."""

    EVENT_SUCCEEDED = "event.succeeded"
    EVENT_FAILED = "event.failed"
    EVENT_CANCELLED = "event.cancelled"
    DEADLINE_AT_RISK = "deadline.at_risk"
    DEADLINE_MISSED = "deadline.missed"
    SCHEDULE_MISFIRE = "schedule.misfire"

    @classmethod
    def ended(cls, state: str) -> Kind:
        return cls(f"event.{state}")


def notice(tx: Tx, kind: Kind, event_id: int | None = None, schedule_id: int | None = None, **detail: Any) -> None:
    """Record a fact in the outbox, in ``tx`` (it commits or vanishes with what it reports)."""
    tx.q(
        "INSERT INTO notices (at, kind, event_id, schedule_id, detail) VALUES (?, ?, ?, ?, ?)",
        (tx.now, kind.value, event_id, schedule_id, compact(detail) if detail else "{}"),
    )
    tx.changed()


class NoticeRow(NamedTuple):
    """A notice as the dispatch reads it (``detail`` is its JSON text)."""

    id: int
    at: float
    kind: str
    event_id: int | None
    schedule_id: int | None
    detail: str


def deadline_missed(tx: Tx, event_id: int, now: float, detail: dict[str, Any]) -> None:
    tx.q("UPDATE events SET missed_at = ? WHERE id = ?", (now, event_id))
    notice(tx, Kind.DEADLINE_MISSED, event_id, **detail)
    tx.audit("controller", "deadline.missed", "the deadline passed before the event ended", event_id, **detail)


def missed_at_end(tx: Tx, event_id: int, deadline_at: float | None, missed_at: float | None) -> None:
    """In the transaction that ends an event (which read these two columns as it ended it): an
    event that ends past its deadline, not yet marked missed, is marked now."""
    if deadline_at is not None and missed_at is None and tx.now > deadline_at:
        deadline_missed(tx, event_id, tx.now, {"deadline_at": deadline_at, "ended_at": tx.now})


def ended_late(tx: Tx, event_id: int) -> None:
    """:func:`missed_at_end` for the rarer ends that do not read the deadline as they end (a
    cancel before expansion, a refused expansion)."""
    row = read_one(tx, Late, "SELECT deadline_at, missed_at FROM events WHERE id = ?", (event_id,))
    if row is not None:
        missed_at_end(tx, event_id, row.deadline_at, row.missed_at)


class Late(NamedTuple):
    """An event's deadline, and whether it was already marked missed."""

    deadline_at: float | None
    missed_at: float | None
