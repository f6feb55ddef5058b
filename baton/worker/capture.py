"""Size-capped capture of a task's output: keep the head and the tail, mark the cut."""

from __future__ import annotations

import os
from typing import BinaryIO


def read_capped(stream: BinaryIO, max_bytes: int) -> str:
    """Read a whole captured stream from the start; if it is over the cap keep the first and
    last halves of the cap (the start tells what ran, the end tells how it ended)."""
    stream.flush()
    size = os.fstat(stream.fileno()).st_size
    stream.seek(0)
    if size <= max_bytes:
        return stream.read().decode("utf-8", errors="replace")
    half = max_bytes // 2
    head = stream.read(half)
    stream.seek(size - half)
    tail = stream.read(half)
    cut = size - 2 * half
    marker = f"\n[... {cut:,} bytes cut: output over the {max_bytes:,}-byte cap ...]\n".encode()
    return (head + marker + tail).decode("utf-8", errors="replace")


def reset(stream: BinaryIO) -> None:
    """Empty a capture file before the next task writes to it."""
    stream.seek(0)
    stream.truncate()
