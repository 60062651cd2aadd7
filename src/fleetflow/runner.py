"""What runs inside a launched process or container: ``python -m fleetflow.runner <flow-run-id>``.

Claim the launch attempt (PENDING -> RUNNING only for this runner's token: a duplicate or
stale runner exits with EXIT_STALE_LAUNCH before any user code runs), read the deployment,
fetch the code bundle (one object, digest verified, cached), import the entrypoint, run the
flow with the run's parameters while renewing the run's lease, and report. A fetch failure
CRASHes the run, an import failure FAILs it, both with the reason; out-of-memory CRASHes it
with the limit and exits with a code the worker recognises.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import states as st
from .entrypoints import load_flow_from_entrypoint
from .exceptions import FleetflowError, InvalidStateTransition
from .exceptions import StaleLaunch
from .faults import fault
from .infrastructure.base import EXIT_CRASHED, EXIT_FAILED, EXIT_OK, EXIT_OUT_OF_MEMORY, EXIT_STALE_LAUNCH

if TYPE_CHECKING:
    from .client.protocol import OrchestratorAPI

__all__ = ["EXIT_CRASHED", "EXIT_FAILED", "EXIT_OK", "EXIT_OUT_OF_MEMORY", "EXIT_STALE_LAUNCH",
           "claim_attempt", "load_flow_from_entrypoint", "main", "run"]


def code_root(client: OrchestratorAPI, deployment: Any) -> Path:
    """The folder holding the deployment's code: a fetched bundle or a local path (serve)."""
    from .blocks import Block
    from .bundles import fetch_bundle
    from .settings import get_settings

    if deployment.bundle_digest and deployment.storage_block:
        storage = Block.load(deployment.storage_block, client=client)
        root = fetch_bundle(deployment.bundle_digest, storage, get_settings().resolved_bundle_cache_dir())
    elif deployment.path:
        root = Path(deployment.path)
    else:
        raise FleetflowError(f"deployment {deployment.full_name!r} has neither a code bundle nor a path")
    return root.resolve()


def _mark(client: OrchestratorAPI, flow_run_id: str, state: st.State) -> None:
    try:
        client.set_flow_run_state(flow_run_id, state)
    except InvalidStateTransition:
        pass


def claim_attempt(client: OrchestratorAPI, flow_run_id: str) -> Any:
    """Move the run to RUNNING for this runner's launch attempt (FLEETFLOW_LAUNCH_TOKEN) and
    take its lease; raises StaleLaunch when another attempt owns it. Without a token (a run
    started by hand) the engine moves it to RUNNING as for any flow."""
    from .engine.lease import keeper, process_owner
    from .settings import get_settings

    token = os.environ.get("FLEETFLOW_LAUNCH_TOKEN")
    if not token:
        return client.read_flow_run(flow_run_id)
    # A process launch records its own handle: a pre-started runner is then findable even if
    # the worker died before saving it (its token is not in the process's initial environment).
    handle = process_owner() if os.environ.get("FLEETFLOW_LAUNCH_KIND") == "process" else None
    run = client.claim_launch(flow_run_id, token, process_owner(), lease_seconds=get_settings().lease_seconds,
                              handle=handle)
    keeper.hold(client, run.id)  # from now on: fetching a large bundle must not lapse the lease
    return run


def _refuse(client: OrchestratorAPI, flow_run_id: str, exc: StaleLaunch) -> int:
    """Say why this runner ran nothing: on stderr and in the run's logs."""
    import logging

    from .orchestrator.schemas import LogRecord
    from .states import utcnow

    print(f"fleetflow runner: {exc}", file=sys.stderr, flush=True)
    try:
        client.write_logs([LogRecord(flow_run_id=flow_run_id, level=logging.WARNING, name="fleetflow.runner",
                                     message=str(exc), timestamp=utcnow())])
    except Exception:  # noqa: BLE001 - the refusal stands even if the note cannot be written
        pass
    return EXIT_STALE_LAUNCH


def _out_of_memory(client: Any, flow_run_id: str, when: str) -> int:
    """An out-of-memory death is reported as such, not as a fetch or import failure."""
    limit = os.environ.get("FLEETFLOW_MEMORY_LIMIT_MIB")
    where = f"its memory limit of {limit} MiB" if limit else "the memory available"
    _mark(client, flow_run_id, st.Crashed(message=f"out of memory {when}: the run exceeded {where}"))
    return EXIT_OUT_OF_MEMORY


def _token_from_secret() -> None:
    """An ECS launch over HTTP names its run token's Secrets Manager secret instead of carrying
    it (never a plain environment variable): read it with the task role before connecting."""
    if os.environ.get("FLEETFLOW_API_KEY_SECRET_ARN") and not os.environ.get("FLEETFLOW_API_KEY"):
        from .aws.run_token_secrets import resolve_token_from_environment
        from .settings import reset_settings

        resolve_token_from_environment()
        reset_settings()  # the client reads FLEETFLOW_API_KEY from the settings


