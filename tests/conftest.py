"""Shared fixtures. Every store a test opens is checked for broken invariants afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from baton.backends import open_backend
from baton.backends.sql import SqlBackend
from baton.testing import check_invariants

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = Path(__file__).resolve().parent / "graphs"
EXAMPLE = ROOT / "examples" / "year_end_report" / "graph.yaml"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'baton.db'}"


@pytest.fixture
def backend(db_url: str) -> Iterator[SqlBackend]:
    store = open_backend(db_url)
    yield store
    problems = check_invariants(store)
    store.close()
    assert not problems, "broken invariants:\n" + "\n".join(problems)


def baton(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real ``baton`` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "baton", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
