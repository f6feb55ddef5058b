"""Durations as people read them, for every surface that tells a wait or a run (the UI's
timeline and waiting panel, ``baton status``)."""

from __future__ import annotations

import math


def humanize_s(seconds: float) -> str:
    """A duration as people read it: "850 ms", "12.3 s", "4 min 05 s", "2 h 10 min"; zero parts
    are left out ("2 min"), so the same function labels the axis ticks."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 0:
        return f"-{humanize_s(-seconds)}"
    if seconds == 0:
        return "0 s"
    if round(seconds * 1000) < 1000:
        return f"{round(seconds * 1000)} ms"
    if round(seconds, 1) < 60:
        return f"{round(seconds, 1):g} s"
    if round(seconds) < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
