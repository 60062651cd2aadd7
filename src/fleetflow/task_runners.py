"""Prefect-compatible import path for task runners (``from prefect.task_runners import ...``)."""

from .engine.runners import BaseTaskRunner, ConcurrentTaskRunner, SequentialTaskRunner

__all__ = ["BaseTaskRunner", "ConcurrentTaskRunner", "SequentialTaskRunner"]
