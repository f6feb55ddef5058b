"""``baton run … --ui``: the run's page is served while it runs and after, until Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving import free_port
from uilogin import form_login

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "year_end_report" / "graph.yaml"
LINK = re.compile(r"log in: (http://127\.0\.0\.1:\d+)/ui/login\?next=(/ui/events/\d+)#token=(baton_admin_[\w-]+)")


@pytest.mark.long(seconds=15)
def test_run_with_ui_serves_the_events_page_until_interrupted(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    argv = [sys.executable, "-m", "baton", "run", str(EXAMPLE), "--ui", "--port", str(free_port()),
            "--db", f"sqlite:///{tmp_path / 'baton.db'}", "--workers", "1", "-p", "departments=sales,marketing",
            "-p", f"out_dir={tmp_path / 'out'}"]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=tmp_path, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while (found := LINK.search(log.read_text())) is None:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        base, page, token = found.groups()
        with httpx.Client(base_url=base, timeout=30) as http:
            assert form_login(http, token, page).headers["location"] == page
            while 'id="event-state">succeeded' not in (shown := http.get(page)).text:
                assert time.monotonic() < deadline + 60, shown.text[-2000:]
                time.sleep(0.2)
            assert 'data-node="hq_report"' in shown.text
        assert proc.poll() is None  # the event is done; the page stays until Ctrl-C
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
