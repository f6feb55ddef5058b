"""``baton run`` hands its local workers its own settings: a value set only in a ``--config``
file is what the workers use."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import GRAPHS, baton

from baton.settings import CONFIG_VARIABLE, Settings, env_name
from baton.store import open_store

pytestmark = pytest.mark.slow


def test_a_setting_only_in_the_config_file_reaches_the_local_workers(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "baton.toml"
    config.write_text("max_log_bytes = 1000\n")
    # nothing else may set it: the run's environment holds no settings of its own
    clean = {env_name(name) for name in Settings.model_fields} | {CONFIG_VARIABLE}
    assert not clean & set(os.environ), "the test's own environment sets Baton settings"

    result = baton("run", str(GRAPHS / "cli_chatty.yaml"), "--config", str(config), "--db", db_url,
                   "--json", "--workers", "1", timeout=90)  # fmt: skip

    assert result.returncode == 0, result.stderr
    event_id = json.loads(result.stdout)["event_id"]
    store = open_store(db_url)
    try:
        (task,) = store.tasks(event_id)
        (attempt,) = store.attempts([task.id])
    finally:
        store.close()
    # the worker's capture kept 500 bytes of head and 500 of tail (5,000 written) and says why
    assert attempt.stdout.count("x") == 1000
    assert "4,000 bytes cut: output over the 1,000-byte cap" in attempt.stdout
