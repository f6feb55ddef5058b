"""One settings object. Sources, lowest first: defaults < TOML file < BATON_* environment <
command-line flags. Unknown keys are errors everywhere; durations carry ``_s`` in the name."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from baton.errors import UsageError
from baton.params import DEFAULT_MAX_PARAMS_BYTES

DEFAULT_DB = "sqlite:///.baton/baton.db"
DAY_S = 86_400.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BATON_", extra="forbid", frozen=True)

    db: str = Field(DEFAULT_DB, description="database URL: sqlite:///PATH or postgresql://...")
    lease_s: float = Field(
        30.0, gt=0, le=DAY_S, allow_inf_nan=False, description="how long a claim lives without a heartbeat"
    )
    heartbeat_s: float | None = Field(
        None, gt=0, le=DAY_S, allow_inf_nan=False, description="how often workers extend leases (lease_s / 6)"
    )
    poll_s: float = Field(
        0.25, gt=0, le=3600, allow_inf_nan=False, description="longest idle wait between looks at the store"
    )
    idle_poll_s: float = Field(
        5.0, gt=0, le=3600, allow_inf_nan=False, description="safety-net poll when PostgreSQL pushes changes (LISTEN)"
    )
    reconnect_s: float = Field(
        60.0,
        ge=0,
        le=DAY_S,
        allow_inf_nan=False,
        description="how long to retry a lost database before giving up a call",
    )
    drain_s: float = Field(
        30.0, ge=0, le=DAY_S, allow_inf_nan=False, description="on SIGTERM, how long running tasks may finish"
    )
    max_result_bytes: int = Field(1024 * 1024, gt=0, le=1024**3, description="cap on a task's JSON result")
    max_log_bytes: int = Field(256 * 1024, gt=0, le=1024**3, description="cap on each captured output stream")
    max_params_bytes: int = Field(
        DEFAULT_MAX_PARAMS_BYTES, gt=0, le=64 * 1024 * 1024, description="cap on an event's parameters, as JSON"
    )
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        "NORMAL", description="SQLite durability: NORMAL survives process crashes, FULL power loss too"
    )

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        if self.heartbeat_s is not None and self.heartbeat_s * 2 > self.lease_s:
            raise ValueError(f"heartbeat_s ({self.heartbeat_s:g}) must be at most half of lease_s ({self.lease_s:g})")
        return self

    @property
    def heartbeat_interval_s(self) -> float:
        return self.heartbeat_s if self.heartbeat_s is not None else self.lease_s / 6


def load_settings(config_file: str | Path | None = None, **flags: Any) -> Settings:
    """Build settings from every source; flags that are None are treated as not given."""
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            file_values = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read settings file {config_file}: {exc}") from exc
        unknown = sorted(set(file_values) - set(Settings.model_fields))
        if unknown:
            raise UsageError(f"{config_file}: unknown settings {unknown} (known: {sorted(Settings.model_fields)})")
    try:
        from_env = Settings()
        env_values = {k: getattr(from_env, k) for k in from_env.model_fields_set}
        given = {k: v for k, v in flags.items() if v is not None}
        return Settings(**{**file_values, **env_values, **given})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"invalid settings: {problems}") from exc
