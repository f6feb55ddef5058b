"""A concurrency key under real worker processes, on both stores: a 1,000-partition event whose
node may run 3 at once, two workers of 4 slots, one killed with SIGKILL partway. A sampler reading
as fast as it can never sees more than 3 of the key's tasks running; the dead worker's slots come
free once its leases run out; the event still ends with every task done once."""

from __future__ import annotations

from pathlib import Path

import pytest

from baton.bench.limits import measure

pytestmark = pytest.mark.slow

LEASE_S = 3.0
SWEEP_S = 1.0  # the controller's default


# with held tasks off and on: keyed tasks are never held, so holding workers still start them
# only through the claim's gate, and no start passes the limit
@pytest.mark.long(seconds=15)
@pytest.mark.parametrize(("store_url", "hold"), [("sqlite", "0"), ("sqlite", "4"), ("postgres", "auto")],
                         indirect=["store_url"])  # fmt: skip
def test_a_limit_of_three_holds_for_two_workers_and_a_dead_ones_slots_come_free(
    store_url: str, hold: str, tmp_path: Path
) -> None:
    got = measure(store_url, partitions=1000, limit=3, workers=2, slots=4, kill_after=300, lease_s=LEASE_S,
                  log_dir=tmp_path / "logs", hold=hold)  # fmt: skip
    print(got)
    assert (got["state"], got["tasks"]) == ("succeeded", 1000)
    assert got["samples"] > 100
    assert got["max_running_seen"] == 3  # reached, never passed
    assert got["held_at_kill"] >= 1  # it died holding tasks, under leases it can no longer renew
    freed = got["slots_free_after_kill_s"]
    assert freed is not None  # nothing leaked: the dead worker holds no task any more
    # at most a lease and a sweep after its last heartbeat (loose: a loaded machine sweeps late)
    assert LEASE_S - 2 * LEASE_S / 3 <= freed <= LEASE_S + SWEEP_S + 10.0  # not before its lease ran out
