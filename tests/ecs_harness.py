"""What the tests that run flows on ECS through the emulator share: a worker in a thread, the
containers' output on failure and the store URL the containers should receive.

Plain classes and functions (no pytest imports), like ``aws_server.py``; used by
``tests/e2e/test_ecs_end_to_end.py`` and ``tests/proof_pipeline.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecs_emulator import ECSEmulator


class WorkerThread:
    """``fleetflow.worker.Worker(pool, name=name).run()`` on its own event loop in a background
    thread (the thread has the worker's name)."""

    def __init__(self, pool: str, name: str, *, client: Any = None) -> None:
        self.pool = pool
        self.name = name
        self.client = client  # None: the process-wide client
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> "WorkerThread":
        self._thread.start()
        assert self._ready.wait(10), "the worker thread did not start"
        return self

    def _main(self) -> None:
        from fleetflow.worker import Worker

        self.loop = asyncio.new_event_loop()
        self.worker = Worker(self.pool, name=self.name, poll_interval=0.1, client=self.client)
        self._ready.set()
        try:
            self.loop.run_until_complete(self.worker.run())
        except BaseException as exc:  # surfaced by the test
            self.error = exc
        finally:
            self.loop.close()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.worker.stop)
            self._thread.join(timeout=30)


@contextlib.contextmanager
def show_containers_on_failure(emulator: "ECSEmulator", context: Callable[[], str] | None = None) -> Iterator[None]:
    """On failure, print ``context()`` (if given), then what each emulated container printed and
    the emulator's errors (pytest shows it); the failure is re-raised."""
    try:
        yield
    except BaseException:
        if context is not None:
            print(context())
        for launch in emulator.launched:
            print(f"--- container output of {launch['task_arn']} ({launch['command']}):")
            print(emulator.output(launch["task_arn"])[-4000:])
        print(f"--- emulator errors: {emulator.errors!r}")
        raise


def resolved_store_url() -> str:
    """The store URL of the test's settings: what every container must end up with."""
    from fleetflow.settings import get_settings

    return get_settings().resolved_database_url()
