"""Live logs on both backends: a running attempt's output appended by its worker (fenced by
attempt and by offset, capped), read through ``attempt_log`` while it runs, gone once it ends."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from baton.controller.loop import Controller
from baton.engine.states import Outcome
from baton.errors import NotFound, TransientError, UsageError
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.settings import Settings
from baton.store import open_store
from baton.store.protocol import Store
from baton.store.records import Claim, ClaimRequest, LogTail, Report
from baton.testing import check_invariants
from baton.worker.capture import LiveFiles
from baton.worker.runner import Running
from baton.worker.tail import Tailer

OVER = -1.0  # a lease that has already run out: the next sweep expires it, no waiting


def claim_one(backend: Store, worker_id: str = "w1", lease_s: float = 30.0, retries: int = 0) -> Claim:
    """Submit and expand a one-task event (once), and claim its task."""
    if not backend.events(limit=1):
        graph = GraphBuilder("live", defaults={"retries": retries, "retry_delay_s": 0.0}).python("only", "m:f").build()
        backend.submit(backend.register_graph(graph).id, validate_params(graph, {}))
        Controller(backend).expand()
    (claim,) = backend.claim(ClaimRequest(worker_id, {"slots": 1}, frozenset(), 1, lease_s)).claims
    return claim


def tail(claim: Claim, offset: int, text: str, stream: str = "stdout") -> LogTail:
    return LogTail(claim.task_id, claim.attempt, stream, offset, text)


def live_rows(backend: Store) -> list[tuple[int, int, str]]:
    with backend.transaction(write=False) as tx:  # type: ignore[attr-defined]
        return [tuple(r) for r in tx.rows("SELECT task_id, attempt, stream FROM live_logs ORDER BY 1, 2, 3")]


def test_tails_append_in_order_and_a_repeat_or_a_gap_changes_nothing(backend: Store) -> None:
    claim = claim_one(backend)
    assert backend.append_logs("w1", [tail(claim, 0, "one\n"), tail(claim, 0, "oops\n", "stderr")]) == [4, 5]
    assert backend.append_logs("w1", [tail(claim, 4, "twö\n")]) == [8]
    assert backend.append_logs("w1", [tail(claim, 4, "twö\n")]) == [8]  # sent again: appended once
    assert backend.append_logs("w1", [tail(claim, 12, "far\n")]) == [8]  # a gap: refused, the length said
    assert backend.append_logs("w1", [tail(claim, 8, "three\n"), tail(claim, 14, "four\n")]) == [14, 19]
    chunk = backend.attempt_log(claim.task_id, claim.attempt)
    assert (chunk.text, chunk.size, chunk.live) == ("one\ntwö\nthree\nfour\n", 19, True)
    middle = backend.attempt_log(claim.task_id, claim.attempt, offset=4, limit=4)
    assert (middle.text, middle.next_offset) == ("twö\n", 8)
    assert backend.attempt_log(claim.task_id, claim.attempt, "stderr").text == "oops\n"
    with pytest.raises(UsageError):
        backend.append_logs("w1", [tail(claim, 0, "x", "stdin")])


def test_a_running_attempt_that_wrote_nothing_reads_empty_and_others_are_not_found(backend: Store) -> None:
    claim = claim_one(backend)
    chunk = backend.attempt_log(claim.task_id, claim.attempt, "stderr")
    assert (chunk.text, chunk.size, chunk.live) == ("", 0, True)
    with pytest.raises(NotFound):
        backend.attempt_log(claim.task_id, claim.attempt + 1)  # has not run
    with pytest.raises(NotFound):
        backend.attempt_log(claim.task_id + 1000, 1)


def test_a_tail_from_another_worker_or_a_stale_attempt_is_dropped(backend: Store) -> None:
    first = claim_one(backend, lease_s=OVER, retries=1)
    assert backend.append_logs("w1", [tail(first, 0, "first attempt\n")]) == [14]
    assert backend.append_logs("w2", [tail(first, 14, "not mine\n")]) == [None]  # another worker's
    assert backend.expire_leases() == 1
    assert live_rows(backend) == []  # the attempt ended: its live log with it
    assert backend.append_logs("w1", [tail(first, 14, "too late\n")]) == [None]
    second = claim_one(backend, worker_id="w2")
    assert second.attempt == first.attempt + 1
    assert backend.append_logs("w2", [tail(second, 0, "second\n"), tail(first, 0, "old\n")]) == [7, None]
    assert backend.attempt_log(second.task_id, second.attempt).text == "second\n"
    lost = backend.attempt_log(first.task_id, first.attempt)
    assert (lost.text, lost.live) == ("", False)  # the lost attempt's row: nothing reported


def test_a_live_log_stops_growing_at_the_cap(backend: Store) -> None:
    claim = claim_one(backend)
    capped = open_store(backend.url, Settings(max_log_bytes=10))
    try:
        assert capped.append_logs("w1", [tail(claim, 0, "abcdef")]) == [6]
        assert capped.append_logs("w1", [tail(claim, 6, "gh€!")]) == [8]  # "€" takes 3 bytes: whole or not at all
        assert capped.append_logs("w1", [tail(claim, 8, "€")]) == [8]
        assert capped.append_logs("w1", [tail(claim, 8, "ijk")]) == [10]
        assert capped.append_logs("w1", [tail(claim, 10, "l")]) == [10]  # full: nothing more is taken
    finally:
        capped.close()
    assert backend.attempt_log(claim.task_id, claim.attempt).text == "abcdefghij"


def test_nul_and_lone_surrogates_are_stored_one_character_for_one(backend: Store) -> None:
    claim = claim_one(backend)
    assert backend.append_logs("w1", [tail(claim, 0, "a\x00b\udcffc")]) == [5]
    assert backend.attempt_log(claim.task_id, claim.attempt).text == "a\ufffdb?c"


def test_the_report_replaces_the_live_log_in_its_transaction(backend: Store) -> None:
    claim = claim_one(backend)
    backend.append_logs("w1", [tail(claim, 0, "partial\n"), tail(claim, 0, "warn\n", "stderr")])
    assert live_rows(backend) == [(claim.task_id, claim.attempt, "stderr"), (claim.task_id, claim.attempt, "stdout")]
    now = time.time()
    final = Report(claim.task_id, claim.attempt, Outcome.SUCCEEDED, now, now, "{}", stdout="partial\nall\n")
    assert backend.report("w1", [final]).stale == []
    assert live_rows(backend) == []
    chunk = backend.attempt_log(claim.task_id, claim.attempt)
    assert (chunk.text, chunk.size, chunk.live) == ("partial\nall\n", 12, False)
    assert backend.attempt_log(claim.task_id, claim.attempt, "stderr").text == ""  # the report's, not the tail's
    assert backend.append_logs("w1", [tail(claim, 8, "after\n")]) == [None]
    assert live_rows(backend) == []


def test_a_claim_whose_reply_was_lost_is_released_with_its_live_log(backend: Store) -> None:
    claim = claim_one(backend)
    backend.append_logs("w1", [tail(claim, 0, "orphan\n")])
    # the worker never heard of the claim: its heartbeat lists nothing, and with a lease of 0 s
    # the claim is older than half a lease, so it is handed back
    assert backend.heartbeat("w1", [], 0.0) == []
    assert live_rows(backend) == []
    (attempt,) = backend.attempts([claim.task_id])
    assert attempt.outcome is Outcome.RELEASED


@pytest.fixture
def two_tasks(backend: Store) -> Iterator[list[Claim]]:
    g = GraphBuilder("two").param("p", "list", default=["a", "b"]).partitions(param="p").python("only", "m:f")
    graph = g.build()
    backend.submit(backend.register_graph(graph).id, validate_params(graph, {}))
    Controller(backend).expand()
    yield backend.claim(ClaimRequest("w1", {"slots": 2}, frozenset(), 2, 30.0)).claims


def test_one_call_appends_to_several_attempts_and_a_report_forgets_only_its_own(
    backend: Store, two_tasks: list[Claim]
) -> None:
    a, b = two_tasks
    assert backend.append_logs("w1", [tail(a, 0, "a1\n"), tail(b, 0, "b1\n"), tail(a, 3, "a2\n")]) == [3, 3, 6]
    now = time.time()
    backend.report("w1", [Report(a.task_id, a.attempt, Outcome.FAILED, now, now, error="no", stdout="a\n")])
    assert live_rows(backend) == [(b.task_id, b.attempt, "stdout")]
    assert backend.attempt_log(b.task_id, b.attempt).text == "b1\n"


def test_the_invariants_find_a_live_log_left_behind_by_an_ended_attempt(backend: Store) -> None:
    claim = claim_one(backend)
    backend.append_logs("w1", [tail(claim, 0, "x")])
    now = time.time()
    backend.report("w1", [Report(claim.task_id, claim.attempt, Outcome.SUCCEEDED, now, now, "{}")])
    assert check_invariants(backend) == []
    with backend.transaction() as tx:  # type: ignore[attr-defined]
        tx.q("INSERT INTO live_logs (task_id, attempt, stream, text, size) VALUES (?, ?, 'stdout', 'x', 1)",
             (claim.task_id, claim.attempt))  # fmt: skip
    assert check_invariants(backend) == [
        f"task {claim.task_id} attempt {claim.attempt} is not running but has a live stdout log"
    ]
    with backend.transaction() as tx:  # type: ignore[attr-defined]
        tx.q("DELETE FROM live_logs")


# --- the worker's side: its tail of the capture files, against the store ----------------------


class LosingLink:
    """The store, except that the answer to an armed ``append_logs`` is lost after the store
    has applied it (as a reply lost on the network would be)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lose_next = False
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def append_logs(self, worker_id: str, tails: Sequence[LogTail]) -> list[int | None]:
        self.calls += 1
        held = self.store.append_logs(worker_id, tails)
        if self.lose_next:
            self.lose_next = False
            raise TransientError("the answer was lost")
        return held


