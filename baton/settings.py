"""One settings object. Sources, lowest first: defaults < TOML file < BATON_* environment <
command-line flags. Unknown keys are errors everywhere; durations carry ``_s`` in the name, sizes
``_bytes``.

Every default is written here once; the components take what they need from a :class:`Settings`
their entry point built (``WorkerConfig.from_settings``, ``ControllerConfig.from_settings``,
``open_store(url, settings)``). Local worker processes get the very same settings through their
environment (:func:`settings_env`), never by re-reading the parent's file.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from baton.errors import UsageError

DEFAULT_MAX_PARAMS_BYTES = 1024 * 1024  # an event's parameters' JSON, as stored

DEFAULT_DB = "sqlite:///.baton/baton.db"
ENV_PREFIX = "BATON_"
CONFIG_VARIABLE = "BATON_CONFIG"  # names the settings file, like --config
# How a client or remote worker reaches a server (per process, like --server and --token): not
# settings, but credentials all the same, kept from tasks like the database URL.
SERVER_VARIABLES = frozenset({"BATON_SERVER", "BATON_TOKEN", "BATON_CA_FILE"})
DAY_S = 86_400.0
HOUR_S = 3600.0
SQLITE_PAGE_BYTES = 4096  # SQLite's default page size, which Baton's database files have
SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


def _seconds(default: float, description: str, *, upto: float = DAY_S, zero: bool = False) -> Any:
    """A finite duration field: positive (or, with ``zero``, not negative) and at most ``upto``."""
    return Field(
        default, gt=None if zero else 0, ge=0 if zero else None, le=upto, allow_inf_nan=False, description=description
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    db: str = Field(DEFAULT_DB, description="database URL: sqlite:///PATH or postgresql://...")
    # --- workers (and the store's claims) ---------------------------------------------------------
    lease_s: float = _seconds(30.0, "how long a claim lives without a heartbeat")
    heartbeat_s: float | None = Field(
        None, gt=0, le=DAY_S, allow_inf_nan=False, description="how often workers extend leases (lease_s / 6)"
    )
    hold_s: float | None = Field(
        None, gt=0, le=DAY_S, allow_inf_nan=False,
        description="how long a held task stays its worker's without a heartbeat (2 x the heartbeat)",
    )  # fmt: skip
    poll_s: float = _seconds(0.25, "longest idle wait between looks at the store", upto=HOUR_S)
    idle_poll_s: float = _seconds(
        5.0, "safety-net poll where the store wakes processes (LISTEN, a watched WAL)", upto=HOUR_S
    )
    drain_s: float = _seconds(30.0, "on SIGTERM, how long running tasks may finish", zero=True)
    log_tail_s: float = _seconds(2.0, "how often workers send running tasks' new output to the store", upto=HOUR_S)
    max_result_bytes: int = Field(1024 * 1024, gt=0, le=1024**3, description="cap on a task's JSON result")
    max_log_bytes: int = Field(256 * 1024, gt=0, le=1024**3, description="cap on each captured output stream")
    max_params_bytes: int = Field(
        DEFAULT_MAX_PARAMS_BYTES, gt=0, le=64 * 1024 * 1024, description="cap on an event's parameters, as JSON"
    )
    # --- the controller ---------------------------------------------------------------------------
    sweep_s: float = _seconds(1.0, "controller: how often to look for expired leases and ended backoffs", upto=HOUR_S)
    lead_ttl_s: float = _seconds(
        4.0, "controller: a dead leader's role passes to a standby after this long", upto=HOUR_S
    )
    deadline_check_s: float = _seconds(
        15.0, "controller: how often to forecast the end of each unfinished event that has a deadline", upto=HOUR_S
    )
    ageing_step_s: float = _seconds(
        60.0,
        "controller: every this long, ready tasks that waited a whole step below the queue's top priority are "
        "raised by 1 (0: no ageing)",
        upto=DAY_S,
        zero=True,
    )
    retention_days: float | None = Field(
        None, gt=0, le=36_600, allow_inf_nan=False,
        description="controller: finished events of graphs that declare no retention are removed after this many days "
        "(unset: kept)",
    )  # fmt: skip
    prune_s: float = _seconds(60.0, "controller: how often to look for events past their retention", upto=DAY_S)
    prune_batch: int = Field(1000, ge=1, le=100_000, description="controller: rows removed per pruning transaction")
    notice_retention_s: float = _seconds(
        7 * DAY_S,
        "controller: outbox notices are kept this long once every delivery of them is over",
        upto=3660 * DAY_S,
    )
    # --- webhooks (the controller delivers them) ---------------------------------------------------
    webhook_poll_s: float = _seconds(1.0, "controller: how often to look for webhook deliveries due", upto=HOUR_S)
    webhook_connect_timeout_s: float = _seconds(
        5.0, "controller: longest a webhook's receiver may take to accept the connection", upto=300.0
    )
    webhook_read_timeout_s: float = _seconds(
        10.0, "controller: longest a webhook's receiver may stay silent while answering", upto=300.0
    )
    webhook_horizon_s: float = _seconds(
        3 * DAY_S, "controller: a delivery not accepted this long after it was made is given up", upto=30 * DAY_S
    )
    webhook_max_in_flight: int = Field(
        8, ge=1, le=256, description="controller: webhook deliveries being posted at once, at most"
    )
    # --- the HTTP server (baton server) ------------------------------------------------------------
    long_poll_s: float = _seconds(20.0, "server: longest an idle remote worker's wait for work is held", upto=300.0)
    token_cache_s: float = _seconds(
        5.0, "server: a token lookup is reused this long (a revoked token works at most this long)", upto=300.0
    )
    session_s: float = _seconds(
        12 * HOUR_S, "server: a web UI login lasts this long (revoking its token ends it sooner)", upto=30 * 24 * HOUR_S
    )
    metrics_refresh_s: float = _seconds(
        5.0, "server: how often /metrics reads its database-derived values (never per scrape)", upto=300.0
    )
    max_request_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, le=1024**3, description="server: cap on an API request body (413 above)"
    )
    max_worker_request_bytes: int = Field(
        16 * 1024 * 1024, ge=1024 * 1024, le=4 * 1024**3,
        description="server: cap on a task server's batch of reports or logs (each report's output fits ten times)",
    )  # fmt: skip
    body_budget_bytes: int = Field(
        32 * 1024 * 1024, ge=1024 * 1024, le=64 * 1024**3,
        description="server: request bodies read and parsed at once, in bytes (more wait their turn)",
    )  # fmt: skip
    body_timeout_s: float = _seconds(60.0, "server: longest a request's body may take to arrive (408)", upto=HOUR_S)
    header_timeout_s: float = _seconds(
        10.0, "server: longest a connection may take to send a request's head (then it is closed)", upto=HOUR_S
    )
    max_connections: int = Field(
        4096, ge=16, le=1_000_000,
        description="server: open connections at most; past it the oldest that never sent a request is closed",
    )  # fmt: skip
    # --- SQLite -----------------------------------------------------------------------------------
    sqlite_synchronous: SqliteSynchronous = Field(
        "NORMAL", description="SQLite durability: NORMAL survives process crashes, FULL power loss too"
    )
    sqlite_busy_timeout_s: float = _seconds(30.0, "SQLite: how long a statement waits for a locked database")
    # 16 MB rather than SQLite's 4 MB: in synchronous=NORMAL each checkpoint fsyncs, which at
    # thousands of tasks per second was ~8% of the time; the WAL is rewound after each checkpoint.
    sqlite_checkpoint_bytes: int = Field(
        4000 * SQLITE_PAGE_BYTES,
        ge=SQLITE_PAGE_BYTES,
        le=1024**3,
        description="SQLite: checkpoint the write-ahead log into the database once it is this big",
    )
    # --- PostgreSQL -------------------------------------------------------------------------------
    reconnect_s: float = _seconds(
        60.0, "PostgreSQL: how long to retry a lost database before giving up a call", zero=True
    )
    postgres_pool_size: int = Field(4, ge=1, le=1000, description="PostgreSQL: most connections per process")
    postgres_connect_timeout_s: float = _seconds(
        5.0, "PostgreSQL: how long to wait for a connection (from the server, or the pool)", upto=HOUR_S
    )

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        if self.heartbeat_s is not None and self.heartbeat_s * 2 > self.lease_s:
            raise ValueError(f"heartbeat_s ({self.heartbeat_s:g}) must be at most half of lease_s ({self.lease_s:g})")
        if self.hold_s is not None and self.hold_s < 2 * self.heartbeat_interval_s:
            raise ValueError(f"hold_s ({self.hold_s:g}) must be at least twice the heartbeat "
                             f"({self.heartbeat_interval_s:g} s)")  # fmt: skip
        return self

    @property
    def heartbeat_interval_s(self) -> float:
        return self.heartbeat_s if self.heartbeat_s is not None else self.lease_s / 6

    @property
    def hold_lease_s(self) -> float:
        """How long a held task stays its worker's without a heartbeat."""
        return self.hold_s if self.hold_s is not None else 2 * self.heartbeat_interval_s


