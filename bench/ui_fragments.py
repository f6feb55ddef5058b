"""What each of the event page's requests costs the server, in CPU milliseconds, on a large event.

    python bench/ui_fragments.py                       # 60,002 tasks (P = 10,000), a third run
    python bench/ui_fragments.py --partitions 1000 --requests 200

Seeds one SQLite store with the year-end shape at ``--partitions`` departments (6P + 2 tasks),
runs a third of its tasks to their end as a worker would, starts a ``baton server`` over it and
logs in to the UI with a viewer token. Then, for each of the page's requests (the whole page,
each fragment, the live stream's look, and ``/healthz`` as the floor of one HTTP request), it
makes ``--requests`` sequential requests from this process and divides the server process's CPU
time (user + system, psutil) by their number: first fetches (200) and, where the page would send
an ETag, fetches that send it back (answered 304 where nothing shown changed: ``codes``).
The event does not change while measured. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ui"))

from serving import Served, mint
from test_budgets import run_some, year_end

from baton.access import Role
from baton.backends import open_backend
from baton.controller import Controller
from baton.params import validate_params


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
    from baton.ui.live import LOOK_S

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50, help="requests per figure")
    parser.add_argument("--looks", type=int, default=8, help="stream looks to average over")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baton-ui-fragments-") as name:
        folder = Path(name)
        store = open_backend(f"sqlite:///{folder / 'baton.db'}")
        store.migrate()
        record = store.register_graph(year_end(args.partitions).build())
        event, _ = store.submit(record.id, validate_params(store.graph_of(record.id), {}))
        Controller(store).expand()
        from baton.records import WorkerInfo

        store.register_worker(WorkerInfo("budget", "budget-box", "localhost", 1, {"slots": 500}))
        run_some(store, 2 * args.partitions)
        token = mint(store, Role.VIEWER)
        server = Served(store.url, folder).start()
        try:
            assert server.proc is not None
            pid = server.proc.pid
            with httpx.Client(base_url=server.url, timeout=60) as http:
                login = http.post("/ui/login", data={"token": token, "next": "/ui/events"})
                assert login.status_code == 303 and http.cookies, login.text
                base = f"/ui/events/{event.id}"
                out: dict[str, object] = {"tasks": store.event(event.id).tasks_total}
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
