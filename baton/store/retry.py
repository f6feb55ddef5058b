"""Retrying a backend verb whose transaction failed transiently (lost connection, deadlock)."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from baton.errors import TransientError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("baton.backend")


class HasReconnect(Protocol):
    reconnect_s: float


def retried(verb: F) -> F:
    """Retry a verb whose transaction failed transiently (lost connection, deadlock), with jittered
    exponential backoff, until the backend's reconnect_s deadline. Each attempt is a whole new
    transaction, so a retry never half-repeats one."""

    @functools.wraps(verb)
    def wrapper(self: HasReconnect, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.reconnect_s
        delay = 0.05
        while True:
            try:
                return verb(self, *args, **kwargs)
            except TransientError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("%s failed (%s); retrying in %.2fs", verb.__name__, exc, delay)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)

    return wrapper  # type: ignore[return-value]
