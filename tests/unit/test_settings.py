"""Settings: every default is written once (in ``Settings``), the components take theirs from it,
and a local worker started by ``baton run`` reads back exactly its parent's settings."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from baton.controller.loop import ControllerConfig
from baton.errors import UsageError
from baton.local.workers import worker_command, worker_environment
from baton.settings import CONFIG_VARIABLE, Settings, default_settings, env_name, load_settings
from baton.worker.loop import WorkerConfig

ROOT = Path(__file__).resolve().parents[2]
# Every setting, each away from its default (a new setting must be added here: the first test says so).
AWAY: dict[str, Any] = {
    "db": "postgresql://baton:secret@db.example:5433/baton?sslmode=require",
    "lease_s": 41.5,
    "heartbeat_s": 0.1,  # not a round number in binary: the encoding must not round it
    "hold_s": 0.3,
    "poll_s": 0.07,
    "idle_poll_s": 2.5,
    "drain_s": 0.0,
    "log_tail_s": 0.6,
    "max_result_bytes": 2000,
    "max_log_bytes": 1000,
    "max_params_bytes": 4096,
    "sweep_s": 0.3,
    "lead_ttl_s": 9.0,
    "retention_days": 30.0,
    "deadline_check_s": 30.0,
    "ageing_step_s": 30.0,
    "prune_s": 120.0,
    "prune_batch": 500,
    "notice_retention_s": 86400.0,
    "webhook_poll_s": 0.4,
    "webhook_connect_timeout_s": 1.5,
    "webhook_read_timeout_s": 2.5,
    "webhook_horizon_s": 3600.0,
    "webhook_max_in_flight": 3,
    "sqlite_synchronous": "FULL",
    "sqlite_busy_timeout_s": 1.25,
    "sqlite_checkpoint_bytes": 64 * 4096,
    "reconnect_s": 0.0,
    "postgres_pool_size": 9,
    "postgres_connect_timeout_s": 2.0,
    "long_poll_s": 7.5,
    "token_cache_s": 0.5,
    "session_s": 600.0,
    "metrics_refresh_s": 0.75,
    "max_request_bytes": 300_000,
    "max_worker_request_bytes": 3 * 1024 * 1024,
    "body_budget_bytes": 5 * 1024 * 1024,
    "body_timeout_s": 7.0,
    "header_timeout_s": 3.0,
    "max_connections": 333,
}
# What the child runs: the same call as ``baton worker`` with no flags.
READ_BACK = "from baton.settings import load_settings; print(load_settings().model_dump_json())"


def child_settings(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """The settings a fresh Python process builds from ``env``, as JSON values."""
    done = subprocess.run(
        [sys.executable, "-c", READ_BACK], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    values: dict[str, Any] = json.loads(done.stdout)
    return values


def test_the_sample_moves_every_setting_off_its_default() -> None:
    assert set(AWAY) == set(Settings.model_fields)
    for name, value in AWAY.items():
        assert value != Settings.model_fields[name].default, name


def test_a_local_worker_reads_back_exactly_its_parents_settings(tmp_path: Path) -> None:
    parent = Settings(**AWAY)
    # what the parent's own environment may hold: stale settings, a settings file (which must not
    # be read again: it does not even exist), and variables that are not settings at all
    inherited = {
        **os.environ,
        "BATON_LEASE_S": "99",
        "baton_poll_s": "7",
        CONFIG_VARIABLE: str(tmp_path / "gone.toml"),
        "BATON_FAULT": "no.such.point",
    }
    env = worker_environment(parent, inherited)

    assert child_settings(env, tmp_path) == parent.model_dump(mode="json")
    assert CONFIG_VARIABLE not in env and "baton_poll_s" not in env
    assert env["BATON_FAULT"] == "no.such.point"


def test_an_unset_setting_stays_unset_in_the_worker(tmp_path: Path) -> None:
    parent = Settings(lease_s=12.0)  # heartbeat_s unset: lease_s / 6
    env = worker_environment(parent, {**os.environ, "BATON_HEARTBEAT_S": "5"})

    child = child_settings(env, tmp_path)
    assert child["heartbeat_s"] is None and child["lease_s"] == 12.0
    assert Settings(**{k: v for k, v in child.items() if v is not None}).heartbeat_interval_s == 2.0


def test_a_local_worker_gets_no_settings_on_its_command_line() -> None:
    argv = worker_command({"slots": 3, "mem_mb": 512}, ["erp"], name="local1", extra=["--event", "7"])
    assert argv[1:] == ["-m", "baton", "worker", "--slots", "3", "--resource", "mem_mb=512", "--label", "erp",
                        "--name", "local1", "--event", "7"]  # fmt: skip


def settings_fields(config_class: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(config_class) if f.name in Settings.model_fields]


@pytest.mark.parametrize("config_class", [WorkerConfig, ControllerConfig])
def test_the_configs_write_no_default_of_a_setting(config_class: type) -> None:
    shared = settings_fields(config_class)
    assert len(shared) >= 4
    for f in shared:
        assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, f.name


@pytest.mark.parametrize("settings", [default_settings(), Settings(**AWAY)], ids=["defaults", "every one set"])
def test_the_configs_take_every_setting_they_share_from_the_settings(settings: Settings) -> None:
    worker = WorkerConfig.from_settings(settings, capacity={"slots": 1})
    controller = ControllerConfig.from_settings(settings)
    for config in (worker, controller):
        for f in settings_fields(type(config)):
            derived = {"heartbeat_s": settings.heartbeat_interval_s, "hold_s": settings.hold_lease_s}
            expected = derived[f.name] if f.name in derived else getattr(settings, f.name)
            assert getattr(config, f.name) == expected, f.name


def test_overrides_win_over_the_settings() -> None:
    config = ControllerConfig.from_settings(default_settings(), poll_s=0.05, event_id=3)
    assert (config.poll_s, config.event_id, config.sweep_s) == (0.05, 3, default_settings().sweep_s)
    with pytest.raises(TypeError):
        WorkerConfig.from_settings(default_settings(), capacity={"slots": 1}, no_such_field=1)


def test_default_settings_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_LEASE_S", "12")
    defaults = {name: f.default for name, f in Settings.model_fields.items()}
    assert default_settings().model_dump() == defaults
    assert defaults["lease_s"] == 30.0


def test_sources_rank_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "baton.toml"
    config.write_text("lease_s = 60\npoll_s = 1.5\ndrain_s = 3\n")
    monkeypatch.setenv("BATON_POLL_S", "0.5")
    monkeypatch.setenv("BATON_DRAIN_S", "4")

    settings = load_settings(config, drain_s=5.0, lease_s=None)
    assert (settings.lease_s, settings.poll_s, settings.drain_s) == (60.0, 0.5, 5.0)


def test_a_rule_across_settings_sees_the_merged_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A heartbeat from the environment is checked against the file's lease, not the default one."""
    config = tmp_path / "baton.toml"
    config.write_text("lease_s = 60\n")
    monkeypatch.setenv("BATON_HEARTBEAT_S", "20")
    assert load_settings(config).heartbeat_s == 20.0
    with pytest.raises(UsageError, match="heartbeat_s"):
        load_settings()  # the default 30 s lease: 20 s is more than half


def test_the_operations_guide_lists_every_setting_with_its_variable() -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)` \| `(BATON_[A-Z_]+)` \|", text, flags=re.MULTILINE)
    assert [name for name, _ in rows] == list(Settings.model_fields)
    assert all(variable == env_name(name) for name, variable in rows)
