"""The worker: claims runs of a pool, launches them, watches them, reconciles.

* :mod:`.loop` -- the asyncio loop (claim -> launch -> watch -> cancel);
* :mod:`.resolve` -- which infrastructure block a run launches on;
* :mod:`.reconcile` -- the pure decision for a run whose launch nobody is watching.

``from fleetflow.worker import Worker`` stays the public import path.
"""

from typing import Any

__all__ = ["Watched", "Worker", "runner_command", "runner_env", "start_worker"]


def __getattr__(name: str) -> Any:
    """The loop's names, imported on first use: ``fleetflow.deployments`` needs only
    :mod:`.resolve`, and a flow calling ``run_deployment`` should not load the worker's loop."""
    if name in __all__:
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
