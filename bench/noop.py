"""No-op task bodies for benchmarks and tests."""

from __future__ import annotations

import time
from typing import Any


def noop(ctx: Any) -> None:
    return None


def sleep(ctx: Any) -> None:
    time.sleep(float(ctx.params.get("sleep_s", 0.02)))
