"""Task servers. See loop.py for the claim loop, runner.py for how one attempt runs,
executor.py for the processes that run Python callables, commands.py for argv commands.

Invariants:
- a worker holds at most its free capacity in attempts (no prefetch);
- every report and heartbeat names (task id, attempt); the backend drops stale ones;
- a worker cut off from the backend for longer than its lease stops its attempts.
"""

from baton.worker.loop import Worker, WorkerConfig

__all__ = ["Worker", "WorkerConfig"]
