"""Live tails: what running attempts have written since the last round, sent to the store.

Every ``log_tail_s`` the worker's tail thread calls :meth:`Tailer.step` with the attempts it
runs. Each attempt's two capture files are read from where the last round stopped, up to a
share of :data:`BATCH_BYTES` per call; only what was written since goes out, and nothing at
all when nothing was. A chunk ends on a whole UTF-8 character (an incomplete one at the end
waits for its other bytes); invalid bytes become U+FFFD, one character each, so the worker can
map the store's length in characters back to bytes of the file.

The store answers each tail with the length its live log has now (see
:meth:`~baton.store.protocol.WorkerLink.append_logs`): the worker goes on from there, so a
chunk whose answer was lost is not sent twice, and a chunk the store did not take is sent
again. A stream stops being followed when its attempt is no longer this worker's, or when its
log is full (``max_log_bytes``): the report carries the whole output, capped head and tail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from baton.store.protocol import WorkerLink
from baton.store.records import LogTail
from baton.worker.capture import STREAMS
from baton.worker.runner import Running

BATCH_BYTES = 256 * 1024  # output sent in one call, at most (all attempts together)
MIN_SHARE_BYTES = 4096  # each stream's share of a call, at least
# Bytes that are not UTF-8 are decoded one character each (surrogateescape), then shown as U+FFFD.
_INVALID = {code: "\ufffd" for code in range(0xDC80, 0xDD00)}

Key = tuple[int, int, str]  # (task_id, attempt, stream)


@dataclass
class Followed:
    """How far one stream of one attempt has been sent."""

    read: int = 0  # bytes of the capture file the store holds
    sent: int = 0  # characters the store holds (its live log's length)
    done: bool = False  # no longer followed: not this worker's attempt any more, or its log is full


@dataclass(frozen=True)
class Chunk:
    key: Key
    decoded: str  # the bytes read, one character per invalid byte (encodes back to them exactly)
    size: int  # how many bytes were read


class Tailer:
    def __init__(self, link: WorkerLink, worker_id: str, max_log_bytes: int, batch_bytes: int = BATCH_BYTES) -> None:
        self.link = link
        self.worker_id = worker_id
        self.max_log_bytes = max_log_bytes
        self.batch_bytes = batch_bytes
        self.followed: dict[Key, Followed] = {}

    def step(self, running: Iterable[Running]) -> int:
        """One round: send what the running attempts wrote since the last one (one call, none when
        nothing new was written). Returns how many tails were sent. The link's errors reach
        the caller; the next round sends the same output again."""
        attempts = {(r.claim.task_id, r.claim.attempt): r for r in running}
        self.followed = {k: f for k, f in self.followed.items() if k[:2] in attempts}
        keys = [(*pair, stream) for pair in sorted(attempts) for stream in STREAMS]
        open_keys = [k for k in keys if not self.followed.setdefault(k, Followed()).done]
        share = max(MIN_SHARE_BYTES, self.batch_bytes // max(1, len(open_keys)))
        chunks: list[Chunk] = []
        left = self.batch_bytes
        for key in open_keys:
            if left <= 0:
                break
            chunk = self._read(attempts[key[:2]], key, min(share, left))
            if chunk is not None:
                chunks.append(chunk)
                left -= chunk.size
        if not chunks:
            return 0
        tails = [LogTail(*c.key, self.followed[c.key].sent, c.decoded.translate(_INVALID)) for c in chunks]
        for chunk, held in zip(chunks, self.link.append_logs(self.worker_id, tails), strict=True):
            self._advance(chunk, held)
        return len(tails)

    def _read(self, running: Running, key: Key, limit: int) -> Chunk | None:
        """What the attempt wrote to the stream after what the store holds, in whole characters."""
        followed = self.followed[key]
        limit = min(limit, self.max_log_bytes - followed.read)
        if limit <= 0:
            followed.done = True  # the log is full: the report has the rest
            return None
        raw = running.read_output(key[2], followed.read, limit)
        if raw is None:  # it has finished: its report has the output
            followed.done = True
            return None
        raw = raw[: whole_characters(raw)]
        return Chunk(key, raw.decode("utf-8", "surrogateescape"), len(raw)) if raw else None

    def _advance(self, chunk: Chunk, held: int | None) -> None:
        """Move on by what the store says it holds now."""
        followed = self.followed[chunk.key]
        if held is None or held <= followed.sent:  # not this worker's attempt any more; or its log is full
            followed.done = True
            return
        # Less than was sent: the log is full now. More: the store also holds an earlier chunk
        # whose answer was lost, which this one repeats (the rest of it is skipped next round).
        taken = min(held - followed.sent, len(chunk.decoded))
        followed.read += chunk.size if taken == len(chunk.decoded) else _size(chunk.decoded[:taken])
        followed.sent += taken


def _size(decoded: str) -> int:
    return len(decoded.encode("utf-8", "surrogateescape"))


def whole_characters(data: bytes) -> int:
    """How many leading bytes of ``data`` end on a character boundary: a multi-byte UTF-8
    character cut at the end is left for the next read (an invalid sequence is not waited for)."""
    end = len(data)
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: this character starts here
            needs = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 1
            return end if back >= needs else end - back
    return end