def default_settings() -> Settings:
    """Every setting at its default, whatever the environment says: for library callers that were
    handed no settings (entry points build theirs with :func:`load_settings`)."""
    return Settings.model_construct()


def env_name(field: str) -> str:
    """The environment variable of a setting: ``lease_s`` → ``BATON_LEASE_S``."""
    return ENV_PREFIX + field.upper()


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as ``BATON_*`` variables that :func:`load_settings` reads back to equal
    ``settings`` (strings as they are, anything else as JSON; unset optional ones left out)."""
    values = settings.model_dump(mode="json", exclude_none=True)
    return {env_name(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def without_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without any settings variable, the settings file's or a server's URL and
    token: what a task's process inherits, so task code never sees the database URL (it may
    hold a password) or its worker's token; other ``BATON_*`` variables are kept."""
    ours = {env_name(k) for k in Settings.model_fields} | {CONFIG_VARIABLE} | SERVER_VARIABLES
    return {k: v for k, v in environ.items() if k.upper() not in ours}


def child_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for a process that must use exactly ``settings``: every settings variable (and
    the settings file's) replaced by ``settings`` itself; other ``BATON_*`` variables kept."""
    return {**without_settings(environ), **settings_env(settings)}


def load_settings(config_file: str | Path | None = None, **flags: Any) -> Settings:
    """Build settings from every source; flags that are None are treated as not given. The
    sources are merged before anything is checked, so a rule across settings (heartbeat at most
    half the lease) sees the values that will be used, wherever each came from."""
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
        env_values = EnvSettingsSource(Settings)()
        given = {k: v for k, v in flags.items() if v is not None}
        return Settings(**{**file_values, **env_values, **given})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"invalid settings: {problems}") from exc
