"""The flagship example: three sub-flows, three sizes, data passed through results.

``ml_pipeline`` (the parent) runs each step as its own deployment; a worker launches each
one as its own process (or ECS task) with its own cpu/memory. The computation is small but
real: a synthetic regression data set, standardisation, and gradient-descent training.
"""

from __future__ import annotations

import math
import os
import random

from fleetflow import flow, get_run_logger, task
from fleetflow.deployments import run_deployment


@task
def make_rows(n: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    true_w = [2.0, -3.0, 0.5]
    rows = []
    for _ in range(n):
        x = [rng.gauss(0, 1) * s for s in (1.0, 10.0, 100.0)]
        y = sum(w * xi for w, xi in zip(true_w, x)) + 4.0 + rng.gauss(0, 0.1)
        rows.append(x + [y])
    return rows


@flow(name="fetch-data", log_prints=True)
def fetch_data(n: int = 2000, seed: int = 7) -> list[list[float]]:
    """Produce the raw data set (stands in for a download from a warehouse)."""
    rows = make_rows(n, seed)
    print(f"fetched {len(rows)} rows in process {os.getpid()}")
    return rows


@task
def column_stats(rows: list[list[float]]) -> list[tuple[float, float]]:
    cols = list(zip(*rows))[:-1]
    stats = []
    for col in cols:
        mean = sum(col) / len(col)
        std = math.sqrt(sum((v - mean) ** 2 for v in col) / len(col)) or 1.0
        stats.append((mean, std))
    return stats


@flow(name="preprocess", log_prints=True)
def preprocess(rows: list[list[float]]) -> dict:
    """Standardise the features so training converges."""
    stats = column_stats(rows)
    scaled = [[(v - m) / s for v, (m, s) in zip(r[:-1], stats)] + [r[-1]] for r in rows]
    print(f"standardised {len(scaled)} rows x {len(stats)} features in process {os.getpid()}")
    return {"rows": scaled, "stats": stats}


@flow(name="train", log_prints=True)
def train(rows: list[list[float]], epochs: int = 200, lr: float = 0.1) -> dict:
    """Full-batch gradient descent for linear regression; returns weights and the final MSE."""
    n_features = len(rows[0]) - 1
    w, b = [0.0] * n_features, 0.0
    for _ in range(epochs):
        gw, gb = [0.0] * n_features, 0.0
        for r in rows:
            err = sum(wi * xi for wi, xi in zip(w, r)) + b - r[-1]
            gw = [g + err * xi for g, xi in zip(gw, r)]
            gb += err
        w = [wi - lr * g / len(rows) for wi, g in zip(w, gw)]
        b -= lr * gb / len(rows)
    mse = sum((sum(wi * xi for wi, xi in zip(w, r)) + b - r[-1]) ** 2 for r in rows) / len(rows)
    print(f"trained {epochs} epochs in process {os.getpid()}: mse={mse:.4f}")
    return {"weights": w, "bias": b, "mse": mse}


@flow(name="ml-pipeline")
def ml_pipeline(n: int = 2000) -> dict:
    """Parent flow: each step is its own deployment, so its own process/container and size."""
    logger = get_run_logger()
    raw = run_deployment("fetch-data/fetch", parameters={"n": n}).result()
    prepared = run_deployment("preprocess/preprocess", parameters={"rows": raw}).result()
    model = run_deployment("train/train", parameters={"rows": prepared["rows"]}).result()
    logger.info(f"model mse={model['mse']:.4f}")
    return {"mse": model["mse"], "bias": model["bias"]}
