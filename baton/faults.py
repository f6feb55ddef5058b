"""Crash points for fault tests: ``BATON_FAULT=<point>`` makes a process die at that point.

A crash test needs to die *between* two steps, not at a random moment. Code calls
:func:`point` at the interesting places; with the variable unset it costs one dict lookup.
``BATON_FAULT`` holds comma-separated point names; the process exits with status 99 there,
without cleanup, like ``kill -9``.
"""

from __future__ import annotations

import os

VARIABLE = "BATON_FAULT"
EXIT_CODE = 99


def point(name: str) -> None:
    armed = os.environ.get(VARIABLE)
    if armed and name in armed.split(","):
        os._exit(EXIT_CODE)
