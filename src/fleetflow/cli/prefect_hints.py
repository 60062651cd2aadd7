"""Suggestions for Prefect 2 options fleetflow spells differently.

When click refuses an option (``No such option: --work-pool``) and the option is one a
Prefect user would type, the error gains one line naming the fleetflow equivalent.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

# Prefect 2 option -> what to use in fleetflow.
PREFECT_OPTIONS: dict[str, str] = {
    "--work-pool": "use -p/--pool POOL",
    "--job-variable": "use --override key=value (infra_overrides)",
    "--jv": "use --override key=value (infra_overrides)",
    "--type": "a worker's type comes from its pool: fleetflow work-pool create NAME --type process|ecs",
    "-t": "on `worker start`, the pool decides the type; on `deployment build`, -t/--tag adds a tag",
    "--prefetch-seconds": "workers claim runs when they are due; there is nothing to prefetch",
    "--run-once": "use `fleetflow scheduler --once` for schedules, or stop the worker after its runs",
    "--limit-concurrency": "use --limit N",
    "--ib": "use -ib/--infra-block TYPE/NAME",
    "--sb": "use -sb/--storage-block TYPE/NAME",
    "--override-file": "pass several --override key=value options",
    "--param-file": "use --params '{\"name\": value}' with the file's JSON",
    "--api-key": "set FLEETFLOW_API_URL (and the server's key); there is no per-command key",
    "--watch-interval": "--watch follows the run as it happens",
    "--match": "pass the full 'flow-name/deployment-name'",
}


def hint_for(option: str) -> str | None:
    return PREFECT_OPTIONS.get(option.split("=", 1)[0])


@contextlib.contextmanager
def add_prefect_hint() -> Iterator[None]:
    """Append the Prefect hint to click's 'No such option' error, when there is one."""
    try:
        yield
    except Exception as exc:
        if type(exc).__name__ == "NoSuchOption":
            hint = hint_for(getattr(exc, "option_name", "") or "")
            if hint:
                exc.message = f"{exc.message}\n(Prefect 2 option: {hint}.)"
        raise