@pytest.fixture
def followed(backend: Store, tmp_path: Path) -> Iterator[tuple[Running, BinaryIO]]:
    """A running attempt whose stdout is a file the test writes, as a command's would be."""
    claim = claim_one(backend)
    running = Running(claim, backend.graph_of(claim.graph_id).node("only"), {})
    with open(tmp_path / "out", "w+b") as out, open(tmp_path / "err", "w+b") as err:
        running.watch_output(LiveFiles.duplicate(out, err), owned=True)
        yield running, out
    running.detach()


def live(backend: Store, running: Running) -> str:
    return backend.attempt_log(running.claim.task_id, running.claim.attempt).text


def test_the_tail_sends_whole_characters_only_what_is_new_and_nothing_twice(
    backend: Store, followed: tuple[Running, BinaryIO]
) -> None:
    running, out = followed
    link = LosingLink(backend)
    tailer = Tailer(link, "w1", max_log_bytes=1000)  # type: ignore[arg-type]
    assert tailer.step([running]) == 0 and link.calls == 0  # nothing written: no call at all
    out.write("naïve €".encode()[:-1])  # the euro sign cut after its second byte
    out.flush()
    assert tailer.step([running]) == 1 and live(backend, running) == "naïve "
    out.write(b"\xac\n\xff ok\n")  # the euro sign's last byte, then a byte that is not UTF-8
    out.flush()
    link.lose_next = True
    with pytest.raises(TransientError):
        tailer.step([running])
    assert live(backend, running) == "naïve €\n\ufffd ok\n"  # applied, though the answer was lost
    out.write(b"end\n")
    out.flush()
    # sent again from where the tail stood, with what came since: refused (the store holds more
    # than the tail knew), answered with the length, and the new part follows from there
    assert tailer.step([running]) == 1 and live(backend, running) == "naïve €\n\ufffd ok\n"
    assert tailer.step([running]) == 1 and tailer.step([running]) == 0
    assert live(backend, running) == "naïve €\n\ufffd ok\nend\n"
    running.detach()  # finished: its files are no longer read
    out.write(b"after the end\n")
    out.flush()
    assert tailer.step([running]) == 0


def test_the_tail_stops_at_the_cap_and_when_the_attempt_is_no_longer_the_workers(
    backend: Store, followed: tuple[Running, BinaryIO]
) -> None:
    running, out = followed
    link = LosingLink(backend)
    capped = Tailer(link, "w1", max_log_bytes=8)  # type: ignore[arg-type]
    out.write(b"0123456789\n")
    out.flush()
    assert capped.step([running]) == 1 and capped.step([running]) == 0
    assert live(backend, running) == "01234567"
    stranger = Tailer(link, "w2", max_log_bytes=1000)  # type: ignore[arg-type]
    assert stranger.step([running]) == 1  # dropped by the store: the attempt is w1's
    calls = link.calls
    out.write(b"more\n")
    out.flush()
    assert stranger.step([running]) == 0 and link.calls == calls  # no longer followed
    assert live(backend, running) == "01234567"
