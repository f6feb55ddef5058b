"""Tx bookkeeping that decides whether waiting processes are woken after a commit."""

from __future__ import annotations

from typing import Any

from baton.store.tx import Tx


def tx() -> Tx:
    conn: Any = None  # these checks never reach the database
    return Tx(conn, 0.0, lambda graph_id: None)  # type: ignore[arg-type,return-value]


def test_work_the_transaction_claims_itself_wakes_nobody() -> None:
    t = tx()
    t.made_ready(3)
    t.took(3)
    assert not t.wakes


def test_work_left_for_others_wakes_them() -> None:
    t = tx()
    t.made_ready(3)
    t.took(2)
    assert t.wakes


def test_an_explicit_change_always_wakes() -> None:
    t = tx()
    t.changed()
    t.took(5)
    assert t.wakes


def test_the_clock_is_read_once_and_only_when_needed() -> None:
    reads: list[int] = []

    def clock() -> float:
        reads.append(1)
        return 42.0

    t = Tx(None, clock, lambda graph_id: None)  # type: ignore[arg-type,return-value]
    assert reads == []
    assert t.now == 42.0 and t.now == 42.0
    assert reads == [1]
