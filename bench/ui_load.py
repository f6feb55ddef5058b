"""What open web-UI pages cost: the server's CPU per open event page, and the bench's throughput with pages open.

    python bench/ui_load.py --part page                      # 3 repeats of 60 s windows, 0/1/10 pages
    python bench/ui_load.py --part bench --runs 8            # 8 bench runs with 10 pages, 8 without
    python bench/ui_load.py --part bench --runs 8 --mimic    # the same, pages without a browser
    createdb -h 127.0.0.1 -U postgres ui_load
    python bench/ui_load.py --db postgresql://postgres@127.0.0.1:5432/ui_load
    dropdb -h 127.0.0.1 -U postgres ui_load

Pages are real ones: headless Debian ``chromium`` driven by Playwright, each page in a browser
context of its own (its own session), logged in with a viewer token through
``/ui/login?next=…#token=…`` as ``baton dev``'s link does, then left open on an event page, whose
script keeps its live stream open and fetches the fragments the stream names.

``--part page`` (the budget "one open page costs ≤ 1 % of a core"): a ``baton server``, a
``baton controller`` and ``--workers`` workers run over one store; each repeat submits one event of
the year-end shape whose tasks sleep ``--sleep-s`` (``bench/noop.py:sleep``), sized so that it is
still running when the repeat's last window ends, and cancels it afterwards. The store wakes the
server's change count (which the pages' streams wait on) only when a transaction leaves work it did
not claim itself; in the year-end shape each report claims what it releases, so by default
(``--shape fan_out``) ``dept_report[p]`` follows ``process[p]`` beside ``summarize[p]``: each
``process[p]`` releases two tasks and the pages hear of changes every second, their busiest. While it runs, the
server process's CPU time (user + system, psutil) is measured over a window of ``--seconds`` with
0, 1 and 10 pages open (``--pages``); the windows' order turns from one repeat to the next, so that
each count takes each place once in three repeats. Pages are opened (and their first load done)
``--settle-s`` before their window and closed after it. Reported per window: the server's CPU in %
of a core, the browsers' (every chromium process, and Playwright's driver apart), the tasks the
event finished, and the server's own count of the pages' requests (``/metrics``) by fragment and
status class; then medians and the median extra server CPU per page.

``--part bench`` (the budget "ten open pages slow ``baton bench --partitions 1000`` by ≤ 5 %"): a
``baton server`` over the bench's database (``--db``, or a fresh SQLite file), ``--bench-pages``
browser contexts logged in beforehand and parked on ``about:blank``. Each run starts
``baton bench --partitions P --workers 2 --slots 4 --json --db URL``, polls the store every 10 ms
for the event it submits and, in the runs with pages, sends every page to that event at once.
Runs with and without pages alternate (ABBA…), ``--runs`` each, after ``--warmup`` untimed runs;
the store is polled the same way in both. Reported per run: the bench's figures, how long after
the event's submission the pages had loaded, and the CPU the server, the browsers, the bench's
processes and the whole machine used from the event's appearance to its end. The browsers share
the machine's cores with the bench, so the slowdown includes their own CPU (a real browser runs
on another machine): the browsers' CPU is reported beside it so that it can be weighed, and with
``--mimic`` the pages are played by HTTP clients in this script that make baton.js's requests
(:class:`Mimic`), which leaves the browsers out. At P = 1,000 (the default) the makespan is 1 to
2 s on 2 cores and run-to-run noise is ±15 %, hence ``--runs 8``; ten chromium pages take 1 to 3 s
to load there, mimics 0.1 s. A larger P (``--partitions 5000``) gives the pages a longer run to
watch. (Neither niceness nor a cgroup of the lowest CPU weight kept ten chromium processes on
the same two cores from slowing the bench: chromium resets its processes' niceness and its
zygotes start sessions of their own; measured 2026-12-06, not kept.)

Every figure is the CPU of one process tree; ``other`` is what the rest of the machine used
meanwhile (other people's work: a busy figure means a disturbed window).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine, Iterable
from contextlib import AsyncExitStack, ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from make_noop_graph import graph_yaml
from serving import Served, mint

from baton.access import Role
from baton.engine.states import EventState
from baton.graphs.spec import load_graph_text
from baton.local.workers import stop_processes
from baton.server.ui.session import LOGIN_FIELD
from baton.store import open_store
from baton.store.protocol import Store

CHROMIUM_ARGS = ["--disable-dev-shm-usage", "--disable-gpu"]
FINISHED = {EventState.SUCCEEDED, EventState.FAILED, EventState.CANCELLED}
POLL_S = 0.01  # how often the bench part looks for the bench's event
OPEN_S = 10.0  # allowance for opening the pages of one window, when sizing the event
REQUESTS = re.compile(r'^baton_http_requests_total\{code_class="([^"]*)",route="([^"]*)"\} (\S+)$', re.M)


# --- processes and their CPU -------------------------------------------------------------------


def cpu_s(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) so far of these processes and all their descendants."""
    total = 0.0
    for proc in _trees(pids):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def _trees(pids: Iterable[int]) -> list[psutil.Process]:
    out: list[psutil.Process] = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            out += [root, *root.children(recursive=True)]
        except psutil.Error:
            pass
    return out


