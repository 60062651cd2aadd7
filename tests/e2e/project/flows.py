"""A tiny flows project for the end-to-end tests: three steps, each deployed with its own size,
and a sleeper for the cancellation test.

Each step reports where it ran (process id, the file its code was imported from, the S3
endpoint it saw) so the test can check it ran in an emulated ECS container from a bundle
fetched from S3, not from this folder.
"""

from __future__ import annotations

import os
import time

from fleetflow import flow, get_run_logger


def _where() -> dict:
    return {"pid": os.getpid(), "file": os.path.abspath(__file__), "endpoint": os.environ.get("AWS_ENDPOINT_URL")}


@flow(name="e2e-extract")
def extract(n: int = 5) -> dict:
    get_run_logger().info(f"extract: {n} rows")
    return {"rows": list(range(1, n + 1)), **_where()}


@flow(name="e2e-transform")
def transform(rows: list[int]) -> dict:
    get_run_logger().info(f"transform: squaring {len(rows)} rows")
    return {"rows": [r * r for r in rows], **_where()}


@flow(name="e2e-train")
def train(rows: list[int]) -> dict:
    get_run_logger().info(f"train: fitting on {len(rows)} rows")
    return {"model": {"total": sum(rows), "count": len(rows)}, **_where()}


@flow(name="e2e-sleepy")
def sleepy(seconds: float = 60.0) -> float:
    """Runs until cancelled (the cancellation test stops its ECS task)."""
    get_run_logger().info(f"sleepy: sleeping {seconds}s")
    time.sleep(seconds)
    return seconds
