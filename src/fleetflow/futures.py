"""Prefect-compatible ``prefect.futures``: ``PrefectFuture`` is fleetflow's TaskFuture."""

from .engine.futures import PrefectFuture, TaskFuture, allow_failure, resolve_futures, wait_all

__all__ = ["PrefectFuture", "TaskFuture", "allow_failure", "resolve_futures", "wait_all"]