def browser_cpu_s(others: Iterable[int]) -> dict[str, float]:
    """CPU seconds so far of this script's descendants outside ``others``' trees: the chromium
    processes, and Playwright's driver (node) apart."""
    skip = {p.pid for p in _trees(others)}
    out = {"chromium": 0.0, "driver": 0.0}
    for proc in psutil.Process().children(recursive=True):
        if proc.pid in skip:
            continue
        try:
            times = proc.cpu_times()
            out["driver" if proc.name().startswith("node") else "chromium"] += times.user + times.system
        except psutil.Error:
            pass
    return out


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


@dataclass
class Meter:
    """CPU used by named process groups, the browsers, this script, everything else and the whole
    machine, between two reads."""

    groups: dict[str, list[int]]
    started: float = 0.0
    before: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        others = [pid for pids in self.groups.values() for pid in pids]
        read = {name: cpu_s(pids) for name, pids in self.groups.items()}
        read.update({f"browser_{k}": v for k, v in browser_cpu_s(others).items()})
        own = psutil.Process().cpu_times()
        read["script"] = own.user + own.system
        machine = machine_busy_s()
        # what else ran on the machine meanwhile (other people's work, the kernel): a busy figure
        # here means the window was disturbed
        return {**read, "other": machine - sum(read.values()), "machine": machine}

    def start(self) -> None:
        self.before, self.started = self._read(), time.monotonic()

    def percent_of_a_core(self) -> tuple[float, dict[str, float]]:
        """Seconds since start, and each group's CPU over them in % of one core."""
        after, elapsed = self._read(), time.monotonic() - self.started
        return elapsed, {k: round(100 * (after[k] - self.before[k]) / elapsed, 2) for k in after}


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def baton(*args: str) -> list[str]:
    return [sys.executable, "-m", "baton", *args]


# --- pages ---------------------------------------------------------------------------------------


def ui_requests(server: Served, token: str) -> Counter[str]:
    """The server's own count of the UI's requests so far (``baton_http_requests_total``), by
    route and status class: a fragment answered 304 counts as ``3xx``."""
    with server.client(token) as http:
        text = http.get("/metrics").text
    out: Counter[str] = Counter()
    for found in REQUESTS.finditer(text):
        code, route, count = found.groups()
        if route.startswith("/ui/events/{event_id}"):
            out[f"{route.removeprefix('/ui/events/{event_id}') or 'page'} {code}"] += int(float(count))
    return out


