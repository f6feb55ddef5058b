"""Priorities, fair turns and ageing as pure rules (baton.engine.priorities), simulated without a
database: the queue order, a small event's place beside a huge one, the ageing bound; and the
event and schedule priorities the graph language and the planner take."""

from __future__ import annotations

import heapq

import pytest
from sqlalchemy.dialects import sqlite

from baton.engine.planner import plan
from baton.engine.priorities import (
    TASK_PRIORITY_BOUND,
    QueueKey,
    aged_turn,
    ageing_bound_steps,
    ages,
    event_priority_problem,
    queue_key,
    start_turn,
    task_priority,
    turn,
)
from baton.errors import GraphInvalid
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.graphs.schedules import schedule_to_dict
from baton.store import tables
from baton.store.claims import READY_ORDER


def chain(partitions: int, priority: int = 0) -> Graph:
    g = GraphBuilder("chain")
    g.param("parts", "list", default=[f"p{i:05}" for i in range(partitions)]).partitions(param="parts")
    g.python("a", "m:f", priority=priority)
    g.python("b", "m:f", after=["a"], priority=priority)
    g.python("total", "m:f", after=[("b", "all")], partitioned=False)
    return g.build()


class Task:
    """A ready task as the simulation holds it."""

    def __init__(self, event: str, priority: int, turn: int, stage: int, at: float, id: int) -> None:
        self.event, self.priority, self.turn, self.stage, self.at, self.id = event, priority, turn, stage, at, id

    def key(self) -> tuple[int, int, int, float, int]:
        return tuple(queue_key(self.priority, self.turn, self.stage, self.at, self.id))  # type: ignore[return-value]

    def __lt__(self, other: Task) -> bool:
        return self.key() < other.key()


class Queue:
    """The ready queue of one priority, with events planned the way the store plans them."""

    def __init__(self) -> None:
        self.ready: list[Task] = []
        self.ids = 0

    def head_turn(self, priority: int) -> int | None:
        at = [t.turn for t in self.ready if t.priority == priority]
        return min(at) if at else None

    def submit(self, event: str, partitions: int, priority: int = 0, at: float = 0.0) -> None:
        start = start_turn(self.head_turn(priority), None)
        for ordinal in range(partitions):
            self.ids += 1
            heapq.heappush(self.ready, Task(event, priority, turn(start, ordinal), 0, at, self.ids))

    def claim(self) -> Task:
        return heapq.heappop(self.ready)


# --- the rules ---------------------------------------------------------------------------------


def test_the_queue_order_is_priority_then_turn_then_depth_then_age() -> None:
    keys = [
        queue_key(priority=1, turn=9, stage=0, available_at=9.0, task_id=9),
        queue_key(priority=0, turn=0, stage=5, available_at=0.0, task_id=1),
        queue_key(priority=1, turn=3, stage=0, available_at=0.0, task_id=2),
        queue_key(priority=1, turn=3, stage=2, available_at=5.0, task_id=3),
        queue_key(priority=1, turn=3, stage=2, available_at=1.0, task_id=4),
    ]
    assert [k.id for k in sorted(keys)] == [4, 3, 2, 9, 1]


def test_the_stores_ready_index_and_queries_keep_the_rules_order() -> None:
    index = next(i for i in tables.tasks.indexes if i.name == "tasks_ready")
    columns = [str(e.compile(dialect=sqlite.dialect())).removeprefix("tasks.") for e in index.expressions]
    assert columns == READY_ORDER.split(", ") == ["priority DESC", "turn", "stage DESC", "available_at", "id"]
    assert QueueKey._fields == ("neg_priority", "turn", "neg_stage", "available_at", "id")  # DESC: negated


def test_an_events_priority_is_bounded_with_a_message_that_says_the_bounds() -> None:
    assert event_priority_problem(0) is None and event_priority_problem(-1000) is None
    assert event_priority_problem(1000) is None
    assert "-1000 to 1000" in (event_priority_problem(1001) or "")
    assert "not 1001" in (event_priority_problem(1001) or "")
    assert event_priority_problem(True) and event_priority_problem(1.5)


def test_a_tasks_priority_is_its_nodes_plus_its_events_kept_in_range() -> None:
    assert task_priority(3, -5) == -2
    assert task_priority(TASK_PRIORITY_BOUND, 1000) == TASK_PRIORITY_BOUND
    assert task_priority(-TASK_PRIORITY_BOUND, -1000) == -TASK_PRIORITY_BOUND
    assert task_priority(2**70, 0) == 2**70  # not a priority the graph language takes: the store refuses it


def test_a_new_event_starts_at_the_turn_being_served() -> None:
    assert start_turn(head_turn=40, running_turn=90) == 41  # just after the head: never tied with it
    assert start_turn(head_turn=None, running_turn=90) == 91
    assert start_turn(None, None) == 0
    assert turn(41, 3) == 44


