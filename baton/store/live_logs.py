"""Live logs: what running attempts have written so far, so it can be read while they run.

A worker appends each running attempt's new output every few seconds (:func:`append`). The
append is fenced like a report: only the worker that holds the attempt, only while it runs (a
stale attempt's tail is dropped, answered None). It is also fenced by offset: a tail goes only at
the log's end, so a chunk sent twice (a retry after a lost answer) is appended once and a gap is
refused; either way the answer is the log's length, and the worker goes on from there. A log
stops growing at ``max_log_bytes``; the report's output (head and tail kept) replaces it.

The transaction that ends an attempt deletes its rows (:func:`forget`, from
``advance.end_attempts``: reports, expired leases, released claims), so the table only ever holds
running attempts' output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from baton.store.records import LogTail
from baton.store.text import storable
from baton.store.tx import Tx, in_list, read_one, read_rows, select_list


class Holder(NamedTuple):
    """Who holds a task's current attempt, and whether it runs."""

    id: int
    attempt: int
    state: str
    worker_id: str | None


class LiveSize(NamedTuple):
    """How long one live log is: in characters (offsets) and in UTF-8 bytes (the cap)."""

    task_id: int
    attempt: int
    stream: str
    chars: int
    size: int


class Length(NamedTuple):
    chars: int  # the text's length in characters: where the next tail goes
    size: int  # in UTF-8 bytes: what the cap counts


EMPTY = Length(0, 0)
Key = tuple[int, int, str]  # (task_id, attempt, stream)

_LENGTHS = f"SELECT {select_list(LiveSize, chars='length(text)')} FROM live_logs"
# Appended only at the log's end: a concurrent append at the same offset (a request repeated while
# the first still ran) finds the length moved and writes nothing.
_APPEND = (
    "INSERT INTO live_logs (task_id, attempt, stream, text, size) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (task_id, attempt, stream) DO UPDATE SET text = live_logs.text || excluded.text, "
    "size = live_logs.size + excluded.size WHERE length(live_logs.text) = ? "
    f"RETURNING {select_list(Length, chars='length(text)')}"
)


def append(tx: Tx, worker_id: str, tails: Sequence[LogTail], max_bytes: int, lock: str) -> list[int | None]:
    """Append each tail that its worker holds and that starts at its log's end (see the module);
    return, per tail, the log's length afterwards (None: dropped as stale). ``lock`` keeps the
    attempts from ending until the commit (a row lock on the tasks read; empty where the
    transaction holds the whole database)."""
    if not tails:
        return []
    ids = sorted({t.task_id for t in tails})
    sql = f"SELECT {select_list(Holder, 't.')} FROM tasks t WHERE t.id IN ({in_list(ids)}) ORDER BY t.id {lock}"
    held = {
        (r.id, r.attempt) for r in read_rows(tx, Holder, sql, ids) if r.state == "running" and r.worker_id == worker_id
    }
    lengths = {
        (r.task_id, r.attempt, r.stream): Length(r.chars, r.size)
        for r in read_rows(tx, LiveSize, f"{_LENGTHS} WHERE task_id IN ({in_list(ids)})", ids)
    }
    answers: list[int | None] = []
    for t in tails:
        if (t.task_id, t.attempt) not in held:
            answers.append(None)
            continue
        key = (t.task_id, t.attempt, t.stream)
        lengths[key] = _append_one(tx, key, t, lengths.get(key, EMPTY), max_bytes)
        answers.append(lengths[key].chars)
    return answers


def _append_one(tx: Tx, key: Key, tail: LogTail, length: Length, max_bytes: int) -> Length:
    """Append one tail held by its worker, if it starts at the log's end; the log's length after."""
    text = _within(storable(tail.text), max_bytes - length.size)
    if tail.offset != length.chars or not text:  # a repeat or a gap; or nothing (left) to add
        return length
    grown = read_one(tx, Length, _APPEND, (*key, text, len(text.encode()), length.chars))
    if grown is not None:
        return grown
    # it moved since it was read (a concurrent append): say where it is now
    now = read_one(tx, LiveSize, f"{_LENGTHS} WHERE task_id = ? AND attempt = ? AND stream = ?", key)
    return EMPTY if now is None else Length(now.chars, now.size)


def _within(text: str, room: int) -> str:
    """The longest head of ``text`` whose UTF-8 takes at most ``room`` bytes (whole characters)."""
    if room <= 0:
        return ""
    if len(text) * 4 <= room:  # no character takes more than four bytes
        return text
    encoded = text.encode()
    if len(encoded) <= room:
        return text
    return encoded[:room].decode("utf-8", "ignore")  # drops only the character cut in two


def forget(tx: Tx, task_ids: Sequence[int]) -> None:
    """Delete the live logs of these tasks, whose attempts are ending in this transaction (a
    task has one running attempt at most, and only running attempts have live logs)."""
    if task_ids:
        match, ids = tx.is_in("task_id", sorted(set(task_ids)))
        tx.q(f"DELETE FROM live_logs WHERE {match}", ids)
