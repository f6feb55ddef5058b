"""The backend logic, written once for every SQL database.

A dialect subclass supplies connections, transactions, the clock and a few clauses
(:meth:`SqlStore.transaction`, the row-locking clauses); everything else — submitting, planning,
claiming, reporting, expiring, cancelling, re-running, leadership — lives here, each verb one
transaction. The reads behind status, logs and audit are in :mod:`baton.store.reads`, those
behind an event's page (timeline, critical path) in :mod:`baton.store.timeline_reads`; the
controller's rule applied to each report is in :mod:`baton.store.advance`; webhooks and their
deliveries in :mod:`baton.store.webhooks`.
"""

from __future__ import annotations

from baton.store.backfills import BackfillVerbs
from baton.store.centre import CentreVerbs
from baton.store.controller import ControllerVerbs
from baton.store.deadlines import DeadlineVerbs
from baton.store.gauges import SqlGauges
from baton.store.operator import OperatorVerbs
from baton.store.reads import SqlReads
from baton.store.retention import RetentionVerbs
from baton.store.schedules import ScheduleVerbs
from baton.store.timeline_reads import SqlTimelineReads
from baton.store.tokens import SqlTokens
from baton.store.webhooks import WebhookVerbs
from baton.store.worker import WorkerVerbs


class SqlStore(
    WorkerVerbs,
    ControllerVerbs,
    CentreVerbs,
    ScheduleVerbs,
    BackfillVerbs,
    RetentionVerbs,
    DeadlineVerbs,
    OperatorVerbs,
    WebhookVerbs,
    SqlTokens,
    SqlGauges,
    SqlTimelineReads,
    SqlReads,
):
    """Backend verbs over a SQL database; see :mod:`baton.store.protocol`.

    Its body is a table of contents: each base implements one caller's protocol over the
    :class:`~baton.store.core.SqlCore` a dialect completes."""
