"""A delay proxy for ``baton bench --remote --rtt-ms R``: a TCP relay on loopback that holds every
chunk of bytes R ms in each direction, so a request's round trip through it grows by 2R.

For each accepted connection it opens one to the upstream (the ``baton server``) and copies bytes
both ways. Each direction is a pipeline, not a gate: a chunk is stamped when it is read and written
on at that time + R by a task of its own, while the reader goes on reading, so any number of chunks
are in flight at once and throughput is not capped by the delay (only by the window below, as a
real link's is by TCP's window: window ÷ R per direction).

Bounded: at most ``max_connections`` at once (one beyond is accepted and reset at once); at most
``window_bytes`` held per direction (past it, reading stops until the writer has caught up); when
either side's end of stream has been delivered, or either side fails, both connections are closed
and the connection's tasks ended. Not modelled: the TCP handshake (a real link adds a round trip
before the first request; the workers keep their connections open), bandwidth and loss.

It runs as a process of its own (``python -m baton.bench.delay``), so its CPU is neither counted
against the bench process (which runs the controller) nor competing with it for the GIL. On
asyncio's own loop, not uvloop: uvloop took about half the CPU per round trip, but its clock and
timers have millisecond steps, so a chunk could leave before it is due; asyncio's timers wait until
the due time and at most about a millisecond more (epoll's timeouts are whole milliseconds), which
the proxy reports as lateness. It prints
one JSON line when it listens (``{"port": …}``) and one when it has stopped (:meth:`Lateness.figures`
and the connection counts), on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

MAX_CONNECTIONS = 256
# Bytes held per direction before reading stops. 256 connections, 2 directions and 1 MiB bound the
# memory at 512 MiB; at R = 5 ms a direction still carries 200 MiB/s, far above a claim's needs.
WINDOW_BYTES = 1 << 20
READ_BYTES = 64 * 1024
CLOSE_S = 5.0  # a peer that will not take the last bytes is reset after this
PARENT_POLL_S = 1.0
BUCKET_MS = 0.05  # lateness histogram: 0.05 ms buckets up to 100 ms, then one overflow bucket
BUCKETS = 2000


class Lateness:
    """How long after its due time each chunk was written on (the event loop's timers and the
    machine's load), as a fixed histogram: bounded, whatever the run's length."""

    def __init__(self) -> None:
        self.counts = [0] * (BUCKETS + 1)
        self.chunks = 0

    def add(self, late_s: float) -> None:
        self.counts[min(max(int(late_s * 1000 / BUCKET_MS), 0), BUCKETS)] += 1
        self.chunks += 1

    def quantile_ms(self, q: float) -> float | None:
        """The upper edge of the bucket holding the q-quantile (None with no chunks)."""
        if not self.chunks:
            return None
        rank, seen = q * (self.chunks - 1), 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen > rank:
                return round((i + 1) * BUCKET_MS, 2)
        return round((BUCKETS + 1) * BUCKET_MS, 2)

    def figures(self) -> dict[str, Any]:
        return {"chunks": self.chunks, "late_p50_ms": self.quantile_ms(0.5), "late_p99_ms": self.quantile_ms(0.99)}


class _Line:
    """One direction of one connection: chunks in the order read, each with the loop time it is
    due; ``None`` for the end of stream. Reading waits while more than the window is held."""

    def __init__(self, window_bytes: int) -> None:
        self.window_bytes = window_bytes
        self.chunks: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()
        self.held = 0
        self.peak = 0
        self._room = asyncio.Event()
        self._room.set()

    async def put(self, due: float, data: bytes) -> None:
        self.chunks.put_nowait((due, data))
        self.held += len(data)
        self.peak = max(self.peak, self.held)
        if self.held > self.window_bytes:
            self._room.clear()
            await self._room.wait()

    def end(self, due: float) -> None:
        self.chunks.put_nowait((due, None))

    def delivered(self, size: int) -> None:
        self.held -= size
        if self.held <= self.window_bytes:
            self._room.set()


class DelayProxy:
    """``await DelayProxy(host, port, delay_s).start()`` listens on loopback and returns the port;
    ``await proxy.close()`` ends every connection. One event loop; not thread-safe."""

    def __init__(self, upstream_host: str, upstream_port: int, delay_s: float, *,
                 max_connections: int = MAX_CONNECTIONS, window_bytes: int = WINDOW_BYTES) -> None:  # fmt: skip
        self.upstream = (upstream_host, upstream_port)
        self.delay_s = delay_s
        self.max_connections = max_connections
        self.window_bytes = window_bytes
        self.lateness = Lateness()
        self.accepted = 0
        self.refused = 0
        self.peak_held_bytes = 0  # the most bytes one direction of one connection held
        self._open: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def connections(self) -> int:
        return len(self._open)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._accept, host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._open):
            task.cancel()
        await asyncio.gather(*self._open, return_exceptions=True)

    def figures(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "refused": self.refused, "peak_held_bytes": self.peak_held_bytes,
                **self.lateness.figures()}  # fmt: skip

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= self.max_connections:
            self.refused += 1
            writer.transport.abort()
            return
        self.accepted += 1
        # The relay is a task of its own, which close() cancels: asyncio logs a connection
        # callback that ends cancelled as an error (Python 3.11).
        relay = asyncio.create_task(self._relay(reader, writer))
        self._open.add(relay)
        try:
            await asyncio.wait([relay])
        finally:
            self._open.discard(relay)
        if not relay.cancelled():
            relay.result()  # an unexpected error is raised here, where asyncio reports it

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        try:
            upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            pass
        finally:
            if upstream is None:  # refused by the upstream, or the proxy closing meanwhile
                writer.transport.abort()
        if upstream is None:
            return
        up_reader, up_writer = upstream
        there, back = _Line(self.window_bytes), _Line(self.window_bytes)
        pumps = [asyncio.create_task(self._pump(reader, there)), asyncio.create_task(self._pump(up_reader, back))]
        deliveries = [asyncio.create_task(self._deliver(there, up_writer)),
                      asyncio.create_task(self._deliver(back, writer))]  # fmt: skip
        try:
            await asyncio.wait(deliveries, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps + deliveries:
                task.cancel()
            await asyncio.gather(*pumps, *deliveries, return_exceptions=True)
            self.peak_held_bytes = max(self.peak_held_bytes, there.peak, back.peak)
            await asyncio.gather(_shut(writer), _shut(up_writer))

    async def _pump(self, reader: asyncio.StreamReader, line: _Line) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await reader.read(READ_BYTES):
                await line.put(loop.time() + self.delay_s, data)
        except OSError:
            pass  # a reset ends the stream like an end of file
        finally:
            line.end(loop.time() + self.delay_s)

    async def _deliver(self, line: _Line, writer: asyncio.StreamWriter) -> None:
        """Write each chunk on at its due time; return at the end of stream or a failed write."""
        loop = asyncio.get_running_loop()
        while True:
            due, data = await line.chunks.get()
            while (wait_s := due - loop.time()) > 0:  # never early, whatever the loop's timers round to
                await asyncio.sleep(wait_s)
            if data is None:
                return
            self.lateness.add(loop.time() - due)
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                return
            line.delivered(len(data))


async def _shut(writer: asyncio.StreamWriter) -> None:
    """Close after the bytes already written are sent; reset a peer that does not take them."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), CLOSE_S)
    except (OSError, TimeoutError):
        writer.transport.abort()
    except asyncio.CancelledError:  # the proxy closing: no waiting for the peer
        writer.transport.abort()
        raise


# --- python -m baton.bench.delay ---------------------------------------------------------------


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def _delay_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds from 0 to 1000")
    return value


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m baton.bench.delay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0), help="HOST:PORT (port 0: any free)")
    parser.add_argument("--upstream", type=_address, required=True, help="HOST:PORT to relay to")
    parser.add_argument("--delay-ms", type=_delay_ms, required=True, help="added in each direction")
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS)
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="stop, as on SIGTERM, once this process is no longer the parent (it died)")  # fmt: skip
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    """Relay until SIGTERM or SIGINT, or until the parent named by ``--parent-pid`` is gone (a
    bench killed without stopping it must not leave it running); return the figures."""
    host, port = args.upstream
    proxy = DelayProxy(host, port, args.delay_ms / 1000, max_connections=args.max_connections)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    listening = await proxy.start(*args.listen)
    print(json.dumps({"port": listening}), flush=True)
    watch = asyncio.create_task(_watch_parent(args.parent_pid, stop))
    try:
        await stop.wait()
    finally:
        watch.cancel()
        await proxy.close()
    return proxy.figures()


async def _watch_parent(parent_pid: int | None, stop: asyncio.Event) -> None:
    while parent_pid is not None and os.getppid() == parent_pid:
        await asyncio.sleep(PARENT_POLL_S)
    if parent_pid is not None:
        stop.set()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        figures = asyncio.run(serve(args))
    except OSError as exc:
        sys.exit(f"delay proxy: cannot listen on {args.listen[0]}:{args.listen[1]}: {exc}")
    with contextlib.suppress(OSError):  # whoever reads the figures may have gone
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
