"""The bench's delay proxy (``baton.bench.delay``) on real loopback sockets: bytes pass intact both
ways, a round trip takes at least 2R, chunks are in flight together (a pipeline, not a gate), the
window and the connection cap hold, and connections close with either side.

Each test runs one event loop holding the proxy, an upstream and the clients; every socket is
bound to port 0 (the kernel's choice, bound at once), so tests running beside it share nothing.
Times are lower bounds, or upper bounds at a fraction of what a proxy that serialised would take.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import psutil
import pytest

from baton.bench.delay import DelayProxy, Lateness, _shut

PROXY_CODE = {f.__code__ for f in (DelayProxy._accept, DelayProxy._relay, DelayProxy._pump, DelayProxy._deliver, _shut)}
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The upstream: every byte back, until the end of stream."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def upstream(handler: Handler = echo) -> asyncio.Server:
    return await asyncio.start_server(handler, "127.0.0.1", 0)


def port_of(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


async def through(proxy_port: int, body: bytes) -> bytes:
    """Send ``body`` through the proxy while reading the echo; return what came back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)

    async def send() -> None:
        writer.write(body)
        await writer.drain()

    sending = asyncio.create_task(send())
    got = await reader.readexactly(len(body))
    await sending
    writer.close()
    await writer.wait_closed()
    return got


async def rest(reader: asyncio.StreamReader) -> bytes:
    """What is left to read up to the end of stream; a reset counts as an end."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


def strays() -> set[asyncio.Task[object]]:
    """The proxy's tasks still in the loop."""
    return {t for t in asyncio.all_tasks() if getattr(t.get_coro(), "cr_code", None) in PROXY_CODE}


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


def test_bytes_pass_intact_both_ways_and_a_large_body_is_held_within_the_window() -> None:
    body = os.urandom(8 << 20)  # 8 MiB: many chunks, and 32 windows of 256 KiB

    async def test() -> None:
        server = await upstream()
        proxy = DelayProxy("127.0.0.1", port_of(server), 0.001, window_bytes=256 << 10)
        port = await proxy.start()
        assert await through(port, b"hello") == b"hello"
        assert await through(port, body) == body
        await proxy.close()
        assert proxy.peak_held_bytes > 0
        assert proxy.peak_held_bytes <= (256 << 10) + 65536  # the window, and the one read past it
        server.close()

    run(test)


def test_a_round_trip_takes_at_least_twice_the_delay() -> None:
    delay_s = 0.05

    async def test() -> None:
        server = await upstream()
        proxy = DelayProxy("127.0.0.1", port_of(server), delay_s)
        port = await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(3):
            began = time.monotonic()
            writer.write(b"ping %d" % i)
            assert await reader.readexactly(6) == b"ping %d" % i
            assert time.monotonic() - began >= 2 * delay_s - 0.001
        writer.close()
        await proxy.close()
        assert proxy.lateness.chunks >= 6
        server.close()

    run(test)


def test_twenty_concurrent_connections_wait_the_delay_together() -> None:
    """A proxy that held one chunk at a time would take 20 x 2R = 2 s; it takes about 2R."""
    delay_s = 0.05

    async def test() -> None:
        server = await upstream()
        proxy = DelayProxy("127.0.0.1", port_of(server), delay_s)
        port = await proxy.start()
        began = time.monotonic()
        got = await asyncio.gather(*(through(port, b"request %d" % i) for i in range(20)))
        took = time.monotonic() - began
        assert got == [b"request %d" % i for i in range(20)]
        assert 2 * delay_s - 0.001 <= took < 10 * delay_s
        await proxy.close()
        server.close()

    run(test)


def test_a_body_of_many_chunks_streams_at_the_window_per_delay_not_a_chunk_per_delay() -> None:
    """4 MiB is at least 64 reads of 64 KiB each way: held one by one that is 64 R = 3.2 s at
    R = 50 ms; pipelined under a 1 MiB window it is about 4 R + 2R = 0.3 s."""
    delay_s = 0.05
    body = os.urandom(4 << 20)

    async def test() -> None:
        server = await upstream()
        proxy = DelayProxy("127.0.0.1", port_of(server), delay_s)
        port = await proxy.start()
        began = time.monotonic()
        assert await through(port, body) == body
        assert time.monotonic() - began < 32 * delay_s
        await proxy.close()
        server.close()

    run(test)


def test_connections_beyond_the_cap_are_refused_and_the_others_go_on() -> None:
    async def test() -> None:
        server = await upstream()
        proxy = DelayProxy("127.0.0.1", port_of(server), 0.001, max_connections=3)
        port = await proxy.start()
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        for reader, writer in held:  # each is relayed, so the proxy counts it
            writer.write(b"in")
            assert await reader.readexactly(2) == b"in"
        assert proxy.connections == 3
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await rest(reader) == b""  # closed at once, or reset
        writer.close()
        assert proxy.refused == 1 and proxy.accepted == 3
        for reader, writer in held:
            writer.write(b"still")
            assert await reader.readexactly(5) == b"still"
            writer.close()
        await proxy.close()
        server.close()

    run(test)