def test_ageing_raises_only_what_waited_a_full_step_below_the_head() -> None:
    assert ages(priority=0, head_priority=5, waited_s=60, since_raised_s=None, step_s=60)
    assert not ages(priority=0, head_priority=5, waited_s=59, since_raised_s=None, step_s=60)
    assert not ages(priority=0, head_priority=5, waited_s=600, since_raised_s=30, step_s=60)
    assert not ages(priority=5, head_priority=5, waited_s=600, since_raised_s=None, step_s=60)  # the top never ages
    # a raised task joins the head's line at its place in its own line
    assert aged_turn(900, level_head_turn=900, head_turn=40) == 40
    assert aged_turn(903, level_head_turn=900, head_turn=40) == 43
    assert aged_turn(7, level_head_turn=5, head_turn=40) == 42
    assert ageing_bound_steps(low=-3, high=5) == 9 and ageing_bound_steps(5, 5) == 1


# --- simulated -------------------------------------------------------------------------------


def test_a_small_event_after_a_huge_one_interleaves_with_it() -> None:
    queue = Queue()
    queue.submit("huge", 10_000)
    served = [queue.claim() for _ in range(3_000)]
    assert {t.event for t in served} == {"huge"}
    queue.submit("small", 5)
    nxt = [queue.claim().event for _ in range(11)]
    assert nxt.count("small") == 5  # all five within the next eleven claims, not after 7,000
    assert nxt[2::2] == ["small"] * 5  # one in two, from the turn after the head's


def test_a_stream_of_small_events_does_not_starve_the_huge_one() -> None:
    queue = Queue()
    queue.submit("huge", 1_000)
    huge = 0
    for i in range(500):
        queue.submit(f"small{i}", 1)
        for _ in range(2):
            huge += queue.claim().event == "huge"
    assert huge >= 400  # about half of the claims, though a new event arrived before every second one


def test_in_overload_every_waiting_event_gets_a_task_per_turn_and_the_huge_one_keeps_going() -> None:
    queue = Queue()
    queue.submit("huge", 1_000)
    claimed: list[str] = []
    for i in range(600):
        queue.submit(f"small{i}", 1)  # one new event per claim: more work comes than is done
        claimed.append(queue.claim().event)
    turns = 0
    while queue.ready and queue.ready[0].event != "huge":  # the rest of the current turn
        queue.claim()
        turns += 1
    # each turn serves the huge event once and every small event waiting in it once: its share
    # falls as the backlog of events grows (each event gets as much as the others), but it is
    # never passed over for longer than one turn
    assert claimed.count("huge") >= 30 and "huge" in claimed[-60:]
    assert turns <= claimed.count("huge") + 2


def test_a_low_task_behind_a_continuous_stream_reaches_the_head_within_the_bound() -> None:
    queue, low, high, step = Queue(), 0, 4, 60.0
    queue.submit("low", 1, priority=low, at=0.0)
    (waiting,) = queue.ready
    raised_at: float | None = None
    for k in range(1, 100):
        now = k * step
        queue.submit(f"high{k}", 2, priority=high, at=now)  # the stream outgrows the claims
        head = min(queue.ready)
        for t in queue.ready:
            since = None if raised_at is None or t is not waiting else now - raised_at
            if ages(t.priority, head.priority, now - t.at, since, step):
                level_head = queue.head_turn(t.priority)
                assert level_head is not None
                t.priority, t.turn = t.priority + 1, aged_turn(t.turn, level_head, head.turn)
                raised_at = now if t is waiting else raised_at
        heapq.heapify(queue.ready)  # ageing moved some
        if queue.claim() is waiting:
            break
    assert k <= ageing_bound_steps(low, high)
    assert k == high - low  # and no sooner: it needed every raise


# --- the graph language and the planner ----------------------------------------------------


def test_the_planner_adds_the_events_priority_and_gives_each_partition_its_ordinal() -> None:
    graph = chain(3, priority=2)
    tasks = plan(graph, validate_params(graph, {}), event_priority=-5).tasks
    assert {(t.node, t.partition): (t.priority, t.ordinal) for t in tasks} == {
        ("a", "p00000"): (-3, 0), ("b", "p00000"): (-3, 0),
        ("a", "p00001"): (-3, 1), ("b", "p00001"): (-3, 1),
        ("a", "p00002"): (-3, 2), ("b", "p00002"): (-3, 2),
        ("total", ""): (-5, 0),
    }  # fmt: skip


def test_a_schedule_declares_the_priority_of_the_events_it_raises() -> None:
    g = GraphBuilder("nightly").python("a", "m:f")
    g.schedule("urgent", cron="0 2 * * *", priority=7)
    g.schedule("plain", cron="0 3 * * *")
    graph = g.build()
    urgent, plain = graph.schedule("urgent"), graph.schedule("plain")
    assert urgent is not None and plain is not None
    assert (urgent.priority, plain.priority) == (7, 0)
    assert schedule_to_dict(urgent)["priority"] == 7 and "priority" not in schedule_to_dict(plain)


@pytest.mark.parametrize("bad", [1001, -1001, 1.5, "high"])
def test_a_schedules_priority_out_of_range_is_refused_with_its_path(bad: object) -> None:
    g = GraphBuilder("nightly").python("a", "m:f")
    g.schedule("urgent", cron="0 2 * * *", priority=bad)
    with pytest.raises(GraphInvalid) as caught:
        g.build()
    assert "schedules.urgent.priority" in str(caught.value)
