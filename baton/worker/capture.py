"""Size-capped capture of a task's output: keep the head and the tail, mark the cut. And the
capture files read while a task still writes them, for its live log."""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO

STREAMS = ("stdout", "stderr")


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


class LiveFiles:
    """Descriptors of its own on an attempt's two capture files, to read what the attempt has
    written so far while it goes on writing (``pread``: the writer's file position is not moved)."""

    def __init__(self, stdout_fd: int, stderr_fd: int) -> None:
        self._fds = dict(zip(STREAMS, (stdout_fd, stderr_fd), strict=True))

    @classmethod
    def open(cls, out_path: str, err_path: str) -> LiveFiles:
        """Open (creating them empty if need be) the files at these paths, for reading."""
        flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC
        out = os.open(out_path, flags, 0o600)
        try:
            return cls(out, os.open(err_path, flags, 0o600))
        except OSError:
            os.close(out)
            raise

    @classmethod
    def duplicate(cls, out: BinaryIO, err: BinaryIO) -> LiveFiles:
        """Descriptors on the same files as ``out`` and ``err``, which stay readable after those
        are closed (a temporary file with no name lives as long as a descriptor does)."""
        first = os.dup(out.fileno())
        try:
            return cls(first, os.dup(err.fileno()))
        except OSError:
            os.close(first)
            raise

    def read(self, stream: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes of ``stream`` from byte ``offset`` (fewer: all there is so far)."""
        return os.pread(self._fds[stream], limit, offset)

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
