"""Concurrency keys: which tasks a claim may start, as pure functions.

A node may declare ``concurrency: {key: TEMPLATE, limit: N}``. Each of its tasks gets the key
rendered from its partition, node, event type and parameters when its event is planned
(:func:`render_key`), and the store keeps it with the task. A claim starts a task with a key
only while fewer than the key's limit of tasks with that key are running, cluster-wide; the
store counts the running ones and serializes the claims on one key (see
:mod:`baton.store.limits`), and :func:`admit` decides. A task that may not start is *parked*:
it leaves the claim's queue until a task holding its key ends, so a claim never walks past
hundreds of blocked tasks. Slots are never leaked: a slot is a running task, and a task stops
running when its attempt ends, whether by a report or by the expiry of a dead worker's lease.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from baton.graphs.keys import KEY_PLACEHOLDER_RE
from baton.graphs.model import EventLimit

MAX_KEY_CHARS = 200  # a rendered key longer than this is cut and given a digest of the whole


def render_key(template: str, *, node: str, partition: str, event_type: str, params: Mapping[str, Any]) -> str:
    """The key of one task. A string parameter renders as itself, any other as JSON."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "partition":
            return partition
        if name == "node":
            return node
        if name == "event_type":
            return event_type
        got = params.get(name[len("params.") :])
        return got if isinstance(got, str) else json.dumps(got, sort_keys=True, separators=(",", ":"))

    key = KEY_PLACEHOLDER_RE.sub(value, template)
    if len(key) > MAX_KEY_CHARS:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        key = f"{key[: MAX_KEY_CHARS - 17]}~{digest}"
    return key


@dataclass(frozen=True)
class Gate:
    """What :func:`admit` decided for one claim: the tasks that may start, in queue order, the
    ones parked on a full concurrency key, and the ones parked on a spent rate limit, by key."""

    admitted: list[int] = field(default_factory=list)
    parked: dict[str, list[int]] = field(default_factory=dict)
    rate_parked: dict[str, list[int]] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)  # rate key -> starts admitted


def admit(
    candidates: Sequence[tuple[int, str | None]],
    limits: Mapping[str, int],
    running: Mapping[str, int],
    allowances: Mapping[str, int] | None = None,
    rate_keys: Mapping[int, str] | None = None,
) -> Gate:
    """Go through ``candidates`` (task id, concurrency key or None) in queue order: a task is
    admitted when its concurrency key (if any) has fewer than its limit running, counting those
    admitted before it, and its rate key (``rate_keys[task id]``, if any) has starts left in
    ``allowances``, counting those admitted before it. A task its concurrency key refuses is
    parked on that key and spends no start; one that only its rate refuses is parked on the rate
    and holds no slot. A key with no known limit or allowance admits nothing (its row is written
    when the event is planned, so this is a store that lost it: park, do not overrun)."""
    counts = dict(running)
    left = dict(allowances or {})
    rates = rate_keys or {}
    gate = Gate()
    for task_id, key in candidates:
        rate = rates.get(task_id)
        if key is not None and counts.get(key, 0) >= limits.get(key, 0):
            gate.parked.setdefault(key, []).append(task_id)
        elif rate is not None and left.get(rate, 0) <= 0:
            gate.rate_parked.setdefault(rate, []).append(task_id)
        else:
            if key is not None:
                counts[key] = counts.get(key, 0) + 1
            if rate is not None:
                left[rate] -= 1
                gate.started[rate] = gate.started.get(rate, 0) + 1
            gate.admitted.append(task_id)
    return gate


def to_unpark(limit: int, running: int, ready: int, parked: int) -> int:
    """How many parked tasks of a key to return to the queue: the slots neither taken by
    running tasks nor promised to tasks already back in the queue."""
    return max(0, min(parked, limit - running - ready))


class Admission(enum.Enum):
    """What becomes of an event about to start under its graph's event limit."""

    START = "start"  # a place is free
    QUEUE = "queue"  # it waits, submitted, for a place (policy queue)
    REFUSE = "refuse"  # it is cancelled (policy cancel_newest)
    DISPLACE = "displace"  # the oldest running one is cancelled and it starts (policy cancel_oldest)


def admit_event(running: int, limit: EventLimit | None) -> Admission:
    """The decision for one event of a graph that has ``running`` events running (those being
    cancelled are not counted: they hold no place)."""
    if limit is None or running < limit.max_running:
        return Admission.START
    return {"queue": Admission.QUEUE, "cancel_newest": Admission.REFUSE,
            "cancel_oldest": Admission.DISPLACE}[limit.policy]  # fmt: skip
