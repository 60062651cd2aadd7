"""Settings, read from ``FLEETFLOW_*`` environment variables.

Every setting has a default that works on a laptop with nothing configured: the store is a
SQLite file under ``FLEETFLOW_HOME``. Teams point ``FLEETFLOW_DATABASE_URL`` at PostgreSQL or
``FLEETFLOW_API_URL`` at a server without touching code.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ENV_PREFIX = "FLEETFLOW_"


class Settings(BaseModel):
    """All knobs, with defaults and descriptions.

    Read as pydantic-settings' ``BaseSettings(env_prefix="FLEETFLOW_", extra="ignore")`` reads
    them -- environment names case-insensitive, keyword arguments first, the same coercion and
    validation errors (a unit test compares the two) -- without importing pydantic-settings,
    python-dotenv and asyncio, which cost every ``python script.py`` ~20 ms before its first task
    (no ``.env`` file is read: there never was one configured).
    """

    model_config = ConfigDict(extra="ignore", validate_default=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**environment_values(), **values})

    home: Path = Field(
        default=Path("~/.fleetflow"), description="Folder for the SQLite store, results, keys and caches."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the state store; default is sqlite at HOME/fleetflow.db. "
        "Use postgresql+psycopg://user:pw@host/db for teams.",
    )
    api_url: str | None = Field(
        default=None, description="URL of a fleetflow server; when set, clients talk HTTP instead of SQL."
    )
    api_key: SecretStr | None = Field(default=None, description="API key sent to the fleetflow server.")
    api_timeout: float = Field(default=30.0, gt=0, description="Seconds an HTTP request to the server may take.")
    api_retry_seconds: float = Field(
        default=30.0, ge=0,
        description="How long the HTTP client retries connect errors and 502/503/504 before giving up.",
    )
    api_outage_seconds: float = Field(
        default=300.0, ge=0,
        description="How long a running flow keeps retrying its state and log writes while the server is "
        "unreachable (logs are buffered meanwhile) before the run gives up.",
    )
    api_defer_run_writes: bool = Field(
        default=True,
        description="Over HTTP, send a running flow's task-run creations, task-run state changes and log lines in "
        "batches from a background thread (every other call waits until they are stored first) instead of one "
        "request each.",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Fernet key for secret block fields; default is a key generated at HOME/encryption.key (0600).",
    )
    results_dir: Path | None = Field(
        default=None, description="Where results are persisted by default; default HOME/results."
    )
    result_storage: str | None = Field(
        default=None,
        description="Saved storage block ('s3/name') where runs persist results that are not stored "
        "inline; default is the local results folder. Set it for runs in containers (ECS).",
    )
    logging_level: str = Field(default="INFO", description="Level of run loggers.")
    log_flush_interval: float = Field(
        default=0.5, description="Seconds between batched writes of run logs to the store."
    )
    console_flush_interval: float = Field(
        default=0.05, ge=0,
        description="Seconds run-log lines may wait before they are written to a console that is not a terminal "
        "(a pipe or a file), so many lines cost one write; a terminal gets each line at once.",
    )
    worker_poll_interval: float = Field(
        default=0.1, description="Seconds between a worker's claims of scheduled runs on the local path."
    )
    worker_heartbeat_interval: float = Field(default=5.0, description="Seconds between worker heartbeats.")
    task_run_log_lines: bool = Field(
        default=True,
        description="Log Prefect's per-task-run lines (Created task run, Executing/Submitted, Finished in state). "
        "Failures and retries are logged either way; turn off to save their cost on very large flows.",
    )
    group_commit_window: float = Field(
        default=0.02, ge=0,
        description="Seconds a process may hold task-run records before committing them together (group commit); "
        "other processes see task runs within this window. A flow run's own states, claims and cancellation are "
        "always immediate, and its final state commits only after its task runs. 0 commits every write at once.",
    )
    plain_sqlite: bool = Field(
        default=True,
        description="Serve a process's embedded SQLite store on sqlite3 with generated SQL, loading SQLAlchemy only "
        "for what that path does not cover (start-up); false always uses the SQLAlchemy store.",
    )
    group_commit_max_records: int = Field(
        default=1000, ge=1, description="Buffered state records that trigger a group commit before the window ends."
    )
    concurrency_poll_interval: float = Field(
        default=0.1, description="Seconds between checks while a task waits for a tag concurrency slot."
    )
    pause_poll_interval: float = Field(
        default=0.2, description="Seconds between checks while a paused flow run waits to be resumed."
    )
    run_deployment_poll_interval: float = Field(
        default=0.05, description="Seconds between state checks while run_deployment waits for a child."
    )
    process_warm_runners: int = Field(
        default=2, ge=0,
        description="Pre-started runner processes a worker keeps ready for Process launches "
        "(skips ~0.5 s of Python start-up per sub-flow); with the fork server on, only runs that cannot fork "
        "use them, and they are started on demand; 0 disables.",
    )
    process_fork_server: bool = Field(
        default=True,
        description="Launch Process runs by forking a warm template process (milliseconds instead of ~0.4 s of "
        "Python start-up per run; Linux only, runs with a memory limit or a custom command still start fresh); "
        "false starts every run as a new interpreter (or a pre-started runner).",
    )
    bundle_cache_dir: Path | None = Field(
        default=None, description="Where fetched code bundles are extracted; default HOME/bundles."
    )
    lease_seconds: float = Field(
        default=30.0, gt=0,
        description="How long a run's lease lasts unless renewed; whoever executes a run renews it every "
        "third of this. A run whose lease lapsed is reconciled (re-attached or marked CRASHED).",
    )
    reconcile_interval: float = Field(
        default=5.0, gt=0,
        description="Seconds between sweeps of expired leases by workers, the scheduler and the server.",
    )
    run_token_sweep_interval: float = Field(
        default=300.0, gt=0,
        description="Seconds between a worker's sweeps of leftover per-run token secrets (ECS over HTTP): "
        "secrets of runs that ended while no worker watched their task, e.g. across a worker restart.",
    )
    run_token_sweep_limit: int = Field(
        default=50, gt=0, le=100,
        description="Most token secrets one sweep looks at (one ListSecrets page; the next sweep goes on).",
    )
    usage_enabled: bool = Field(
        default=True, description="Measure each launched run's memory and CPU in its runner and store a usage record."
    )
    usage_sample_interval: float = Field(
        default=5.0, gt=0, description="Seconds between the runner's usage samples (one more is taken at the end)."
    )
    usage_prices_file: Path | None = Field(
        default=None,
        description="JSON file of Fargate prices (the shape of PRICES in fleetflow/usage/fargate_prices.py); its regions "
        "replace the shipped ones.",
    )
    fargate_spot_discount: float = Field(
        default=0.7, ge=0, lt=1, description="Fraction off the On-Demand Fargate price for runs on Fargate Spot."
    )
    ecs_ec2_vcpu_hour_price: float | None = Field(
        default=None, ge=0,
        description="Price of one vCPU-hour of your EC2 container instances; ECS-on-EC2 runs cost 'n/a' without it.",
    )
    ecs_ec2_gb_hour_price: float | None = Field(
        default=None, ge=0, description="Price of one GB-hour of memory of your EC2 container instances."
    )
    process_vcpu_hour_price: float = Field(
        default=0.0, ge=0, description="Local rate per vCPU-hour for Process runs (free by default)."
    )
    process_gb_hour_price: float = Field(
        default=0.0, ge=0, description="Local rate per GB-hour of memory for Process runs (free by default)."
    )
    fault_points: str = Field(
        default="",
        description="Testing only, off unless set: comma-separated 'point=action' fault injections "
        "(action kill, hang, or pause:<seconds>), e.g. 'worker.after_start=kill'. See fleetflow.faults.",
    )

    def resolved_home(self) -> Path:
        """HOME expanded, created, and private (0700): it holds the store, results, logs and key."""
        home = self.home.expanduser()
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            if home.stat().st_mode & 0o077:
                home.chmod(0o700)
        except OSError:  # not ours (a shared, admin-made folder): leave it as it is
            pass
        return home

    def resolved_database_url(self) -> str:
        """The store URL, defaulting to the SQLite file under HOME."""
        return self.database_url or f"sqlite:///{self.resolved_home() / 'fleetflow.db'}"

    def resolved_results_dir(self) -> Path:
        return (self.results_dir or self.resolved_home() / "results").expanduser()

    def resolved_bundle_cache_dir(self) -> Path:
        return (self.bundle_cache_dir or self.resolved_home() / "bundles").expanduser()


def env_name(field: str) -> str:
    """The environment variable of a setting, e.g. ``FLEETFLOW_HOME``."""
    return f"{ENV_PREFIX}{field.upper()}"


def environment_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings given in ``environ`` (default ``os.environ``) as ``{field: raw text}``."""
    prefix = ENV_PREFIX.lower()
    fields = Settings.model_fields
    found: dict[str, str] = {}
    for key, value in (os.environ if environ is None else environ).items():
        lowered = key.lower()
        if lowered.startswith(prefix) and lowered[len(prefix):] in fields:
            found[lowered[len(prefix):]] = value
    return found


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; :func:`reset_settings` re-reads the environment."""
    return Settings()


def reset_settings() -> None:
    """Forget cached settings so the next :func:`get_settings` re-reads the environment."""
    get_settings.cache_clear()
