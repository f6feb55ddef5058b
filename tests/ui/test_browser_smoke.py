"""Playwright and Debian's chromium talk (a CDP version skew fails here first), and what the UI
relies on works through a real HTTP server: a script changing the DOM, inline SVG, navigation and
resource timing (``measure``), screenshots, and server-sent events (the UI's live updates)."""

from __future__ import annotations

import re
import struct
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from measure import measure
from playwright.sync_api import Browser, Page, expect

STYLE = b"body { font-family: sans-serif; } circle { fill: teal; }\n"
PAGE = b"""<!doctype html>
<html>
<head><meta charset="utf-8"><title>Baton smoke</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/style.css"></head>
<body>
<h1>Baton smoke</h1>
<svg width="40" height="40" viewBox="0 0 40 40"><circle cx="20" cy="20" r="16"></circle></svg>
<script>
window.addEventListener("load", () => {
  const made = document.createElement("p");
  made.id = "made";
  made.textContent = "made by script";
  document.body.append(made);
});
</script>
</body>
</html>
"""
# html head meta title link link body h1 svg circle script, and the script's p. The icon link keeps
# chromium from fetching /favicon.ico at a moment of its choosing (it would show in the timing).
PAGE_ELEMENTS = 12
LIVE = b"""<!doctype html>
<html>
<head><meta charset="utf-8"><title>Baton live</title><link rel="icon" href="data:,"></head>
<body>
<ol id="events"></ol>
<script>
const events = document.getElementById("events");
const source = new EventSource("/stream");
source.onmessage = (message) => {
  const item = document.createElement("li");
  item.textContent = message.data;
  events.append(item);
  if (events.children.length === 2) source.close();  // else it reconnects when the stream ends
};
</script>
</body>
</html>
"""
MESSAGES = ["first", "second"]
ROUTES = {
    "/": ("text/html; charset=utf-8", PAGE),
    "/style.css": ("text/css", STYLE),
    "/live": ("text/html; charset=utf-8", LIVE),
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Handler(BaseHTTPRequestHandler):
    """Serves ROUTES and ``/stream`` over HTTP/1.0, so each connection closes after its response (the stream too)."""

    def do_GET(self) -> None:
        if self.path == "/stream":
            self._stream()
        elif self.path in ROUTES:
            content_type, body = ROUTES[self.path]
            self._headers(content_type, len(body))
            self.wfile.write(body)
        else:
            self.send_error(404)

    def _stream(self) -> None:
        self._headers("text/event-stream", None)
        for data in MESSAGES:  # one write each: the browser sees them arrive as events
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

    def _headers(self, content_type: str, length: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output to what failed


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """A real HTTP server on a free loopback port (see ``_Handler``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="smoke-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _debian_major(chromium_path: str) -> str:
    out = subprocess.run([chromium_path, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    found = re.search(r"\b(\d+)\.\d+\.\d+\.\d+\b", out)
    assert found, f"no version in {chromium_path} --version: {out!r}"
    return found.group(1)


def test_chromium_renders_a_page_that_a_script_changes(
    browser: Browser, chromium_path: str, page: Page, site: str, screenshot_dir: Path
) -> None:
    assert browser.version.startswith(_debian_major(chromium_path) + ".")

    page.goto(site + "/")
    expect(page.locator("#made")).to_have_text("made by script")
    expect(page.locator("svg circle")).to_be_visible()
    assert page.locator("circle").evaluate("c => getComputedStyle(c).fill") == "rgb(0, 128, 128)"

    cost = measure(page)
    navigation = page.evaluate("() => performance.getEntriesByType('navigation')[0].toJSON()")
    assert navigation["duration"] > 0
    assert "transferSize" in navigation
    assert cost["navigation_ms"] == navigation["duration"]
    assert cost["dom_elements"] == PAGE_ELEMENTS == page.evaluate("document.getElementsByTagName('*').length")
    resources = page.evaluate("() => performance.getEntriesByType('resource').map(entry => entry.toJSON())")
    assert [entry["name"] for entry in resources] == [site + "/style.css"]
    assert navigation["transferSize"] > len(PAGE) and resources[0]["transferSize"] > len(STYLE)  # + headers
    assert cost["transfer_bytes"] == navigation["transferSize"] + resources[0]["transferSize"]

    shot = screenshot_dir / "smoke.png"
    shot.unlink(missing_ok=True)
    page.screenshot(path=shot)
    png = shot.read_bytes()
    assert png[:8] == PNG_MAGIC
    assert struct.unpack(">II", png[16:24]) == (1280, 900)  # IHDR: width, height of the viewport


def test_server_sent_events_reach_the_page(page: Page, site: str) -> None:
    page.goto(site + "/live")
    expect(page.locator("#events li")).to_have_text(MESSAGES)
