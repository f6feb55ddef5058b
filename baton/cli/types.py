"""Command-line argument types: every value is checked for kind and range before any work,
so a malformed argument is a usage error (exit 2) with a message, never a traceback."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

import click

from baton.graphs.model import is_name
from baton.graphs.params import text_problem
from baton.graphs.spec import INT32
from baton.wire.workers import MAX_HOLD

MAX_ID = 2**63 - 1  # ids are 64-bit signed integers in every store
MAX_SECONDS = 366 * 86_400.0

BYTES = click.IntRange(1, 1024**3)


class Id(click.ParamType):  # type: ignore[type-arg]
    """An id: ASCII digits only (Python's int() would also take '٣' or '1_000'), 1 to 2**63-1."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value)
            if not (text.isascii() and text.isdigit()):
                self.fail(f"{text[:40]!r} is not an id (a whole number from 1)", param, ctx)
            number = int(text) if len(text) <= 20 else MAX_ID + 1
        if not 1 <= number <= MAX_ID:
            self.fail(f"{str(value)[:40]} is out of range (ids are 1 to {MAX_ID})", param, ctx)
        return number


class Seconds(click.ParamType):  # type: ignore[type-arg]
    """A finite, positive duration in seconds (``nan``, ``inf`` and negatives are refused)."""

    name = "seconds"

    def __init__(self, minimum: float = 0.0, maximum: float = MAX_SECONDS, inclusive: bool = False) -> None:
        self.minimum, self.maximum, self.inclusive = minimum, maximum, inclusive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        low_ok = number >= self.minimum if self.inclusive else number > self.minimum
        if not math.isfinite(number) or not low_ok or number > self.maximum:
            bound = ">=" if self.inclusive else ">"
            self.fail(f"{value!r} must be a finite number of seconds {bound} {self.minimum:g} and <= {self.maximum:g}",
                      param, ctx)  # fmt: skip
        return number


class Text(click.ParamType):  # type: ignore[type-arg]
    """A string of text: no NUL, no bytes that are not UTF-8, at most ``max_chars`` long."""

    name = "text"

    def __init__(self, max_chars: int = 200) -> None:
        self.max_chars = max_chars

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        problem = text_problem(text)
        if problem is None and len(text) > self.max_chars:
            problem = f"is {len(text):,} characters long (at most {self.max_chars:,})"
        if problem is not None:
            self.fail(problem, param, ctx)
        return text


class Name(Text):
    """A label or resource name, as in graphs."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = super().convert(value, param, ctx)
        if not is_name(text):
            self.fail(f"{text!r} is not a valid name (letters, digits, _ . -; starting with a letter)", param, ctx)
        return text


class Resource(click.ParamType):  # type: ignore[type-arg]
    """``NAME=AMOUNT``: a named capacity such as ``mem_mb=8192``."""

    name = "NAME=AMOUNT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        key, sep, amount = str(value).partition("=")
        if not sep or not is_name(key) or not amount.isascii() or not amount.isdigit():
            self.fail(f"{value!r}: expected NAME=AMOUNT, e.g. mem_mb=8192", param, ctx)
        if int(amount) > INT32:
            self.fail(f"{value!r}: the amount must be at most {INT32:,}", param, ctx)
        return key, int(amount)


class Hold(click.ParamType):  # type: ignore[type-arg]
    """``auto`` (None: the worker decides) or a whole number of held tasks from 0 to MAX_HOLD."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_HOLD):
            return value
        text = str(value)
        if text == "auto":
            return None
        if not (text.isascii() and text.isdigit() and len(text) <= 4 and int(text) <= MAX_HOLD):
            self.fail(f"{text[:40]!r} is not auto or a whole number from 0 to {MAX_HOLD}", param, ctx)
        return int(text)


EVENT_ID = Id()
HOLD = Hold()
TASK_ID = Id()
SECONDS = Seconds()
TEXT = Text()
NAME = Name()
RESOURCE = Resource()


class Moment(click.ParamType):  # type: ignore[type-arg]
    """An instant: ISO 8601 with a zone (``2027-01-04T08:00+08:00``, ``...Z``), or a duration from
    now (``+90m``, ``+4h``, ``+1d``, ``+3600s``). Seconds since the epoch."""

    name = "time"
    UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        if text.startswith("+") and text[-1:] in self.UNITS:
            try:
                amount = float(text[1:-1])
            except ValueError:
                amount = math.nan
            if math.isfinite(amount) and 0 < amount * self.UNITS[text[-1]] <= MAX_SECONDS:
                return time.time() + amount * self.UNITS[text[-1]]
            self.fail(f"{text!r}: a duration from now is +N followed by s, m, h or d, at most a year", param, ctx)
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is not a time: give ISO 8601 with a zone (2027-01-04T08:00+08:00) or +4h", param, ctx)
        if when.tzinfo is None:
            self.fail(f"{text!r} has no zone: add one (+08:00, Z) so the instant is not a guess", param, ctx)
        return when.timestamp()
