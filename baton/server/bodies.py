"""Request bodies within bounds: the caps by kind of route, a server-wide budget of bytes being
read and parsed at once, and a JSON parse whose cost is bounded by the body's length (see
:mod:`baton.server.door`, which applies them before FastAPI sees a body).

A JSON text can cost far more memory parsed than it is long (``[{},{},…]``: about 25 times), so
its values are counted first, at memchr speed and without parsing (:func:`json_values`), and a
body with more than its route allows is refused. Parsed, a body then costs at most about four
times its length in strings (a string with one character beyond U+FFFF is stored four bytes a
character) plus about 100 bytes a value.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.types import Scope

from baton.settings import Settings

BODY_KEY = "x-baton-body"  # a route's body kind, in its OpenAPI extension (see BODIES)


@dataclass(frozen=True)
class BodyCap:
    """What one kind of route may be sent: bytes (a setting's value, or fixed) and JSON values."""

    max_json_values: int
    setting: str | None = None
    fixed_bytes: int | None = None
    json: bool = True

    def max_bytes(self, settings: Settings) -> int:
        if self.setting is not None:
            value: int = getattr(settings, self.setting)
            return value
        assert self.fixed_bytes is not None
        return self.fixed_bytes


# The caps by kind. A worker's batches (claims with reports, reports, live logs) are the only
# large bodies; each report holds at most 12 values, each log tail 6, so 20,000 values is over
# 512 reports or 1,024 tails with room to spare. A heartbeat lists up to 100,000 [task, attempt]
# pairs (three values each). An API body (an event's parameters, a graph's YAML text) is capped
# by max_request_bytes; the rest are small by nature.
BODIES: dict[str, BodyCap] = {
    "batch": BodyCap(20_000, setting="max_worker_request_bytes"),
    "heartbeat": BodyCap(400_000, fixed_bytes=4 * 1024 * 1024),
    "api": BodyCap(200_000, setting="max_request_bytes"),
    "small": BodyCap(2_000, fixed_bytes=256 * 1024),
    "form": BodyCap(0, fixed_bytes=4096, json=False),
}
DEFAULT_BODY = "small"


def has_body(scope: Scope) -> bool:
    """Whether a request's head says a body follows."""
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def too_large(cap: int) -> HTTPException:
    return HTTPException(413, f"the request body is over this route's cap of {cap:,} bytes")


class Raw:
    """A body as read: its one owner hands it on with :meth:`take`, so that once parsed, its
    bytes are freed at once (a body of tens of MiB need not stay beside its parsed copy)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks: list[bytes] | None = chunks

    def take(self) -> bytes:
        """The bytes, once (joined here: in a worker thread, a join over 1 MiB releases the GIL)."""
        chunks, self._chunks = self._chunks, None
        if chunks is None:
            raise RuntimeError("a body is taken once")
        return b"".join(chunks)


class BodyBudget:
    """Request bodies being read, parsed and handled at once, in bytes: a request waits (without
    a thread) until its share fits, so the bodies in memory stay under ``total`` whatever the
    number of clients. A body's share is its declared length, or its route's cap when chunked
    (at most ``total``); it is held from before the first byte is read until the answer is made.
    A share is given back without awaiting anything, so a cancelled request cannot keep it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._waiting: list[asyncio.Future[None]] = []

    @asynccontextmanager
    async def reading(self, request: Request, cap: int, timeout_s: float) -> AsyncIterator[Raw]:
        """The body, read within ``cap`` and ``timeout_s`` (the wait for a share included),
        while its share of the budget is held."""
        declared = _declared_length(request.scope)
        if declared is not None and declared > cap:
            raise too_large(cap)
        share = min(cap, declared if declared is not None else cap, self.total)
        taken = False
        try:
            try:
                with anyio.fail_after(timeout_s):
                    await self._take(share)
                    taken = True
                    raw = Raw(await _read(request, cap))
            except TimeoutError:
                raise HTTPException(408, f"the request body did not arrive within {timeout_s:g} s") from None
            yield raw
        finally:
            if taken:
                self._give(share)

    async def _take(self, share: int) -> None:
        while not (self.used == 0 or self.used + share <= self.total):
            turn = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            try:
                await turn
            finally:
                if turn in self._waiting:
                    self._waiting.remove(turn)
        self.used += share

    def _give(self, share: int) -> None:
        self.used -= share
        waiting, self._waiting = self._waiting, []
        for turn in waiting:  # each looks again; those that still do not fit wait again
            if not turn.done():
                turn.set_result(None)


async def _read(request: Request, cap: int) -> list[bytes]:
    """The body's chunks, as they came: joined later, in a worker thread (one buffer of tens of
    MiB, allocated and faulted in on the event loop, held it for a fifth of a second)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_large(cap)
        chunks.append(chunk)
    return chunks


# --- parsing within a bound ----------------------------------------------------------------------

SEGMENT_BYTES = 1024 * 1024  # a body is counted a segment at a time: the event loop gets its turns


class TooManyValues(ValueError):
    pass


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def json_values(body: bytes, limit: int) -> int:
    """An upper bound of the values in a JSON text (strings, keys included, plus separators and
    containers outside strings, plus one), counted without parsing it; raises TooManyValues
    past ``limit``. Within each segment, escaped backslashes, then escaped quotes, are removed
    first, so every quote left opens or closes a string (a segment never ends inside an escape);
    each string costs one step, so the count takes at most about ``2 * limit`` steps besides the
    segments, each at memchr speed."""
    values, inside, start, end_of_body = 1, False, 0, len(body)
    while start < end_of_body:
        end = min(start + SEGMENT_BYTES, end_of_body)
        while end < end_of_body and body[end - 1] == 0x5C:  # a backslash: take its escaped character too
            end += 1
        segment = body[start:end]
        if b"\\" in segment:
            segment = segment.replace(b"\\\\", b"")
        if b"\\" in segment:
            segment = segment.replace(b'\\"', b"")
        values, inside = _count(segment, values, inside, limit)
        start = end
    return values


def _count(segment: bytes, values: int, inside: bool, limit: int) -> tuple[int, bool]:
    pos, end = 0, len(segment)
    while True:
        quote = segment.find(b'"', pos)
        stop = end if quote < 0 else quote
        if not inside:
            values += segment.count(b",", pos, stop) + segment.count(b"[", pos, stop) + segment.count(b"{", pos, stop)
        if values > limit:
            raise TooManyValues(values)
        if quote < 0:
            return values, inside
        values += 0 if inside else 1  # a string opens
        inside = not inside
        pos = quote + 1


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return found


def parse_json(raw: Raw, max_values: int) -> Any:
    """A request body as JSON, bounded (run in a worker thread: the hook per object gives the
    event loop its turns). Raises HTTPException 400 or 413 saying what is wrong."""
    body = raw.take()
    try:
        json_values(body, max_values)
    except TooManyValues:
        raise HTTPException(413, f"the request body holds more than {max_values:,} JSON values, this "
                                 "route's cap") from None  # fmt: skip
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"the request body is not UTF-8 JSON ({exc.reason} at byte {exc.start})") from None
    del body  # the bytes go: only the text is parsed
    try:
        return json.loads(text, object_pairs_hook=_unique)
    except DuplicateKey as exc:
        raise HTTPException(400, f"the key {printable(exc.key)[:100]!r} appears twice in one object of the "
                                 "request body") from None  # fmt: skip
    except json.JSONDecodeError as exc:
        raise HTTPException(400, f"the request body is not valid JSON: {exc.msg} (line {exc.lineno}, column "
                                 f"{exc.colno})") from None  # fmt: skip
    except RecursionError:
        raise HTTPException(400, "the request body's JSON is nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of over 4,300 digits
        raise HTTPException(400, f"the request body's JSON cannot be read: {str(exc)[:200]}") from None


def printable(text: str) -> str:
    """``text`` as UTF-8 can carry it: a lone surrogate (which JSON can escape but UTF-8 cannot
    encode) becomes its escape, visible, instead of failing the answer."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