class Pages:
    """Browser contexts (one session each) with one page each, logged in with a viewer token."""

    def __init__(self, browser: Browser, server: str, token: str) -> None:
        self.browser, self.server, self.token = browser, server, token
        self.contexts: list[BrowserContext] = []
        self.pages: list[Page] = []

    async def _login(self, after: str) -> Page:
        context = await self.browser.new_context()
        self.contexts.append(context)
        page = await context.new_page()
        await page.goto(f"{self.server}/ui/login?next={after}#token={self.token}")
        await page.wait_for_url(f"**{after}")
        self.pages.append(page)
        return page

    async def open(self, count: int, event_id: int) -> None:
        """``count`` new sessions, each logged in straight onto the event's page."""
        await asyncio.gather(*(self._login(f"/ui/events/{event_id}") for _ in range(count)))
        await self.check_visible()

    async def park(self, count: int) -> None:
        """``count`` new sessions logged in, their pages left on ``about:blank`` (no stream)."""
        pages = await asyncio.gather(*(self._login("/ui/events") for _ in range(count)))
        await asyncio.gather(*(page.goto("about:blank") for page in pages))

    async def goto(self, event_id: int | None) -> None:
        """Every page to the event's page (its load included), or back to ``about:blank``."""
        url = f"{self.server}/ui/events/{event_id}" if event_id is not None else "about:blank"
        await asyncio.gather(*(page.goto(url) for page in self.pages))
        if event_id is not None:
            await self.check_visible()

    async def check_visible(self) -> None:
        """A hidden page closes its stream: every page must count as visible."""
        states = await asyncio.gather(*(page.evaluate("document.visibilityState") for page in self.pages))
        if set(states) != {"visible"}:
            raise RuntimeError(f"pages not visible: {states}")

    async def close(self) -> None:
        await asyncio.gather(*(context.close() for context in self.contexts))
        self.contexts, self.pages = [], []


# the fragments a page fetches when its stream names them, with their pauses (baton.js's data-min-s);
# the header, graph and waiting panel come in the stream's messages. A mimic fetches both, as a
# page tall enough to show both would (chromium's 1280x720 shows the timeline, not the table).
FRAGMENT_MIN_S = {"timeline": 5.0, "partitions": 2.0}
SINCE = re.compile(r'data-live="[^"?]*\?since=([0-9a-f]*)"')


class Mimic:
    """One event page as baton.js drives it, without a browser: the page, its live stream (from
    the version the page was drawn at), and each fragment a message names fetched again with its
    ETag (a throttled one once its pause ends). Only its CPU differs from a browser's: it runs in
    this script."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.etags: dict[str, str] = {}
        self.last: dict[str, float] = {}
        self.pending: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def open(self, event_id: int) -> None:
        """Load the page, then follow its stream in the background."""
        page = await self.http.get(f"/ui/events/{event_id}")
        page.raise_for_status()
        found = SINCE.search(page.text)
        self.spawn(self._follow(f"/ui/events/{event_id}", found[1] if found else ""))

    async def _follow(self, base: str, since: str) -> None:
        async with self.http.stream("GET", f"{base}/live?since={since}") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    for name in json.loads(line[5:]).get("changed", []):
                        if name in FRAGMENT_MIN_S:
                            self.refresh(base, name)

    def refresh(self, base: str, name: str) -> None:
        if time.monotonic() - self.last.get(name, 0.0) < FRAGMENT_MIN_S[name]:
            if name not in self.pending:
                self.pending.add(name)
                self.spawn(self._later(base, name))
            return
        self.last[name] = time.monotonic()
        self.spawn(self._fetch(base, name))

    async def _later(self, base: str, name: str) -> None:
        await asyncio.sleep(FRAGMENT_MIN_S[name])
        self.pending.discard(name)
        self.refresh(base, name)

    async def _fetch(self, base: str, name: str) -> None:
        headers = {"X-Baton-Fragment": "1", **({"If-None-Match": self.etags[name]} if name in self.etags else {})}
        answer = await self.http.get(f"{base}/{name}", headers=headers)
        if answer.status_code == 200:
            self.etags[name] = answer.headers["etag"]

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.etags.clear()
        self.last.clear()
        self.pending.clear()


class Mimics:
    """``Pages``' part in the bench, played by :class:`Mimic` s: the server's work without the browsers'."""

    def __init__(self, server: str, token: str) -> None:
        self.server, self.token = server, token
        self.pages: list[Mimic] = []

    async def park(self, count: int) -> None:
        for _ in range(count):
            http = httpx.AsyncClient(base_url=self.server, timeout=60)
            form = await http.get("/ui/login")  # sets the login cookie; the form holds its token
            field = re.search(rf'name="{LOGIN_FIELD}" value="([0-9a-f]+)"', form.text)
            if field is None:
                raise RuntimeError(f"no login form: {form.status_code} {form.text[:200]}")
            login = await http.post("/ui/login", data={"token": self.token, "next": "/ui/events",
                                                       LOGIN_FIELD: field[1]})  # fmt: skip
            if login.status_code != 303:
                raise RuntimeError(f"login refused: {login.status_code} {login.text[:200]}")
            self.pages.append(Mimic(http))

    async def goto(self, event_id: int | None) -> None:
        await asyncio.gather(*(page.stop() for page in self.pages))
        if event_id is not None:
            await asyncio.gather(*(page.open(event_id) for page in self.pages))

    async def close(self) -> None:
        for page in self.pages:
            await page.stop()
            await page.http.aclose()
        self.pages = []


