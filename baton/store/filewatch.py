"""A descriptor that becomes readable when a file is written: inotify on Linux, else nothing.

SQLite has no way to push "something committed" to other processes, but every commit writes
the write-ahead log. Watching that file lets idle workers and controllers sleep in ``select``
until a commit happens, instead of waking a hundred times a second to look. Where inotify is
missing (not Linux) :func:`watch` returns None and callers poll.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys

IN_MODIFY = 0x00000002


class FileWatch:
    """Readable (``fd``) after the watched file was modified; :meth:`drain` re-arms it."""

    def __init__(self, fd: int, path: str, libc: ctypes.CDLL) -> None:
        self.fd = fd
        self.path = path
        self._libc = libc

    def drain(self) -> None:
        """Consume pending events, and watch the path again: if the file was deleted and made
        anew (SQLite removes the log when its last connection closes) the old watch is dead."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self.fd, 65536):
                pass
        self._libc.inotify_add_watch(self.fd, os.fsencode(self.path), IN_MODIFY)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def watch(path: str) -> FileWatch | None:
    """Watch ``path`` for writes; None where that is not possible (then poll)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return None
    if libc.inotify_add_watch(fd, os.fsencode(path), IN_MODIFY) < 0:
        os.close(fd)
        return None
    return FileWatch(fd, path, libc)
