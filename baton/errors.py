"""Baton's exception tree. Every error Baton raises on purpose derives from BatonError.

BatonError
├── UsageError              bad input from a person or a client (CLI exit 2, HTTP 4xx)
│   ├── GraphInvalid        a graph file or builder failed validation (lists every problem)
│   │   └── CalendarInvalid a business calendar failed validation (the same shape)
│   ├── ParamsInvalid       an event's parameters do not fit the graph's schema
│   ├── NotFound            an event, graph or task that does not exist
│   ├── Conflict            e.g. an idempotency key reused with other parameters
│   ├── Unauthenticated     no token, or one that is unknown or revoked (HTTP 401)
│   └── Forbidden           a token whose role or limits do not allow the request (HTTP 403)
├── StaleReport             a report or heartbeat for an attempt that is no longer current
└── BackendError            the store failed (driver errors are translated to this)
    ├── TransientError      worth retrying: connection lost, deadlock, serialization failure
    └── SchemaError         the database schema is newer or older than this code
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_PROBLEMS_SHOWN = 50  # a message lists at most this many problems


class BatonError(Exception):
    """Root of every error Baton raises on purpose."""


class UsageError(BatonError):
    """The input was wrong; the message says what and where."""


@dataclass(frozen=True)
class Problem:
    """One validation problem: where (file and dotted path, line if known) and what."""

    where: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        line = f" (line {self.line})" if self.line else ""
        return f"{self.where}{line}: {self.message}"


class GraphInvalid(UsageError):
    """A graph failed validation. ``problems`` lists every problem found, not only the first."""

    what = "graph"  # the kind of document the message names

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        shown = self.problems[:MAX_PROBLEMS_SHOWN]
        lines = "\n".join(f"  - {p}" for p in shown)
        if count > len(shown):
            lines += f"\n  - ... and {count - len(shown):,} more"
        super().__init__(f"invalid {self.what} {source} ({count} problem{'s' if count != 1 else ''}):\n{lines}")


class CalendarInvalid(GraphInvalid):
    """A business calendar failed validation; ``problems`` lists every problem found."""

    what = "calendar"


class ParamsInvalid(UsageError):
    """An event's parameters were refused; ``problems`` names each parameter."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = "; ".join(self.problems[:MAX_PROBLEMS_SHOWN])
        more = len(self.problems) - MAX_PROBLEMS_SHOWN
        super().__init__("invalid event parameters: " + shown + (f"; ... and {more:,} more" if more > 0 else ""))


class NotFound(UsageError):
    """Something named by the caller does not exist."""


class Conflict(UsageError):
    """The request contradicts what is already stored (``existing_event``: the event it
    contradicts, where there is one)."""

    def __init__(self, message: str, existing_event: int | None = None) -> None:
        super().__init__(message)
        self.existing_event = existing_event


class Unauthenticated(UsageError):
    """The request carries no valid token (missing, unknown or revoked)."""


class Forbidden(UsageError):
    """The token is valid, but its role or limits do not allow this request."""


class StaleReport(BatonError):
    """A report for an attempt that is no longer the task's current one; it changed nothing."""


class BackendError(BatonError):
    """The backing store failed."""


class TransientError(BackendError):
    """A failure that may pass: the verb is retried with backoff before it is given up."""


class SchemaError(BackendError):
    """The database schema does not match this version of Baton."""
