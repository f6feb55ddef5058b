"""Wall times and instants: the daylight-saving rule, and the raw fires of a cron expression or
an interval, one local date at a time. Pure: the zone database is the only thing read.

A cron expression is read by cronsim on the naive wall clock only (it never sees a zone), and
Baton places the wall times it yields: by :func:`wall_instant` for expressions cronsim runs on
the wall clock (:func:`follows_wall_clock`), and at every real instant the wall clock shows them
for the others (:func:`occurrences`). Doing the placing here, rather than in cronsim's own
zone-aware iteration, gives the same answer forwards and backwards; cronsim 2.9's zone-aware
iteration, stepping an hour at a time, misses e.g. 02:00 of Lord Howe's fall-back day (a
30-minute change) for ``0 */2 * * *``.

Both sources answer the same questions: which local dates have raw fires (``dates``), the fires
of one date (``day``), optionally only from a wall time on (forwards) or up to it (backwards) so
that a walk starting mid-day does not produce the fires before it, their instants (``place``)
and their wall times in wall order (``walls``, for fires moved to another day).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

ONE_DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def wall_instant(wall: datetime, zone: ZoneInfo) -> float:
    """The instant of a naive local wall time: its first occurrence when the clocks go back; the
    first wall minute after it that exists when the clocks go forward (cronsim's rule)."""
    aware = wall.replace(tzinfo=zone, fold=0)
    while imaginary(aware):
        wall += timedelta(minutes=1)
        aware = wall.replace(tzinfo=zone, fold=0)
    return aware.timestamp()


def imaginary(aware: datetime) -> bool:
    """True when this wall time does not occur (it lies in a gap); cronsim's test."""
    return aware != aware.astimezone(UTC).astimezone(aware.tzinfo)


def follows_wall_clock(expr: str) -> bool:
    """cronsim's condition for its daylight-saving rule: five fields, and neither the minute nor
    the hour field starts with ``*``. Other expressions follow real time."""
    fields = expr.split()
    return len(fields) == 5 and not fields[0].startswith("*") and not fields[1].startswith("*")


def to_local(at: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(at, zone)


def offset(at: float, zone: ZoneInfo) -> timedelta:
    return to_local(at, zone).utcoffset() or timedelta()


def day_start(day: date, zone: ZoneInfo) -> float:
    return wall_instant(datetime.combine(day, time()), zone)


def clock_instants(day: date, clock: time, zone: ZoneInfo) -> tuple[float, float]:
    """The first and the last instant a wall time occurs on ``day`` (the same one unless the
    clocks go back; the end of the gap, twice, when the clocks go forward over it)."""
    wall = datetime.combine(day, clock)
    second = wall.replace(tzinfo=zone, fold=1)
    last = second.timestamp() if not imaginary(second) else wall_instant(wall, zone)
    return wall_instant(wall, zone), last


@dataclass(frozen=True)
class CronSource:
    """Raw fires of a cron expression as naive local wall times (cronsim reads only the wall
    clock here); :meth:`place` turns them into instants by the expression's daylight-saving rule."""

    expr: str
    zone: ZoneInfo
    wall_clock: bool

    def _sim(self, day: date, forward: bool, wall: time | None = None) -> CronSim:
        """cronsim from ``wall`` on ``day`` forwards (from midnight when None), or backwards
        from ``wall`` (from the day's end when None)."""
        if forward:
            return CronSim(self.expr, datetime.combine(day, wall or time()) - SECOND)
        edge = datetime.combine(day, wall) + SECOND if wall else datetime.combine(day + ONE_DAY, time())
        return CronSim(self.expr, edge, reverse=True)

    def dates(self, first: date, last: date, forward: bool) -> Iterator[date]:
        """The local dates with raw fires, from ``first`` to ``last`` (inclusive) in direction."""
        day = first
        while day <= last if forward else day >= last:
            found = next(self._sim(day, forward), None)
            if found is None or (found.date() > last if forward else found.date() < last):
                return
            yield found.date()
            day = found.date() + (ONE_DAY if forward else -ONE_DAY)

    def day(self, day: date, forward: bool, wall: time | None) -> Iterator[datetime]:
        """The raw fires of one local date in direction, from ``wall`` on when given."""
        return itertools.takewhile(lambda dt: dt.date() == day, self._sim(day, forward, wall))

    def place(self, walls: Iterator[datetime], forward: bool) -> Iterator[float]:
        """The instants of a day's wall times, in direction."""
        if self.wall_clock:
            return (wall_instant(w, self.zone) for w in walls)
        return occurrences(walls, self.zone, forward)

    def walls(self, raw: Iterator[datetime], forward: bool) -> Iterator[datetime]:
        """A day's wall times in wall order: as they come."""
        return raw


def occurrences(walls: Iterator[datetime], zone: ZoneInfo, forward: bool) -> Iterator[float]:
    """Every real instant at which the clock reads one of ``walls`` (ascending wall times when
    ``forward``, else descending), in the same direction: none for a wall time in a gap, two for
    one in a repeated hour. The repeated hour's other pass is held back until the walk has left
    it, since it lies after (before, backwards) every first-pass instant."""
    held: list[float] = []
    for wall in walls:
        first = wall.replace(tzinfo=zone, fold=0).timestamp()
        second = wall.replace(tzinfo=zone, fold=1).timestamp()
        if second < first:  # PEP 495: in a gap, fold=1 reads the wall time with the later offset
            continue
        if second == first:
            yield from held
            held.clear()
            yield first
        else:
            yield first if forward else second
            held.append(second if forward else first)
    yield from held


@dataclass(frozen=True)
class IntervalSource:
    """Raw fires every ``every_s`` seconds from ``anchor``, as aware datetimes in the zone."""

    every_s: int
    anchor: float
    zone: ZoneInfo

    def _index(self, at: float) -> int:
        """The index of the first fire at or after ``at`` (never below 0: the anchor is the first)."""
        return max(0, math.ceil((at - self.anchor) / self.every_s))

    def dates(self, first: date, last: date, forward: bool) -> Iterator[date]:
        day = first
        while day <= last if forward else day >= last:
            if forward:
                index = self._index(day_start(day, self.zone))
            else:
                index = self._index(day_start(day + ONE_DAY, self.zone)) - 1
            if index < 0:
                return
            found = to_local(self.anchor + index * self.every_s, self.zone).date()
            if found > last if forward else found < last:
                return
            yield found
            day = found + (ONE_DAY if forward else -ONE_DAY)

    def place(self, raw: Iterator[datetime], forward: bool) -> Iterator[float]:
        return (dt.timestamp() for dt in raw)

    def walls(self, raw: Iterator[datetime], forward: bool) -> Iterator[datetime]:
        return wall_order(raw, self.zone, forward)

    def day(self, day: date, forward: bool, wall: time | None) -> Iterator[datetime]:
        low = self._index(day_start(day, self.zone))
        high = self._index(day_start(day + ONE_DAY, self.zone)) - 1
        if wall is not None and forward:
            low = max(low, self._index(clock_instants(day, wall, self.zone)[0]))
        elif wall is not None:
            high = min(high, math.floor((clock_instants(day, wall, self.zone)[1] - self.anchor) / self.every_s))
        indexes = range(low, high + 1) if forward else range(high, low - 1, -1)
        return (to_local(self.anchor + i * self.every_s, self.zone) for i in indexes)


def wall_order(raw: Iterator[datetime], zone: ZoneInfo, forward: bool) -> Iterator[datetime]:
    """An interval's fires of one day (aware, in real-time order) as naive wall times in wall
    order: the wall times of a repeated hour come in two passes, so they are gathered (two hours
    at most) and sorted before the walk goes on. A cron's wall times are in wall order already."""
    held: list[datetime] = []
    for fire in raw:
        wall = fire.replace(tzinfo=None, fold=0)
        if wall.replace(tzinfo=zone).timestamp() != wall.replace(tzinfo=zone, fold=1).timestamp():
            held.append(wall)
            continue
        yield from sorted(held, reverse=not forward)
        held.clear()
        yield wall
    yield from sorted(held, reverse=not forward)


def wall_bound(zone: ZoneInfo, day: date, edge: float, forward: bool) -> time | None:
    """On the day of ``edge``, the wall time from which (forwards) or up to which (backwards) the
    day's fires can lie beyond ``edge``; None on other days. It is moved by as much as the clocks
    go back on that day beyond the edge: in a repeated hour, a wall time before the edge's may
    occur after it (forwards), and one after it may occur before it (backwards)."""
    local = to_local(edge, zone)
    if local.date() != day:
        return None
    if forward:
        went_back = offset(edge, zone) - offset(day_start(day + ONE_DAY, zone) - 1, zone)
        earlier = local.replace(tzinfo=None) - max(went_back, timedelta())
        return earlier.time().replace(fold=0) if earlier.date() == day else None
    went_back = offset(day_start(day, zone), zone) - offset(edge, zone)
    later = local.replace(tzinfo=None) + max(went_back, timedelta())
    return later.time().replace(fold=0) if later.date() == day else None


Source = CronSource | IntervalSource