def run(flow_run_id: str) -> int:
    """Execute one flow run; returns the process exit code."""
    from .client import get_client
    from .engine.flow_engine import FlowRunEngine
    from .usage.recorder import UsageRecorder

    _token_from_secret()
    client = get_client()
    try:
        flow_run = claim_attempt(client, flow_run_id)
    except StaleLaunch as exc:
        return _refuse(client, flow_run_id, exc)
    fault("runner.after_claim")
    recorder = UsageRecorder.start(client, flow_run_id)
    deployment = client.read_deployment(flow_run.deployment_id)
    if recorder is not None:
        recorder.deployment_name = deployment.full_name  # its fit warnings name it: no second read
    try:
        root = code_root(client, deployment)
    except MemoryError:
        return _out_of_memory(client, flow_run_id, "while fetching the code")
    except Exception as exc:
        _mark(client, flow_run_id, st.Crashed(message=f"could not fetch the code: {type(exc).__name__}: {exc}"))
        return EXIT_CRASHED
    try:
        os.chdir(root)
        flow = load_flow_from_entrypoint(deployment.entrypoint, root)
    except MemoryError:
        return _out_of_memory(client, flow_run_id, f"while importing {deployment.entrypoint}")
    except Exception as exc:
        _mark(client, flow_run_id, st.Failed(message=f"could not import {deployment.entrypoint}: {type(exc).__name__}: {exc}"))
        return EXIT_FAILED
    parameters = {**deployment.parameters, **flow_run.parameters}
    engine = FlowRunEngine(flow, parameters, client, flow_run=flow_run)
    engine.before_final = recorder.finish if recorder else None
    try:
        if flow.is_async:
            asyncio.run(engine.run_async())
        else:
            engine.run_sync()
    except MemoryError:
        return EXIT_OUT_OF_MEMORY
    except BaseException:
        return EXIT_FAILED
    return EXIT_OK


def _apply_assignment(message: dict[str, Any]) -> str:
    """Become the process a cold launch would have been: env, memory limit, cwd, output."""
    from .settings import reset_settings

    for key, value in message.get("env", {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_settings()
    if message.get("memory_mib"):
        import resource

        limit = int(message["memory_mib"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if message.get("cwd"):
        os.chdir(message["cwd"])
    if not message.get("stream_output", True):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    return message["flow_run_id"]


def _say_ready() -> None:
    """Tell the worker's warm pool the imports are done (one byte on the pipe it passed)."""
    from .infrastructure.warm_pool import READY_FD_ENV

    fd = os.environ.pop(READY_FD_ENV, None)  # the run must not inherit it
    if fd and fd.isdigit():
        try:
            os.write(int(fd), b"1")
            os.close(int(fd))
        except OSError:
            pass  # the worker went away; stdin tells us soon enough


def warm_main() -> int:
    """Pre-started runner: import everything now, then wait for one assignment on stdin.

    The worker keeps one of these ready so a launch skips Python start-up and the imports
    (~0.5 s of SQLAlchemy, pydantic and fleetflow), which dominate sub-flow latency locally.
    """
    import json

    from . import bundles, client, flows  # noqa: F401  (the point is to import them now)
    from .blocks.base import load_builtin_blocks
    from .engine import flow_engine  # noqa: F401

    load_builtin_blocks()
    try:
        # Usually the run's store is the worker's (inherited env): connect and migrate-check
        # now; the client cache is keyed by URL, so a different assignment still gets its own.
        store = getattr(client.get_client(), "store", None)
        # A launched run claims its attempt and reads its deployment and blocks through the
        # SQLAlchemy store, which the plain SQLite path loads on first need: load it now.
        getattr(store, "full_store", lambda: None)()
    except Exception:
        pass
    _say_ready()
    line = sys.stdin.readline()
    if not line.strip():
        return EXIT_OK  # the worker closed the pipe: it is shutting down
    return run(_apply_assignment(json.loads(line)))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--warm"]:
        raise SystemExit(warm_main())
    if args[:1] == ["--fork-server"]:
        from .fork_template import main as fork_server_main

        from .fork_template import exit_child

        outcome = fork_server_main()
        if isinstance(outcome, str):  # a forked child: run the assignment
            exit_child(run(outcome))
        raise SystemExit(outcome)
    flow_run_id = args[0] if args else os.environ.get("FLEETFLOW_FLOW_RUN_ID")
    if not flow_run_id:
        print("usage: python -m fleetflow.runner <flow-run-id>", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(run(flow_run_id))


if __name__ == "__main__":
    main()
