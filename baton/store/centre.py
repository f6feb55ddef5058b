"""The event centre's verbs over SQL: dispatching the outbox (chained events, webhook
deliveries)."""

from __future__ import annotations

from baton import faults
from baton.store import chaining, webhooks
from baton.store.core import SqlCore
from baton.store.outbox import NoticeRow
from baton.store.retry import retried
from baton.store.tx import in_list, read_rows, select_list


class CentreVerbs(SqlCore):
    @retried
    def dispatch(self, limit: int) -> int:
        """Act on up to ``limit`` notices, oldest first, in one transaction: raise the events
        they chain to, make their webhook deliveries, and mark them dispatched. Return how many were dispatched."""
        with self.transaction() as tx:
            sql = (f"SELECT {select_list(NoticeRow, 't.')} FROM notices t WHERE t.dispatched_at IS NULL "
                   f"ORDER BY t.id LIMIT ? {self.skip_locked}")  # fmt: skip
            notices = read_rows(tx, NoticeRow, sql, (limit,))
            for notice in notices:
                chaining.raise_chained(tx, notice)
                webhooks.enqueue(tx, notice)
            faults.point("dispatch.before_commit" if notices else "")
            if notices:
                ids = [n.id for n in notices]
                tx.q(f"UPDATE notices SET dispatched_at = ? WHERE id IN ({in_list(ids)})", (tx.now, *ids))
        return len(notices)
