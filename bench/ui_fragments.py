"""What each of the event page's requests costs the server, in CPU milliseconds, on a large event.

    python bench/ui_fragments.py                       # 60,002 tasks (P = 10,000), a third run
    python bench/ui_fragments.py --partitions 1000 --requests 200
    createdb -h 127.0.0.1 -U postgres ui_fragments
    python bench/ui_fragments.py --db postgresql://postgres@127.0.0.1:5432/ui_fragments
    dropdb -h 127.0.0.1 -U postgres ui_fragments

Seeds one store (a fresh SQLite file, or ``--db``: an empty database) with the year-end shape at
``--partitions`` departments (6P + 2 tasks) and runs a third of its tasks to their end as a
worker would. Then two tables:

- ``computed``: what each shared fragment costs to compute once, for one version of the event
  (what the first page to ask pays; :mod:`baton.server.ui.views` shares it with every other page), in
  this process over the same store: the look, header, graph, waiting panel, timeline and the
  partition table's first page, median ms of ``--computes``;
- ``requests``: a ``baton server`` over the store, logged in to with a viewer token. For each of
  the page's requests (the whole page, each fragment, and ``/healthz`` as the floor of one HTTP
  request) it makes ``--requests`` sequential requests and divides the server process's CPU time
  (user + system, psutil) by their number: plain fetches and fetches sending the ETag back (304
  when unchanged: ``codes``). The event does not change meanwhile, so these are the costs a page
  pays once the fragment is shared. Then ``live look``: one stream held open while nothing
  changes, less the server's CPU with no stream for as long. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ui"))

from serving import Served, mint
from test_budgets import run_some, year_end
from uilogin import form_login

from baton.access import Role
from baton.controller.loop import Controller
from baton.graphs.params import validate_params
from baton.server.ui.event_page import SHARED, partitions_page, shared_fragment
from baton.server.ui.views import Views, look_at
from baton.store import open_store
from baton.store.protocol import Store


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def cost(http: httpx.Client, pid: int, url: str, count: int, etag: bool) -> dict[str, object]:
    """Server CPU ms and client wall ms per request, over ``count`` requests (after two warm-ups)."""
    first = http.get(url)
    first.raise_for_status()
    headers = {"If-None-Match": first.headers["etag"]} if etag and "etag" in first.headers else {}
    http.get(url, headers=headers)
    before, started, codes = cpu_s(pid), time.perf_counter(), Counter[int]()
    for _ in range(count):
        codes[http.get(url, headers=headers).status_code] += 1
    wall = time.perf_counter() - started
    return {"server_cpu_ms": round(1000 * (cpu_s(pid) - before) / count, 2),
            "wall_ms": round(1000 * wall / count, 2), "bytes": len(first.content), "codes": dict(codes)}  # fmt: skip


def stream_look(http: httpx.Client, pid: int, url: str, count: int) -> dict[str, float]:
    """The live stream's cost per look: one stream held open for ``count`` looks' worth of time
    while nothing changes (each look reads the event's version), less what the server spends as
    long with no stream at all (its change watch and metrics)."""
    from baton.server.ui.live import LOOK_S

    before = cpu_s(pid)
    time.sleep(count * LOOK_S)
    idle_ms = 1000 * (cpu_s(pid) - before) / count
    before = cpu_s(pid)
    started = time.monotonic()
    with http.stream("GET", url, timeout=None) as answer:
        for _ in answer.iter_lines():
            if time.monotonic() - started > count * LOOK_S:
                break
    looks = (time.monotonic() - started) / LOOK_S
    return {"server_cpu_ms_per_look": round(1000 * (cpu_s(pid) - before) / looks - idle_ms, 2),
            "idle_server_cpu_ms_per_look_s": round(idle_ms, 2)}  # fmt: skip


def computed(store: Store, event_id: int, count: int) -> dict[str, float]:
    """Median ms to compute each shared fragment once (a fresh :class:`Views` each time)."""

    def median_ms(work: Callable[[], object]) -> float:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            work()
            times.append(1000 * (time.perf_counter() - started))
        return round(statistics.median(times), 2)

    look = look_at(store, event_id)
    out = {"look": median_ms(lambda: look_at(store, event_id))}
    for name in SHARED:
        out[name] = median_ms(lambda name=name: shared_fragment(store, Views(), look, name, True))  # type: ignore[misc]
    out["partitions"] = median_ms(lambda: partitions_page(store, Views(), look, None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--db", help="an empty database's URL (default: a fresh SQLite file)")
    parser.add_argument("--requests", type=int, default=50, help="requests per figure")
    parser.add_argument("--looks", type=int, default=8, help="stream looks to average over")
    parser.add_argument("--computes", type=int, default=9, help="computations per figure in 'computed'")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baton-ui-fragments-") as name:
        folder = Path(name)
        store = open_store(args.db or f"sqlite:///{folder / 'baton.db'}")
        store.migrate()
        record = store.register_graph(year_end(args.partitions).build())
        event, _ = store.submit(record.id, validate_params(store.graph_of(record.id), {}))
        Controller(store).expand()
        from baton.store.records import WorkerInfo

        store.register_worker(WorkerInfo("budget", "budget-box", "localhost", 1, {"slots": 500}))
        run_some(store, 2 * args.partitions)
        out: dict[str, object] = {"db": store.url.split(":")[0], "tasks": store.event(event.id).tasks_total}
        out["computed_ms"] = computed(store, event.id, args.computes)
        token = mint(store, Role.VIEWER)
        server = Served(store.url, folder).start()
        try:
            assert server.proc is not None
            pid = server.proc.pid
            with httpx.Client(base_url=server.url, timeout=60) as http:
                login = form_login(http, token)
                assert login.status_code == 303 and http.cookies, login.text
                base = f"/ui/events/{event.id}"
                out["/healthz"] = cost(http, pid, "/healthz", args.requests, etag=False)
                for name in ("", "/header", "/graph", "/waiting", "/timeline", "/partitions"):
                    out[base.replace(str(event.id), "{id}") + name] = {
                        "200": cost(http, pid, base + name, args.requests, etag=False),
                        "304": cost(http, pid, base + name, args.requests, etag=True),
                    }
                out["live look"] = stream_look(http, pid, base + "/live", args.looks)
        finally:
            server.stop()
            store.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
