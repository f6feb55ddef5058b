"""What a page cost, as the browser measured it, for the UI's budget tests.

``measure`` waits for the load event to finish (never a sleep), then reads the Navigation and
Resource Timing entries and counts the DOM's elements. A page without ``<link rel="icon">`` makes
chromium fetch ``/favicon.ico`` whenever it likes, which then may or may not be counted.
"""

from __future__ import annotations

from typing import TypedDict

from playwright.sync_api import Page

_LOADED = "() => (performance.getEntriesByType('navigation')[0]?.loadEventEnd ?? 0) > 0"
_MEASURE = """() => {
  const [navigation] = performance.getEntriesByType("navigation");
  const resources = performance.getEntriesByType("resource");
  return {
    navigation_ms: navigation.duration,
    transfer_bytes: resources.reduce((sum, entry) => sum + entry.transferSize, navigation.transferSize),
    dom_elements: document.getElementsByTagName("*").length,
  };
}"""


class Measurement(TypedDict):
    navigation_ms: float
    """From the start of the navigation to the end of the load event."""
    transfer_bytes: int
    """Bytes over the wire (headers and encoded bodies) for the document and every resource fetched
    so far; 0 for what came from the cache."""
    dom_elements: int
    """Elements in the document now, including what scripts added."""


def measure(page: Page) -> Measurement:
    """The current document's load time, bytes transferred and element count."""
    page.wait_for_function(_LOADED)
    result: Measurement = page.evaluate(_MEASURE)
    return result
