"""The controller's delivery of webhooks: post each due delivery, signed, and record how it went.

The loop never waits on a receiver. :class:`Deliver` claims at most as many due deliveries as
it has free places (``max_in_flight``), hands each to a thread of its own pool, and at its next
run records the tries that have finished, all in one transaction. A slow receiver holds a
thread, not the controller.

At least once, never silently lost: a claim moves the delivery a lease ahead (longer than a
post can take), so if this controller dies after posting and before recording, the delivery is
claimed again when the lease runs out and posted again, with the same ``Baton-Delivery`` id
and the same body. Receivers deduplicate by that id. What a try reports is recorded only while
it is the delivery's last try (fenced by attempt), so a late answer never overwrites a newer one.

A refused try (anything but 2xx, or no answer) is retried after
:func:`~baton.engine.webhooks.retry_delay_s` (5 s doubling to 10 minutes, jittered), until the
next retry would come later than ``horizon_s`` after the delivery was made: then it is given up
(``expired``). Redirects are not followed (a 3xx is a refusal): a webhook names its real URL.

Secrets go from the store to the HMAC and nowhere else: not into a log line, an exception, an
audit row or the delivery log. Errors name the webhook, never its URL.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    import httpx

from baton.clock import Clock
from baton.engine.webhooks import retry_delay_s, sign
from baton.store.protocol import ControllerStore
from baton.store.records import DeliveryJob, DeliveryResult

log = logging.getLogger("baton.controller")
USER_AGENT = "baton-webhook"
IN_FLIGHT_LOOK_S = 0.05  # while posts are in flight, how soon to look for finished ones
LEASE_MARGIN_S = 10.0
ANSWER_CHARS = 200  # of a refusal's body, kept as its error


class Answer(NamedTuple):
    """What a receiver answered: its status (None: no answer) and, for a refusal, why."""

    status: int | None
    error: str | None

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, kw_only=True)
class Terms:
    """How deliveries are made (from the settings, through the controller's config)."""

    poll_s: float
    connect_timeout_s: float
    read_timeout_s: float
    horizon_s: float
    max_in_flight: int

    @property
    def lease_s(self) -> float:
        """How long a claimed delivery is not claimed again: past the longest a post can take
        (connecting, sending, the answer) and its recording."""
        return 2 * (self.connect_timeout_s + self.read_timeout_s) + self.poll_s + LEASE_MARGIN_S


class Poster(Protocol):
    """The one seam between a delivery and the network (tests put their own in its place)."""

    def post(self, job: DeliveryJob, timestamp: int) -> Answer:
        """Post the job's body, signed at ``timestamp``; never raises for the receiver's sake."""
        ...

    def close(self) -> None: ...


def headers_for(job: DeliveryJob, timestamp: int) -> dict[str, str]:
    """The headers of one try: the delivery's id (the same on every try), its kind, and the
    signature of ``timestamp.body`` (see :mod:`baton.engine.webhooks`)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Baton-Delivery": job.uid,
        "Baton-Kind": job.kind,
        "Baton-Timestamp": str(timestamp),
        "Baton-Signature": sign(job.secret, timestamp, job.body.encode()),
    }


class HttpPoster:
    """Posts through an httpx transport (not a client, which would log each request's URL, and
    a URL may carry a receiver's token): short timeouts, no redirects, at most
    :data:`ANSWER_CHARS` of an answer read (a receiver's body is not ours to hold)."""

    def __init__(self, connect_timeout_s: float, read_timeout_s: float) -> None:
        # httpx is loaded at the first post, not with the controller: most controllers never post
        self._timeout = {"connect": connect_timeout_s, "read": read_timeout_s, "write": read_timeout_s,
                         "pool": read_timeout_s}  # fmt: skip
        self._transport: httpx.HTTPTransport | None = None  # made at the first post: most controllers never post
        self._lock = threading.Lock()

    def _http(self) -> httpx.HTTPTransport:
        import httpx

        with self._lock:
            if self._transport is None:
                self._transport = httpx.HTTPTransport(retries=0)
            return self._transport

    def post(self, job: DeliveryJob, timestamp: int) -> Answer:
        import httpx

        try:
            request = httpx.Request("POST", job.url, content=job.body.encode(), headers=headers_for(job, timestamp),
                                    extensions={"timeout": self._timeout})  # fmt: skip
            response = self._http().handle_request(request)
            try:
                if 200 <= response.status_code < 300:
                    return Answer(response.status_code, None)
                said = _first_chars(response)
                return Answer(response.status_code, f"HTTP {response.status_code}" + (f": {said}" if said else ""))
            finally:
                response.close()
        except httpx.HTTPError as exc:
            return Answer(None, _why(exc, job.url))

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()
            self._transport = None  # a later post opens another


def _first_chars(response: httpx.Response) -> str:
    for chunk in response.iter_bytes():
        return chunk[:ANSWER_CHARS].decode("utf-8", "replace").strip()
    return ""


def _why(exc: BaseException, url: str) -> str:
    """An error's name and message, without the URL (it may carry a token of the receiver's)."""
    return f"{type(exc).__name__}: {exc}".replace(url, "<url>")[: ANSWER_CHARS * 2]


class Deliver:
    """The delivery duty: every ``poll_s``, claim due deliveries for the free places (at most
    ``max_in_flight`` posts at once) and start posting them; while posts are in flight, look
    every :data:`IN_FLIGHT_LOOK_S` for those that finished and record them (without asking the
    store anything in between), and claim again as soon as there is room when the last claim
    filled every place (more may be due). Times given to the store are the controller's clock's
    (``clock.wall()``), so a fake clock drives retries and the horizon. ``rand`` draws the
    retries' jitter."""

    every_round = False

    def __init__(
        self, terms: Terms, clock: Clock, poster: Poster | None = None, rand: Callable[[], float] = random.random
    ) -> None:
        self.terms, self.clock, self.rand = terms, clock, rand
        self.poster = poster or HttpPoster(terms.connect_timeout_s, terms.read_timeout_s)
        self._pool: ThreadPoolExecutor | None = None
        self._flying: dict[Future[tuple[Answer, float]], DeliveryJob] = {}
        self._due = -math.inf
        self._claim_due = -math.inf

    @property
    def in_flight(self) -> int:
        return len(self._flying)

    def next_due(self, now: float) -> float:
        return self._due

    def run(self, store: ControllerStore, now: float) -> int:
        done = self._record(store)
        room = self.terms.max_in_flight - len(self._flying)
        if room > 0 and now >= self._claim_due:
            taken = self._start(store, room)
            self._claim_due = now if taken == room else now + self.terms.poll_s
            done, room = done + taken, room - taken
        look = now + IN_FLIGHT_LOOK_S if self._flying else math.inf
        self._due = min(self._claim_due if room > 0 else math.inf, look)
        return done

    def join(self, timeout_s: float) -> bool:
        """Wait until every post in flight has an answer (then the next run records them);
        False if some still had none after ``timeout_s``."""
        _, waiting = wait(list(self._flying), timeout=timeout_s)
        return not waiting

    def close(self) -> None:
        """Stop: posts in flight are left to end by themselves, unrecorded (their deliveries are
        claimed again when their lease runs out)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._flying.clear()
        self.poster.close()

    def _record(self, store: ControllerStore) -> int:
        finished = [f for f in self._flying if f.done()]
        if not finished:
            return 0
        wall = self.clock.wall()
        results = [self._result(self._flying[f], *f.result(), wall) for f in finished]
        states = store.record_deliveries(results, self.terms.horizon_s)
        for future, result, state in zip(finished, results, states, strict=True):
            _log(self._flying.pop(future), state, result)
        return len(finished)

    def _result(self, job: DeliveryJob, answer: Answer, at: float, wall: float) -> DeliveryResult:
        retry_at = None if answer.accepted else wall + retry_delay_s(job.attempt, self.rand())
        return DeliveryResult(job.id, job.attempt, at, answer.status, answer.error, retry_at)

    def _start(self, store: ControllerStore, room: int) -> int:
        jobs = store.claim_deliveries(self.clock.wall(), room, self.terms.lease_s)
        if jobs and self._pool is None:
            self._pool = ThreadPoolExecutor(self.terms.max_in_flight, thread_name_prefix="baton-deliver")
        for job in jobs:
            assert self._pool is not None
            self._flying[self._pool.submit(self._try, job)] = job
        return len(jobs)

    def _try(self, job: DeliveryJob) -> tuple[Answer, float]:
        """One post, in a pool thread: its answer, and when it came (the controller's clock)."""
        try:
            answer = self.poster.post(job, int(self.clock.wall()))
        except Exception as exc:  # a poster's bug must not lose the delivery: it is a failed try
            log.error("webhook %s: delivery %s could not be posted: %s", job.webhook, job.uid, type(exc).__name__)
            answer = Answer(None, _why(exc, job.url))
        return answer, self.clock.wall()


def _log(job: DeliveryJob, state: str, result: DeliveryResult) -> None:
    """One line per try, naming the webhook (never its URL or secret)."""
    if state == "delivered":
        log.info("webhook %s: delivery %s delivered (attempt %s)", job.webhook, job.uid, job.attempt)
    elif state == "pending":
        log.warning("webhook %s: delivery %s attempt %s failed (%s); retrying", job.webhook, job.uid,
                    job.attempt, result.error)  # fmt: skip
    elif state == "expired":
        log.warning("webhook %s: delivery %s given up after attempt %s (%s)", job.webhook, job.uid, job.attempt,
                    result.error)  # fmt: skip