def test_the_upstream_closing_delivers_its_last_bytes_then_closes_the_client() -> None:
    async def answer_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)
        writer.write(b"answer")
        writer.close()

    async def test() -> None:
        server = await upstream(answer_and_close)
        proxy = DelayProxy("127.0.0.1", port_of(server), 0.02)
        port = await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ask")
        assert await reader.read() == b"answer"  # the answer, then the end of stream
        writer.close()
        await proxy.close()
        server.close()

    run(test)


def test_the_client_closing_closes_the_upstream_and_ends_the_connections_tasks() -> None:
    async def test() -> None:
        ended = asyncio.Event()

        async def wait_for_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert await reader.read() == b"bye"  # everything sent, then the end of stream
            writer.close()
            ended.set()

        server = await upstream(wait_for_end)
        proxy = DelayProxy("127.0.0.1", port_of(server), 0.02)
        port = await proxy.start()
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"bye")
        writer.close()
        await ended.wait()
        await proxy.close()
        assert proxy.connections == 0
        assert strays() == set()
        server.close()

    run(test)


def test_closing_the_proxy_ends_open_connections_and_all_their_tasks() -> None:
    async def test() -> None:
        server = await upstream()
        proxy = DelayProxy("127.0.0.1", port_of(server), 0.02)
        port = await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        writer.write(b"in flight")  # read by the proxy, not yet due
        await proxy.close()
        assert proxy.connections == 0
        assert strays() == set()
        assert await rest(reader) in (b"", b"in flight")
        writer.close()
        server.close()

    run(test)


def test_an_unreachable_upstream_closes_the_client() -> None:
    async def test() -> None:
        server = await upstream()
        gone = port_of(server)
        server.close()
        await server.wait_closed()
        proxy = DelayProxy("127.0.0.1", gone, 0.001)
        port = await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await rest(reader) == b""  # closed at once, or reset
        writer.close()
        await proxy.close()
        assert proxy.accepted == 1 and proxy.connections == 0

    run(test)


def test_lateness_quantiles_come_from_a_bounded_histogram() -> None:
    lateness = Lateness()
    assert lateness.quantile_ms(0.5) is None
    for late_ms in [0.01] * 98 + [3.0, 500.0]:
        lateness.add(late_ms / 1000)
    assert lateness.quantile_ms(0.5) == 0.05  # the first bucket's upper edge
    assert lateness.quantile_ms(0.99) == 3.05
    assert lateness.quantile_ms(1.0) == 100.05  # the overflow bucket
    assert lateness.figures()["chunks"] == 100


def test_the_proxy_process_prints_its_port_relays_and_stops_on_sigterm() -> None:
    """``python -m baton.bench.delay``: as ``baton bench --remote --rtt-ms`` runs it."""

    async def serve_one(ready: asyncio.Future[int]) -> None:
        server = await upstream()
        ready.set_result(port_of(server))
        async with server:
            await server.serve_forever()

    loop = asyncio.new_event_loop()
    ready: asyncio.Future[int] = loop.create_future()
    serving = loop.create_task(serve_one(ready))
    upstream_port = loop.run_until_complete(ready)
    argv = [sys.executable, "-m", "baton.bench.delay", "--listen", "127.0.0.1:0", "--upstream",
            f"127.0.0.1:{upstream_port}", "--delay-ms", "5"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = json.loads(proc.stdout.readline())["port"]
        assert loop.run_until_complete(through(port, b"through a process")) == b"through a process"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        serving.cancel()
        loop.run_until_complete(asyncio.gather(serving, return_exceptions=True))
        loop.close()
    assert proc.returncode == 0, err
    figures = json.loads(out)
    assert figures["accepted"] == 1 and figures["refused"] == 0 and figures["chunks"] >= 2


def test_the_proxy_process_stops_when_its_parent_dies() -> None:
    """A bench killed without stopping it must not leave the proxy running: here its parent is a
    process that starts it and exits at once."""
    start = (
        "import subprocess, sys, os; argv = ['--upstream', '127.0.0.1:1', '--delay-ms', '1', '--parent-pid', "
        "str(os.getpid())]; print(subprocess.Popen([sys.executable, '-m', 'baton.bench.delay', *argv]).pid)"
    )
    parent = subprocess.Popen([sys.executable, "-c", start], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    with parent.stdout:
        # the proxy's pid (from its parent, which then exits) and its port, in either order
        first, second = (json.loads(parent.stdout.readline()) for _ in range(2))
        pid, listening = (first, second) if isinstance(first, int) else (second, first)
        proxy = psutil.Process(pid)
        assert listening["port"] > 0
        parent.wait(timeout=30)
        try:
            proxy.wait(timeout=30)  # (not our child: its exit code is not ours to read)
        finally:
            with contextlib.suppress(psutil.Error):
                proxy.kill()
        stopped = json.loads(parent.stdout.read())  # printed after a clean stop
    assert stopped["accepted"] == 0


@pytest.mark.parametrize("argv", [["--delay-ms", "5"], ["--upstream", "nohost", "--delay-ms", "5"],
                                  ["--upstream", "127.0.0.1:1", "--delay-ms", "1001"]])  # fmt: skip
def test_the_proxy_process_refuses_bad_arguments(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "baton.bench.delay", *argv], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip
    assert done.returncode == 2 and "error" in done.stderr
