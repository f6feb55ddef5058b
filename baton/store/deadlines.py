"""Deadlines in the store: what the controller's forecast reads (events that must end by a time,
their nodes now, their graph's earlier runs) and what it writes (the forecast, and the notices
``deadline.at_risk`` and ``deadline.missed``, each once per event, in the transaction that marks
it). An event that ends late is marked missed by the transaction that settles it
(:func:`missed_at_end`), so a late end is never lost between two looks."""

from __future__ import annotations

from typing import Any, NamedTuple

from baton.engine.forecast import NodeNow, NodeRun
from baton.store import outbox
from baton.store.core import SqlCore
from baton.store.records import Watched
from baton.store.retry import retried
from baton.store.tx import read_one, read_rows, select_list


class NodeNowRow(NamedTuple):
    node: str
    total: int
    remaining: int
    ended_at: float | None


class NodeRunRow(NamedTuple):
    event_id: int
    node: str
    started_at: float | None
    ended_at: float | None


HISTORY_RUNS = 20  # earlier successful runs a forecast learns from


class DeadlineVerbs(SqlCore):
    @retried
    def watched_events(self, limit: int) -> list[Watched]:
        """Unfinished events that have a deadline, the nearest deadline first."""
        sql = (f"SELECT {select_list(Watched)} FROM events WHERE deadline_at IS NOT NULL AND finished_at IS NULL "
               "ORDER BY deadline_at LIMIT ?")  # fmt: skip
        with self.transaction(write=False) as tx:
            return read_rows(tx, Watched, sql, (limit,))

    @retried
    def nodes_now(self, event_id: int) -> dict[str, NodeNow]:
        """Each node of the event: its tasks, those not yet succeeded, and when the last ended."""
        last = "SELECT MAX(t.finished_at) FROM tasks t WHERE t.event_id = n.event_id AND t.node = n.node"
        sql = f"SELECT n.node, n.total, n.remaining, ({last}) AS ended_at FROM event_nodes n WHERE n.event_id = ?"
        with self.transaction(write=False) as tx:
            rows = read_rows(tx, NodeNowRow, sql, (event_id,))
        return {r.node: NodeNow(r.total, r.remaining, r.ended_at) for r in rows}

    @retried
    def graph_runs(self, graph_id: int, limit: int = HISTORY_RUNS) -> list[dict[str, NodeRun]]:
        """The nodes of the last ``limit`` successful events of the graph (any version of it):
        each node's first attempt start and last end, from its tasks' final attempts."""
        same = "SELECT name FROM graphs WHERE id = ?"
        events = (f"SELECT e.id FROM events e JOIN graphs g ON g.id = e.graph_id WHERE g.name = ({same}) "
                  "AND e.state = 'succeeded' ORDER BY e.id DESC LIMIT ?")  # fmt: skip
        sql = ("SELECT t.event_id, t.node, MIN(a.started_at) AS started_at, MAX(a.finished_at) AS ended_at "
               "FROM tasks t JOIN attempts a ON a.task_id = t.id AND a.attempt = t.attempt "
               f"WHERE t.event_id IN ({events}) GROUP BY t.event_id, t.node")  # fmt: skip
        with self.transaction(write=False) as tx:
            rows = read_rows(tx, NodeRunRow, sql, (graph_id, limit))
        runs: dict[int, dict[str, NodeRun]] = {}
        for r in rows:
            if r.started_at is not None and r.ended_at is not None:
                runs.setdefault(r.event_id, {})[r.node] = NodeRun(r.started_at, r.ended_at)
        return [runs[event_id] for event_id in sorted(runs)]

    @retried
    def record_forecast(self, event_id: int, predicted_end_at: float | None, now: float) -> list[outbox.Kind]:
        """Keep the forecast; mark the event at risk (the forecast is past its deadline) or missed
        (``now`` is past it, the controller's clock), each once, with its notice. Returns the
        notices made."""
        made: list[outbox.Kind] = []
        with self.transaction() as tx:
            sql = f"SELECT {select_list(Watched)} FROM events WHERE id = ? AND finished_at IS NULL {self.event_lock}"
            event = read_one(tx, Watched, sql, (event_id,))
            if event is None:
                return made
            tx.q("UPDATE events SET predicted_end_at = ? WHERE id = ?", (predicted_end_at, event_id))
            detail: dict[str, Any] = {"deadline_at": event.deadline_at, "predicted_end_at": predicted_end_at}
            late = predicted_end_at is not None and predicted_end_at > event.deadline_at
            if (late or now > event.deadline_at) and event.at_risk_at is None:
                tx.q("UPDATE events SET at_risk_at = ? WHERE id = ?", (now, event_id))
                outbox.notice(tx, outbox.Kind.DEADLINE_AT_RISK, event_id, **detail)
                made.append(outbox.Kind.DEADLINE_AT_RISK)
            if now > event.deadline_at and event.missed_at is None:
                outbox.deadline_missed(tx, event_id, now, detail)
                made.append(outbox.Kind.DEADLINE_MISSED)
        return made
