"""The worker: claims runs of a pool, launches them, watches them, reconciles.

* :mod:`.loop` -- the asyncio loop (claim -> launch -> watch -> cancel);
* :mod:`.resolve` -- which infrastructure block a run launches on;
* :mod:`.reconcile` -- the pure decision for a run whose launch nobody is watching.

``from fleetflow.worker import Worker`` stays the public import path.
"""

from .loop import Watched, Worker, runner_command, runner_env, start_worker

__all__ = ["Watched", "Worker", "runner_command", "runner_env", "start_worker"]