# --- part 1: one open page ---------------------------------------------------------------------


def sleep_graph_text(partitions: int, sleep_s: float, shape: str) -> str:
    """The year-end shape (bench/make_noop_graph.py) with bodies sleeping ``sleep_s``; with
    ``fan_out``, ``dept_report[p]`` follows ``process[p]`` beside ``summarize[p]`` instead of after it."""
    text = graph_yaml(partitions, "noop:sleep").replace("graph: noop_", f"graph: ui_{shape}_")
    if shape == "fan_out":
        text = text.replace('dept_report: {run: "noop:sleep", after: ["summarize"]}',
                            'dept_report: {run: "noop:sleep", after: ["process"]}')  # fmt: skip
    return text.replace("partitions: {param", f"  sleep_s: {{type: number, default: {sleep_s}}}\npartitions: {{param")


def partitions_for(args: argparse.Namespace) -> int:
    """Enough departments that the event outlives a repeat's windows (tasks end at about 80 % of
    slots ÷ sleep on a busy machine; 30 % spare)."""
    needed_s: float = 2 * args.settle_s + len(args.pages) * (args.seconds + args.settle_s + OPEN_S)
    rate: float = 0.8 * args.workers * args.slots / args.sleep_s
    return math.ceil(1.3 * needed_s * rate / 6)


def window_orders(counts: list[int], repeats: int) -> list[list[int]]:
    """The counts' order per repeat, turned by one each time (a Latin square for three)."""
    return [counts[r % len(counts) :] + counts[: r % len(counts)] for r in range(repeats)]


def succeeded(store: Store, event_id: int) -> int:
    return sum(by_state.get("succeeded", 0) for by_state in store.node_counts(event_id).values())


async def start_event(store: Store, graph_id: int, params: dict[str, Any], settle_s: float) -> int:
    """Submit one event and wait until its tasks run and end (then ``settle_s`` more)."""
    event, _ = store.submit(graph_id, params)  # the store fills in no defaults: the API does
    deadline = time.monotonic() + 120
    while succeeded(store, event.id) == 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"event {event.id}: no task ended within 120 s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(settle_s)
    return event.id


@dataclass
class Rig:
    """What a part measures with: its store, the server over it, a viewer token, the browser, the meter."""

    store: Store
    server: Served
    token: str
    browser: Browser
    meter: Meter

    def pages(self) -> Pages:
        return Pages(self.browser, self.server.url, self.token)

    def requests(self) -> Counter[str]:
        return ui_requests(self.server, self.token)


