"""Pausing a work pool from the UI: every queue of the pool is paused (its ``default`` queue,
the queues its deployments use and any other queue it has), so no worker claims its runs;
resuming unpauses them all. Built on the store's work-queue operations (the claim query
already skips paused queues), so a paused pool behaves exactly like paused queues do.

A queue created later (a new deployment's) starts unpaused: pause again to include it.
"""

from __future__ import annotations

from typing import Any

from ...exceptions import ObjectAlreadyExists
from ...orchestrator.queues import DEFAULT_QUEUE


def pool_queue_names(store: Any, pool_name: str) -> set[str]:
    """Every queue the pool's runs can be in (created or not)."""
    names = {DEFAULT_QUEUE} | {q.name for q in store.read_work_queues(pool_name)}
    names |= {store.read_deployment_work_queue(d.id) for d in store.read_deployments(work_pool_name=pool_name)}
    return names


def is_paused(store: Any, pool_name: str) -> bool:
    """True when every queue of the pool exists and is paused."""
    queues = {q.name: q.is_paused for q in store.read_work_queues(pool_name)}
    return all(queues.get(name, False) for name in pool_queue_names(store, pool_name))


def set_paused(store: Any, pool_name: str, paused: bool) -> list[str]:
    """Pause (or resume) every queue of the pool; returns the queue names touched."""
    store.read_work_pool(pool_name)  # ObjectNotFound names the pools
    names = sorted(pool_queue_names(store, pool_name))
    existing = {q.name for q in store.read_work_queues(pool_name)}
    for name in names:
        if name not in existing and paused:
            try:
                store.create_work_queue(pool_name, name)
            except ObjectAlreadyExists:
                pass  # created meanwhile by someone else: pausing it below is still right
        if name in existing or paused:
            store.update_work_queue(pool_name, name, is_paused=paused)
    return names
