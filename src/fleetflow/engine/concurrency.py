"""Tag-based task concurrency limits (``fleetflow concurrency-limit create TAG N``).

A task run with a limited tag takes a slot in the store before it runs and gives it back when
it ends, so the limit holds across every process sharing the store. Waiting polls the store
(``FLEETFLOW_CONCURRENCY_POLL_INTERVAL``); a slot left by a crashed process is freed when its
task run is final (see the store's ``acquire_concurrency_slot``).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Iterator, Sequence

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI


@contextlib.contextmanager
def task_slots(client: OrchestratorAPI, tags: Sequence[str], task_run_id: str, logger: Any) -> Iterator[None]:
    """Hold one slot per limited tag of the task for the duration of the block."""
    if not tags or not hasattr(client, "acquire_concurrency_slot"):
        yield  # hot path: untagged tasks never touch the limits table
        return
    held: list[str] = []
    try:
        for tag in sorted(tags):
            if _acquire(client, tag, task_run_id, logger):
                held.append(tag)
        yield
    finally:
        for tag in held:
            client.release_concurrency_slot(tag, task_run_id)


def _acquire(client: OrchestratorAPI, tag: str, task_run_id: str, logger: Any) -> bool:
    """Wait for a slot of ``tag``; False when the tag has no limit."""
    from ..settings import get_settings

    waited = False
    while True:
        outcome = client.acquire_concurrency_slot(tag, task_run_id)
        if outcome != "full":
            return outcome == "acquired"
        if not waited:
            logger.info(f"Waiting for a concurrency slot of tag {tag!r} (limit reached)")
            waited = True
        time.sleep(get_settings().concurrency_poll_interval)