def per_page_per_s(requests: Counter[str], pages: int, elapsed: float) -> dict[str, float]:
    return {k: round(v / pages / elapsed, 3) for k, v in sorted(requests.items())} if pages else {}


async def page_window(rig: Rig, event_id: int, count: int, args: argparse.Namespace) -> dict[str, Any]:
    """One measured window with ``count`` pages open on the running event."""
    pages = rig.pages()
    if count:
        await pages.open(count, event_id)
    await asyncio.sleep(args.settle_s)
    requests, done = rig.requests(), succeeded(rig.store, event_id)
    rig.meter.start()
    await asyncio.sleep(args.seconds)
    elapsed, cpu = rig.meter.percent_of_a_core()
    requests, done = rig.requests() - requests, succeeded(rig.store, event_id) - done
    running = rig.store.event_state(event_id) is EventState.RUNNING
    await pages.close()
    return {"pages": count, "seconds": round(elapsed, 1), "event_running_to_the_end": running,
            "tasks_ended_per_s": round(done / elapsed, 1), "cpu_percent_of_a_core": cpu,
            "requests_per_page_per_s": per_page_per_s(requests, count, elapsed)}  # fmt: skip


def page_summary(windows: list[dict[str, Any]], counts: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count in counts:
        server = [w["cpu_percent_of_a_core"]["server"] for w in windows if w["pages"] == count]
        browsers = [w["cpu_percent_of_a_core"]["browser_chromium"] for w in windows if w["pages"] == count]
        out[f"{count}_pages"] = {"server_cpu_percent": server, "server_median": round(statistics.median(server), 2),
                                 "chromium_cpu_percent": browsers,
                                 "chromium_median": round(statistics.median(browsers), 2)}  # fmt: skip
    if 0 in counts:
        base = out["0_pages"]["server_median"]
        for count in (c for c in counts if c):
            extra = (out[f"{count}_pages"]["server_median"] - base) / count
            out[f"{count}_pages"]["server_extra_per_page"] = round(extra, 2)
    return out


def start_cluster(url: str, args: argparse.Namespace, folder: Path) -> list[subprocess.Popen[bytes]]:
    cluster = [spawn(baton("controller", "--db", url), folder / "controller.log")]
    for i in range(args.workers):
        argv = baton("worker", "--db", url, "--slots", str(args.slots), "--name", f"ui{i}")
        cluster.append(spawn(argv, folder / f"worker-{i}.log"))
    return cluster


async def page_part(args: argparse.Namespace, browser: Browser, folder: Path) -> dict[str, Any]:
    url = args.db or f"sqlite:///{folder / 'page.db'}"
    partitions = args.page_partitions or partitions_for(args)
    graph_text = sleep_graph_text(partitions, args.sleep_s, args.shape)
    params = {"departments": [f"d{i}" for i in range(partitions)], "sleep_s": args.sleep_s}
    windows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        store = open_store(url)
        stack.callback(store.close)
        graph = store.register_graph(load_graph_text(graph_text, source="ui_load"), source="bench/ui_load.py")
        server = Served(url, folder)
        stack.callback(server.stop)
        server.start()
        cluster = start_cluster(url, args, folder)
        stack.callback(stop_processes, cluster, 20)
        assert server.proc is not None
        meter = Meter({"server": [server.proc.pid], "cluster": [p.pid for p in cluster]})
        rig = Rig(store, server, mint(store, Role.VIEWER, "ui_load"), browser, meter)
        for repeat, order in enumerate(window_orders(args.pages, args.repeat)):
            event_id = await start_event(store, graph.id, params, args.settle_s)
            for count in order:
                window = await page_window(rig, event_id, count, args)
                windows.append({"repeat": repeat + 1, "event_id": event_id, **window})
                print(json.dumps(windows[-1]), file=sys.stderr)
            store.cancel(event_id, actor="bench/ui_load.py")
    return {"db": url.split(":")[0], "shape": args.shape, "partitions": partitions, "tasks": 6 * partitions + 2,
            "sleep_s": args.sleep_s, "workers": args.workers, "slots": args.slots,
            "summary": page_summary(windows, args.pages), "windows": windows}  # fmt: skip


# --- part 2: the bench with pages open ---------------------------------------------------------


def newest_event_id(store: Store) -> int:
    found = store.events(limit=1)
    return found[0].id if found else 0


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (a bench's workers and their executors)."""
    for proc in reversed(_trees([pid])):
        with suppress(psutil.Error):
            proc.kill()


async def bench_run(rig: Rig, args: argparse.Namespace, url: str, pages: Pages | Mimics | None,
                    folder: Path) -> dict[str, Any]:  # fmt: skip
    """One ``baton bench`` run; with ``pages``, every page goes to its event as soon as it appears."""
    last, requests = newest_event_id(rig.store), rig.requests()
    argv = baton("bench", "--partitions", str(args.partitions), "--workers", str(args.workers), "--slots",
                 str(args.slots), "--json", "--db", url)  # fmt: skip
    with open(folder / "bench.log", "ab") as log:
        bench = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=log)
    try:
        while (event_id := newest_event_id(rig.store)) == last:
            if bench.returncode is not None:
                raise RuntimeError(f"baton bench exited before submitting; see {folder / 'bench.log'}")
            await asyncio.sleep(POLL_S)
        rig.meter.groups["bench"] = [bench.pid]
        rig.meter.start()
        loaded_at = None
        if pages is not None:
            await pages.goto(event_id)
            loaded_at = time.time()
        while rig.store.event_state(event_id) not in FINISHED:
            await asyncio.sleep(POLL_S)
        elapsed, cpu = rig.meter.percent_of_a_core()
        out, _ = await bench.communicate()
    finally:
        if bench.returncode is None:
            kill_tree(bench.pid)
            await bench.wait()
    if pages is not None:
        await pages.goto(None)
    requests = rig.requests() - requests
    figures = json.loads([line for line in out.decode().splitlines() if line.startswith("{")][-1])
    count, submitted = len(pages.pages) if pages else 0, rig.store.event(event_id).submitted_at
    return {"pages": count, "event_id": event_id, "tasks_per_s": figures["tasks_per_s"],
            "makespan_s": figures["makespan_s"], "state": figures["state"],
            "pages_loaded_after_submit_s": round(loaded_at - submitted, 3) if loaded_at else None,
            "measured_s": round(elapsed, 2), "cpu_percent_of_a_core": cpu,
            "requests_per_page": {k: v / count for k, v in sorted(requests.items())} if count else {},
            "bench": figures}  # fmt: skip


def bench_summary(runs: list[dict[str, Any]], with_pages: int) -> dict[str, Any]:
    rate = {n: [r["tasks_per_s"] for r in runs if r["pages"] == n] for n in (0, with_pages)}
    median = {n: statistics.median(v) for n, v in rate.items()}

    def cpu(n: int, key: str) -> float:
        return round(statistics.median(float(r["cpu_percent_of_a_core"][key]) for r in runs if r["pages"] == n), 1)

    return {"tasks_per_s_without_pages": rate[0], "tasks_per_s_with_pages": rate[with_pages],
            "median_without": median[0], "median_with": median[with_pages],
            "ratio_with_to_without": round(median[with_pages] / median[0], 3),
            "pages_loaded_after_submit_s": [r["pages_loaded_after_submit_s"] for r in runs if r["pages"]],
            "median_cpu_percent_of_a_core": {f"{n}_pages": {k: cpu(n, k) for k in runs[0]["cpu_percent_of_a_core"]}
                                             for n in (0, with_pages)}}  # fmt: skip


async def bench_part(args: argparse.Namespace, browser: Browser, folder: Path) -> dict[str, Any]:
    url = args.db or f"sqlite:///{folder / 'bench.db'}"
    runs: list[dict[str, Any]] = []
    async with AsyncExitStack() as stack:
        store = open_store(url)
        stack.callback(store.close)
        server = Served(url, folder)
        stack.callback(server.stop)
        server.start()
        assert server.proc is not None
        rig = Rig(store, server, mint(store, Role.VIEWER, "ui_load"), browser, Meter({"server": [server.proc.pid]}))
        pages = Mimics(server.url, rig.token) if args.mimic else rig.pages()
        stack.push_async_callback(pages.close)
        await pages.park(args.bench_pages)
        for _ in range(args.warmup):
            await bench_run(rig, args, url, None, folder)
        for i in range(args.runs):
            for with_pages in (False, True) if i % 2 == 0 else (True, False):
                runs.append(await bench_run(rig, args, url, pages if with_pages else None, folder))
                print(json.dumps({k: v for k, v in runs[-1].items() if k != "bench"}), file=sys.stderr)
    return {"db": url.split(":")[0], "partitions": args.partitions, "workers": args.workers, "slots": args.slots,
            "pages_are": "mimics" if args.mimic else "chromium", "summary": bench_summary(runs, args.bench_pages),
            "runs": runs}  # fmt: skip


# --- the command -------------------------------------------------------------------------------


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    folder = Path(tempfile.mkdtemp(prefix="baton-ui-load-"))
    try:
        result = await measure_in(args, executable, folder)
    except BaseException:
        print(f"logs and databases kept in {folder}", file=sys.stderr)
        raise
    shutil.rmtree(folder)
    return result


async def measure_in(args: argparse.Namespace, executable: str, folder: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    async with AsyncExitStack() as stack:
        playwright = await stack.enter_async_context(async_playwright())
        browser = await playwright.chromium.launch(executable_path=executable, headless=True, chromium_sandbox=False,
                                                   args=CHROMIUM_ARGS)  # fmt: skip
        stack.push_async_callback(browser.close)
        if args.part in ("page", "both"):
            (folder / "page").mkdir()
            result["page"] = await page_part(args, browser, folder / "page")
        if args.part in ("bench", "both"):
            (folder / "bench").mkdir()
            result["bench"] = await bench_part(args, browser, folder / "bench")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["page", "bench", "both"], default="both")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file per part)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slots", type=int, default=4)
    page = parser.add_argument_group("page: the server's CPU per open page")
    page.add_argument("--seconds", type=float, default=60, help="length of one measured window")
    page.add_argument("--repeat", type=int, default=3)
    page.add_argument("--pages", type=lambda s: [int(n) for n in s.split(",")], default=[0, 1, 10],
                      help="pages open in each window of a repeat, comma-separated")  # fmt: skip
    page.add_argument("--settle-s", type=float, default=5, help="pause after opening pages, before a window")
    page.add_argument("--sleep-s", type=float, default=0.5, help="each task's body sleeps this long")
    page.add_argument("--shape", choices=["fan_out", "year_end"], default="fan_out",
                      help="fan_out: each process[p] releases two tasks, so the store wakes the server's "
                      "streams every second; year_end: the bench's shape, which wakes them rarely")  # fmt: skip
    page.add_argument("--page-partitions", type=int, help="departments of the event (default: enough to outlast)")
    bench = parser.add_argument_group("bench: baton bench with pages open")
    bench.add_argument("--partitions", type=int, default=1000, help="the bench's P")
    bench.add_argument("--runs", type=int, default=3, help="runs with pages, and as many without")
    bench.add_argument("--bench-pages", type=int, default=10)
    bench.add_argument("--mimic", action="store_true",
                       help="pages played by HTTP clients here (baton.js's requests, no browser)")  # fmt: skip
    bench.add_argument("--warmup", type=int, default=1, help="untimed bench runs first")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args)), indent=2))


if __name__ == "__main__":
    main()
