"""Browser fixtures: Playwright driving Debian's ``chromium`` (never a browser Playwright downloads).

``page`` is a fresh context and page per test; when the test fails, a screenshot of it goes to
``<screenshot_dir>/failures/<test name>.png``. ``screenshot_dir`` is ``$BATON_SCREENSHOTS``, by
default ``test-artifacts/ui`` under the repository. A missing chromium skips these tests locally
and fails them with ``CI=true`` (``scripts/setup`` installs it when run as root with apt).

While Playwright's sync API runs, the main thread looks as if an asyncio loop ran in it
(``asyncio.run`` refuses to start). So Playwright starts on the first test that wants a browser
and stops as soon as the run leaves ``tests/ui``: other tests never see it, and UI tests must not
call ``asyncio.run`` themselves.

Chromium writes outside its profile too (Debian's build: ``~/.config/chromium/Crash Reports``,
``~/.cache``): it gets a home of its own per test process, never the user's, and not one that
the chromium of another test process (pytest-xdist) uses at the same time.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError

ROOT = Path(__file__).resolve().parents[2]
UI_TESTS = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
INSTALL_HINT = "install Debian's chromium ('sudo apt-get install chromium', or run scripts/setup as root)"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
# Playwright itself passes --no-sandbox (chromium_sandbox=False, its default), which root needs.
# /dev/shm is often tiny in containers; headless needs no GPU process.
CHROMIUM_ARGS = ["--disable-dev-shm-usage", "--disable-gpu"]


class Chromium:
    """Playwright and one headless chromium, started on first use; ``stop`` may be called often."""

    def __init__(self, executable: str, home: Path) -> None:
        self._executable = executable
        self._env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                     "XDG_CACHE_HOME": str(home / ".cache")}  # fmt: skip
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def browser(self) -> Browser:
        if self._browser is None:
            playwright = sync_playwright().start()
            try:
                self._browser = playwright.chromium.launch(
                    executable_path=self._executable, headless=True, chromium_sandbox=False, args=CHROMIUM_ARGS,
                    env=self._env,
                )  # fmt: skip
            except BaseException:
                playwright.stop()
                raise
            self._playwright = playwright
        return self._browser

    def stop(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        try:
            if browser is not None:
                browser.close()
        finally:
            if playwright is not None:
                playwright.stop()


CHROMIUM = pytest.StashKey[Chromium]()
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so that ``page`` knows whether the test failed."""
    report: pytest.TestReport = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """After the test's own teardown (its ``page``), stop Playwright if the next test is not here."""
    yield
    if nextitem is None or not nextitem.path.is_relative_to(UI_TESTS):
        chromium = item.session.stash.get(CHROMIUM, None)
        if chromium is not None:
            chromium.stop()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The installed chromium; its absence skips the UI tests, or fails them in CI."""
    path = shutil.which("chromium")
    if path is None:
        if IN_CI:
            pytest.fail(f"chromium is required in CI but is not on PATH: {INSTALL_HINT}", pytrace=False)
        pytest.skip(f"chromium not found: {INSTALL_HINT}")
    return path


@pytest.fixture(scope="session")
def _chromium(
    request: pytest.FixtureRequest, chromium_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chromium]:
    home = tmp_path_factory.mktemp("chromium-home")
    chromium = request.session.stash[CHROMIUM] = Chromium(chromium_path, home)
    yield chromium
    chromium.stop()


@pytest.fixture
def browser(_chromium: Chromium) -> Browser:
    """The headless chromium, launched once for a run of consecutive UI tests."""
    return _chromium.browser()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where tests save screenshots (created): ``$BATON_SCREENSHOTS``, relative to the repository."""
    folder = ROOT / os.environ.get("BATON_SCREENSHOTS", "test-artifacts/ui")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest, screenshot_dir: Path) -> Iterator[Page]:
    """A page in a fresh browser context (no shared cookies or cache), 1280x900."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        yield page
        report = request.node.stash.get(REPORTS, {}).get("call")
        if report is not None and report.failed:
            _screenshot_failure(page, screenshot_dir / "failures" / f"{_file_name(request.node.name)}.png")
    finally:
        context.close()


def _screenshot_failure(page: Page, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The page may have crashed with the test; the test's own failure is the one to report.
    with contextlib.suppress(PlaywrightError):
        page.screenshot(path=path, full_page=True)


def _file_name(test_name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", test_name)
