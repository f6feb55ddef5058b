"""Task bodies for ``baton bench``: they do nothing, or sleep a fixed time."""

from __future__ import annotations

import time

from baton.worker.context import TaskContext

SLEEP_S = 0.02


def noop(ctx: TaskContext) -> None:
    return None


def sleep(ctx: TaskContext) -> None:
    time.sleep(SLEEP_S)
