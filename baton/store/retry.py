"""Retrying a backend verb whose transaction failed transiently (lost connection, deadlock)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from baton.clock import Backoff
from baton.errors import TransientError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("baton.backend")

# Jittered, so processes that lost the database together do not come back in step; the time
# limit is each store's reconnect_s.
BACKOFF = Backoff(first_s=0.05, max_s=2.0, jitter=0.5)


class HasReconnect(Protocol):
    reconnect_s: float


def retried(verb: F) -> F:
    """Retry a verb whose transaction failed transiently (lost connection, deadlock), with jittered
    exponential backoff (:data:`BACKOFF`), until the backend's reconnect_s deadline. Each attempt
    is a whole new transaction, so a retry never half-repeats one."""

    @functools.wraps(verb)
    def wrapper(self: HasReconnect, *args: Any, **kwargs: Any) -> Any:
        pauses = dataclasses.replace(BACKOFF, within_s=self.reconnect_s).delays()
        while True:
            try:
                return verb(self, *args, **kwargs)
            except TransientError as exc:
                pause = next(pauses, None)
                if pause is None:
                    raise
                log.warning("%s failed (%s); retrying in %.2fs", verb.__name__, exc, pause)
                time.sleep(pause)

    return wrapper  # type: ignore[return-value]
