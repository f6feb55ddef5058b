"""Webhooks and their deliveries over SQL: the operator's verbs (add, remove), the reads (the
webhooks, the delivery log), the controller's (claim due deliveries, record how they went), and
:func:`enqueue`, which the dispatch of a notice calls inside its own transaction.

A delivery is one notice for one webhook, made once (unique per pair, so dispatching a notice
twice makes nothing twice), with its body fixed when it is made: every try posts the same bytes
under the same ``uid``. Trying it is a claim, as a task's is: the claim adds one to ``attempts``
and moves ``next_at`` a lease ahead, so a controller that dies mid-post leaves the delivery to be
claimed again when the lease runs out (at least once), and what a try reports is recorded only
while that try is still the delivery's last (fenced by ``attempts``).

Times of deliveries (``next_at``, the horizon) are the controller's clock, given to each verb;
``created_at`` is the store's, as the transaction that made the delivery ran.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Unpack

from baton.engine.webhooks import fingerprint, receives, webhook_problems
from baton.errors import Conflict, NotFound, TransientError, UsageError
from baton.store.core import SqlCore
from baton.store.outbox import NoticeRow
from baton.store.records import (
    DELIVERY_STATES,
    NOTICE_KINDS,
    DeliveryFilter,
    DeliveryJob,
    DeliveryRecord,
    DeliveryResult,
    WebhookRecord,
)
from baton.store.retry import retried
from baton.store.rows import IdRow
from baton.store.tx import Tx, compact, in_list, read_one, read_rows, select_list

MAX_DELIVERIES_PAGE = 500
MAX_ERROR_CHARS = 500
DEFAULT_PAGE = 50


class WebhookRow(NamedTuple):
    id: int
    name: str
    url: str
    secret: str
    kinds: str  # JSON list
    event_types: str | None  # JSON list; NULL: every type
    created_at: float
    disabled_at: float | None

    def record(self) -> WebhookRecord:
        types = None if self.event_types is None else tuple(json.loads(self.event_types))
        return WebhookRecord(id=self.id, name=self.name, url=self.url, kinds=tuple(json.loads(self.kinds)),
                             event_types=types, fingerprint=fingerprint(self.secret), created_at=self.created_at,
                             disabled_at=self.disabled_at)  # fmt: skip


class EventFacts(NamedTuple):
    """What a delivery's body tells of the notice's event."""

    id: int
    type: str
    state: str
    params: str
    idem_key: str | None
    submitted_at: float
    finished_at: float | None
    error: str | None
    scheduled_for: float | None


class TypeRow(NamedTuple):
    event_type: str


class DeliveryRow(NamedTuple):
    id: int
    uid: str
    webhook: str
    notice_id: int
    kind: str
    event_id: int | None
    state: str
    attempts: int
    next_at: float
    last_status: int | None
    last_error: str | None
    last_at: float | None
    created_at: float
    delivered_at: float | None


class DueRow(NamedTuple):
    id: int
    uid: str
    attempts: int
    kind: str
    webhook: str
    url: str
    body: str
    created_at: float
    secret: str


class Fence(NamedTuple):
    """A delivery as a reported try finds it."""

    id: int
    state: str
    attempts: int
    created_at: float
    event_id: int | None
    webhook: str


_WEBHOOKS = f"SELECT {select_list(WebhookRow)} FROM webhooks"
_DELIVERIES = (
    f"SELECT {select_list(DeliveryRow, 'd.', webhook='w.name', kind='n.kind', event_id='n.event_id')} "
    "FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN notices n ON n.id = d.notice_id"
)
_FENCE = (
    f"SELECT {select_list(Fence, 't.', event_id='n.event_id', webhook='w.name')} FROM deliveries t "
    "JOIN notices n ON n.id = t.notice_id JOIN webhooks w ON w.id = t.webhook_id WHERE t.id = ?"
)


# --- the dispatch's part ------------------------------------------------------------------------


def enqueue(tx: Tx, notice: NoticeRow) -> int:
    """Create one pending delivery per enabled webhook whose kinds and event types match the
    notice, in ``tx`` (the dispatch's transaction); return how many. A delivery already made for
    a webhook and this notice is left as it is, so calling this twice makes nothing twice."""
    hooks = read_rows(tx, WebhookRow, f"{_WEBHOOKS} WHERE disabled_at IS NULL ORDER BY id")
    if not hooks:
        return 0
    event = None if notice.event_id is None else _event_facts(tx, notice.event_id)
    event_type = event.type if event is not None else _schedule_type(tx, notice.schedule_id)
    made = []
    for hook in hooks:
        types = None if hook.event_types is None else json.loads(hook.event_types)
        if receives(json.loads(hook.kinds), types, notice.kind, event_type) and _insert(tx, hook, notice, event):
            made.append(hook.name)
    if made:
        tx.audit("controller", "deliveries.created", f"notice {notice.id} ({notice.kind})", notice.event_id,
                 webhooks=made)  # fmt: skip
    return len(made)


def _insert(tx: Tx, hook: WebhookRow, notice: NoticeRow, event: EventFacts | None) -> bool:
    uid = str(uuid.uuid4())
    row = read_one(
        tx,
        IdRow,
        "INSERT INTO deliveries (webhook_id, notice_id, uid, body, state, attempts, next_at, created_at) "
        "VALUES (?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (webhook_id, notice_id) DO NOTHING RETURNING id",
        (hook.id, notice.id, uid, delivery_body(uid, notice, event), tx.now, tx.now),
    )
    return row is not None


def _event_facts(tx: Tx, event_id: int) -> EventFacts | None:
    return read_one(tx, EventFacts, f"SELECT {select_list(EventFacts)} FROM events WHERE id = ?", (event_id,))


def _schedule_type(tx: Tx, schedule_id: int | None) -> str | None:
    """The event type a schedule raises (its graph's latest version's), for a notice about a
    schedule rather than an event."""
    if schedule_id is None:
        return None
    row = read_one(tx, TypeRow, "SELECT g.event_type FROM schedules s JOIN graphs g ON g.name = s.graph "
                                "WHERE s.id = ? ORDER BY g.version DESC LIMIT 1", (schedule_id,))  # fmt: skip
    return None if row is None else row.event_type


def iso(seconds: float | None) -> str | None:
    """A time as receivers read it: ISO 8601 in UTC, to the millisecond."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def delivery_body(uid: str, notice: NoticeRow, event: EventFacts | None) -> str:
    """The JSON a delivery posts, on every try (see docs/deadlines-and-notifications.md#notifications-webhooks)."""
    body: dict[str, Any] = {"id": uid, "kind": notice.kind, "at": iso(notice.at), "notice_id": notice.id}
    if event is not None:
        body["event"] = {
            "id": event.id, "type": event.type, "state": event.state, "params": json.loads(event.params),
            "key": event.idem_key, "submitted_at": iso(event.submitted_at), "finished_at": iso(event.finished_at),
            "error": event.error, "scheduled_for": iso(event.scheduled_for),
        }  # fmt: skip
    if notice.schedule_id is not None:
        body["schedule_id"] = notice.schedule_id
    body["detail"] = json.loads(notice.detail)
    return compact(body)


# --- the verbs ----------------------------------------------------------------------------------


class WebhookVerbs(SqlCore):
    """Webhooks and deliveries (mixed into :class:`~baton.store.sql.SqlStore`)."""

    @retried
    def add_webhook(
        self,
        name: str,
        url: str,
        secret: str,
        kinds: Sequence[str],
        event_types: Sequence[str] | None = None,
        replace: bool = False,
        actor: str = "operator",
    ) -> WebhookRecord:
        problems = webhook_problems(name, url, secret, kinds, event_types, NOTICE_KINDS)
        if problems:
            raise UsageError(f"webhook {name[:100]!r}: " + "; ".join(problems))
        wanted = sorted(set(kinds))
        listed = json.dumps(wanted), None if event_types is None else json.dumps(sorted(set(event_types)))
        with self.transaction() as tx:
            existing = read_one(tx, WebhookRow, f"{_WEBHOOKS} WHERE name = ? {self.event_lock}", (name,))
            if existing is not None and existing.disabled_at is None and not replace:
                raise Conflict(f"webhook {name} exists; to change it, add it again with replace (--replace)")
            if existing is None:
                _create(tx, name, url, secret, *listed)
            else:
                tx.q("UPDATE webhooks SET url = ?, secret = ?, kinds = ?, event_types = ?, disabled_at = NULL "
                     "WHERE id = ?", (url, secret, *listed, existing.id))  # fmt: skip
            action = "webhook.added" if existing is None or existing.disabled_at is not None else "webhook.replaced"
            tx.audit(actor, action, "operator", name=name, kinds=wanted)
            row = read_one(tx, WebhookRow, f"{_WEBHOOKS} WHERE name = ?", (name,))
            assert row is not None
            return row.record()

    @retried
    def remove_webhook(self, name: str, actor: str = "operator") -> WebhookRecord:
        """Disable the webhook and cancel its pending deliveries; its history stays. Removing a
        removed webhook changes nothing."""
        with self.transaction() as tx:
            row = read_one(tx, WebhookRow, f"{_WEBHOOKS} WHERE name = ? {self.event_lock}", (name,))
            if row is None:
                raise NotFound(f"no webhook {name!r} (see 'baton webhook list')")
            if row.disabled_at is None:
                tx.q("UPDATE webhooks SET disabled_at = ? WHERE id = ?", (tx.now, row.id))
                cancelled = tx.q("UPDATE deliveries SET state = 'cancelled', last_error = 'the webhook was removed' "
                                 "WHERE webhook_id = ? AND state = 'pending'", (row.id,)).rowcount  # fmt: skip
                tx.audit(actor, "webhook.removed", "operator", name=name, cancelled=max(cancelled, 0))
                row = row._replace(disabled_at=tx.now)
            return row.record()

    @retried
    def webhooks(self) -> list[WebhookRecord]:
        with self.transaction(write=False) as tx:
            return [r.record() for r in read_rows(tx, WebhookRow, f"{_WEBHOOKS} ORDER BY name")]

    @retried
    def deliveries(self, **asked: Unpack[DeliveryFilter]) -> list[DeliveryRecord]:
        limit = asked.get("limit", DEFAULT_PAGE)
        state, before, name = asked.get("state"), asked.get("before"), asked.get("webhook")
        if not 1 <= limit <= MAX_DELIVERIES_PAGE:
            raise UsageError(f"a page of deliveries is 1 to {MAX_DELIVERIES_PAGE} of them, not {limit}")
        if state is not None and state not in DELIVERY_STATES:
            raise UsageError(f"a delivery's state is one of {', '.join(DELIVERY_STATES)}, not {state!r}")
        where: list[str] = ["d.id < ?"]
        params: list[Any] = [before if before is not None else 2**63 - 1]
        with self.transaction(write=False) as tx:
            if name is not None:
                hook = read_one(tx, WebhookRow, f"{_WEBHOOKS} WHERE name = ?", (name,))
                if hook is None:
                    raise NotFound(f"no webhook {name!r} (see 'baton webhook list')")
                where.append("d.webhook_id = ?")
                params.append(hook.id)
            if state is not None:
                where.append("d.state = ?")
                params.append(state)
            sql = f"{_DELIVERIES} WHERE {' AND '.join(where)} ORDER BY d.id DESC LIMIT ?"
            return [DeliveryRecord(**r._asdict()) for r in read_rows(tx, DeliveryRow, sql, (*params, limit))]

    @retried
    def claim_deliveries(self, now: float, limit: int, lease_s: float) -> list[DeliveryJob]:
        """Take up to ``limit`` pending deliveries due at ``now`` (the controller's clock), oldest
        due first: each gets its next attempt number and is not due again for ``lease_s`` (if
        the taker dies, another takes it then: at least once)."""
        sql = (
            f"SELECT {select_list(DueRow, 't.', webhook='w.name', url='w.url', secret='w.secret', kind='n.kind')} "
            "FROM deliveries t JOIN webhooks w ON w.id = t.webhook_id JOIN notices n ON n.id = t.notice_id "
            "WHERE t.state = 'pending' AND t.next_at <= ? AND w.disabled_at IS NULL "
            f"ORDER BY t.next_at, t.id LIMIT ? {self.skip_locked}"
        )
        with self.transaction() as tx:
            due = read_rows(tx, DueRow, sql, (now, limit))
            if due:
                ids = [r.id for r in due]
                tx.q(f"UPDATE deliveries SET attempts = attempts + 1, next_at = ? WHERE id IN ({in_list(ids)})",
                     (now + lease_s, *ids))  # fmt: skip
        return [DeliveryJob(id=r.id, uid=r.uid, attempt=r.attempts + 1, kind=r.kind, webhook=r.webhook, url=r.url,
                            body=r.body, created_at=r.created_at, secret=r.secret) for r in due]  # fmt: skip

    @retried
    def record_deliveries(self, results: Sequence[DeliveryResult], horizon_s: float) -> list[str]:
        """Record each try's outcome, in one transaction; answer per result the delivery's state
        now (``delivered``, ``pending``, ``expired``), or ``stale`` when a later try had been
        claimed (or the delivery had ended) and nothing was changed. A retry that would come
        later than ``horizon_s`` after the delivery was made gives up instead (``expired``)."""
        with self.transaction() as tx:
            return [_record_one(tx, r, horizon_s, self.row_lock) for r in results]


def _create(tx: Tx, name: str, url: str, secret: str, kinds: str, event_types: str | None) -> None:
    made = read_one(
        tx,
        IdRow,
        "INSERT INTO webhooks (name, url, secret, kinds, event_types, created_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING RETURNING id",
        (name, url, secret, kinds, event_types, tx.now),
    )
    if made is None:
        raise TransientError(f"webhook {name} was added concurrently")  # retried: then it exists


def _record_one(tx: Tx, result: DeliveryResult, horizon_s: float, lock: str) -> str:
    row = read_one(tx, Fence, f"{_FENCE} {lock}", (result.delivery_id,))
    if row is None or row.state != "pending" or row.attempts != result.attempt:
        return "stale"
    error = None if result.error is None else result.error[:MAX_ERROR_CHARS]
    if result.retry_at is None:
        tx.q("UPDATE deliveries SET state = 'delivered', delivered_at = ?, last_at = ?, last_status = ?, "
             "last_error = NULL WHERE id = ?", (result.at, result.at, result.status, row.id))  # fmt: skip
        tx.audit("controller", "delivery.delivered", f"attempt {result.attempt} answered {result.status}",
                 row.event_id, delivery=row.id, webhook=row.webhook)  # fmt: skip
        return "delivered"
    state = "expired" if result.retry_at > row.created_at + horizon_s else "pending"
    tx.q("UPDATE deliveries SET state = ?, next_at = ?, last_at = ?, last_status = ?, last_error = ? WHERE id = ?",
         (state, result.retry_at, result.at, result.status, error, row.id))  # fmt: skip
    why = f"attempt {result.attempt}: " + (f"HTTP {result.status}" if result.status is not None else str(error))
    tx.audit("controller", "delivery.failed" if state == "pending" else "delivery.expired",
             why[:MAX_ERROR_CHARS], row.event_id, delivery=row.id, webhook=row.webhook)  # fmt: skip
    return state
