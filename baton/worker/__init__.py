"""Task servers. See loop.py for the claim loop, runner.py for how one attempt runs,
executor.py for the processes that run Python callables, commands.py for argv commands and
guard.py for the small process each command runs under.

Invariants:
- a worker holds at most its free capacity in attempts (no prefetch);
- every report and heartbeat names (task id, attempt); the backend drops stale ones;
- a worker cut off from the backend for longer than its lease stops its attempts;
- a worker's death, by any signal, ends its attempts' processes (guards and executors watch it);
- a report the store refuses for a reason other than an outage is sent alone, then replaced by a
  bare failure naming why: one report never stalls the others.

Nothing is imported here: executor processes import ``baton.worker.executor`` alone and should
not pay for the worker's loop and the backends.
"""
