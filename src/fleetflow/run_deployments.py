"""``run_deployment``: launch a deployment as a (linked) child run and wait for it.

Waiting is the client's long-poll (``wait_for_flow_run``): over HTTP one request that returns
when the child is final, instead of a request storm; embedded, woken by the commit that makes
the child final (SQLite), with every waiting thread of the process sharing one check
(:mod:`fleetflow.orchestrator.waiting`).
``run_deployments`` fans out many children and waits for all of them in one loop, with no
thread per child; in async code ``await asyncio.gather(*[run_deployment(...)...])`` works
the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import warnings
from typing import Any, Iterable, Sequence

from . import states as st
from .exceptions import InvalidStateTransition, ObjectNotFound, RunFailed
from .orchestrator.parameter_checks import check_serialisable
from .client.protocol import OrchestratorAPI
from .orchestrator.schemas import FlowRun
from .orchestrator.jsoncodec import json_dumps

STALE_POOL_SECONDS = 30.0
_warned_pools: set[str] = set()  # one "no worker" warning per pool per process, not one per run


def reset_no_worker_warnings() -> None:
    """Forget which pools were already warned about, so the next run warns again (tests and
    long-lived processes that switch stores use this)."""
    _warned_pools.clear()


def _warn_if_no_worker(client: OrchestratorAPI, pool_name: str | None) -> None:
    if not pool_name or pool_name in _warned_pools:
        return
    try:
        pool = client.read_work_pool(pool_name)
    except ObjectNotFound:
        return
    if pool.is_paused:
        _warned_pools.add(pool_name)
        warnings.warn(f"work pool {pool_name!r} is paused; the run will wait until it is resumed: "
                      f"`fleetflow work-pool resume {pool_name}`", stacklevel=3)
        return
    age = (st.utcnow() - pool.last_polled).total_seconds() if pool.last_polled else None
    if age is None or age > STALE_POOL_SECONDS:
        _warned_pools.add(pool_name)
        since = f"since {pool.last_polled:%Y-%m-%d %H:%M:%S} UTC" if pool.last_polled else "ever"
        warnings.warn(
            f"no worker has polled work pool {pool_name!r} {since}; the run will wait until one starts: "
            f"`fleetflow worker start --pool {pool_name}`",
            stacklevel=3,
        )


def create_deployment_run(
    name: str,
    parameters: dict[str, Any] | None = None,
    *,
    tags: Sequence[str] | None = None,
    idempotency_key: str | None = None,
    flow_run_name: str | None = None,
    scheduled_time: dt.datetime | None = None,
    infra_overrides: dict[str, Any] | None = None,
    as_subflow: bool = True,
    client: OrchestratorAPI | None = None,
) -> tuple[FlowRun, str | None]:
    """Create the SCHEDULED child run (one store operation); returns it and the parent's
    linking task run id (if linked)."""
    from .worker import resolve  # noqa: F401 - registers the store's infrastructure check
    from .client import get_client
    from .engine.context import flow_run_ctx

    client = client or get_client()
    params = {**(parameters or {})}
    # The store operation (create_flow_run_from_deployment) finds the deployment (an id or
    # 'flow/name', with its hint for a bare name) and checks the types, before any run exists;
    # serialisability is checked here too, because over HTTP a value that cannot be encoded
    # would fail inside the client's request encoding instead of naming the parameter.
    check_serialisable(name, params, json_dumps)
    ctx = flow_run_ctx.get() if as_subflow else None
    parent_id = dynamic = None
    if ctx is not None:
        parent_id, dynamic = ctx.flow_run.id, ctx.next_dynamic_key(f"run_deployment:{name}")
    run = client.create_flow_run_from_deployment(
        name, parameters=params, idempotency_key=idempotency_key, parent_flow_run_id=parent_id,
        parent_dynamic_key=dynamic, flow_run_name=flow_run_name, scheduled_time=scheduled_time,
        infra_overrides=infra_overrides, tags=tags,
    )  # fmt: skip
    _warn_if_no_worker(client, run.work_pool_name)
    return run, run.parent_task_run_id


def _finish_parent_task(client: OrchestratorAPI, parent_task_run_id: str | None, run: FlowRun) -> None:
    if parent_task_run_id and run.state is not None:
        try:
            client.set_task_run_state(parent_task_run_id, run.state.model_copy())
        except InvalidStateTransition:
            pass


def _outcome(client: OrchestratorAPI, run: FlowRun, parent_task_run_id: str | None, raise_on_failure: bool) -> FlowRun:
    if run.state is not None and run.state.is_final:
        _finish_parent_task(client, parent_task_run_id, run)
        if raise_on_failure and not run.state.is_completed():
            raise RunFailed(
                f"child flow run {run.name!r} ({run.id}) ended {run.state.type.value}: {run.state.message}",
                run_id=run.id, state=run.state,
            )
    return run


def _start(name: str, parameters: Any, timeout: float | None, poll_interval: float | None,
           kwargs: dict[str, Any]) -> tuple[Any, FlowRun, str | None, float, float | None]:
    """Create the child run; returns the client, the run, the parent task, poll interval, deadline."""
    from .client import get_client
    from .settings import get_settings

    client = get_client()
    run, parent_task = create_deployment_run(name, parameters, client=client, **kwargs)
    interval = poll_interval or get_settings().run_deployment_poll_interval
    deadline = None if timeout is None else time.monotonic() + timeout
    return client, run, parent_task, interval, deadline


def _waiting(run: FlowRun, deadline: float | None) -> bool:
    return not (run.state and run.state.is_final) and (deadline is None or time.monotonic() < deadline)


def _wait_chunk(deadline: float | None) -> float:
    """Seconds of the next long-poll: up to 30, never past the deadline."""
    return 30.0 if deadline is None else max(0.0, min(30.0, deadline - time.monotonic()))


def _sync_run_deployment(name: str, parameters: Any, timeout: float | None, poll_interval: float | None,
                         raise_on_failure: bool, **kwargs: Any) -> FlowRun:
    client, run, parent_task, interval, deadline = _start(name, parameters, timeout, poll_interval, kwargs)
    if timeout == 0:
        return run
    while _waiting(run, deadline):
        run = client.wait_for_flow_run(run.id, timeout=_wait_chunk(deadline))
    return _outcome(client, run, parent_task, raise_on_failure)


async def _async_run_deployment(name: str, parameters: Any, timeout: float | None, poll_interval: float | None,
                                raise_on_failure: bool, **kwargs: Any) -> FlowRun:
    client, run, parent_task, interval, deadline = _start(name, parameters, timeout, poll_interval, kwargs)
    if timeout == 0:
        return run
    while _waiting(run, deadline):
        await asyncio.sleep(0)  # let other children's coroutines create their runs first
        run = await asyncio.to_thread(client.wait_for_flow_run, run.id, timeout=min(_wait_chunk(deadline), 1.0))
    return _outcome(client, run, parent_task, raise_on_failure)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def run_deployment(
    name: str,
    parameters: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    poll_interval: float | None = None,
    tags: Sequence[str] | None = None,
    idempotency_key: str | None = None,
    flow_run_name: str | None = None,
    scheduled_time: dt.datetime | None = None,
    infra_overrides: dict[str, Any] | None = None,
    as_subflow: bool = True,
    raise_on_failure: bool = True,
) -> Any:
    """Run ``'flow-name/deployment-name'`` through its work pool and return the FlowRun.

    Inside a flow the child is linked to the calling run. ``timeout=0`` returns at once; a
    FAILED/CRASHED child raises :class:`RunFailed` unless ``raise_on_failure=False``. Called
    from a running event loop it returns an awaitable (like Prefect's ``sync_compatible``).
    """
    kwargs = dict(tags=tags, idempotency_key=idempotency_key, flow_run_name=flow_run_name,
                  scheduled_time=scheduled_time, infra_overrides=infra_overrides, as_subflow=as_subflow)
    if _in_event_loop():
        return _async_run_deployment(name, parameters, timeout, poll_interval, raise_on_failure, **kwargs)
    return _sync_run_deployment(name, parameters, timeout, poll_interval, raise_on_failure, **kwargs)


def run_deployments(
    requests: Iterable[tuple[str, dict[str, Any] | None] | dict[str, Any]],
    *,
    timeout: float | None = None,
    raise_on_failure: bool = True,
) -> list[FlowRun]:
    """Fan out: create every child first, then wait for them with one long-poll at a time.

    ``requests`` items are ``(name, parameters)`` pairs or dicts of ``run_deployment``
    keyword arguments (``{"name": ..., "parameters": ..., "infra_overrides": ...}``).
    """
    from .client import get_client

    client = get_client()
    created = []
    for req in requests:
        kw = dict(req) if isinstance(req, dict) else {"name": req[0], "parameters": req[1]}
        created.append(create_deployment_run(kw.pop("name"), kw.pop("parameters", None), client=client, **kw))
    runs = {run.id: run for run, _ in created}
    deadline = None if timeout is None else time.monotonic() + timeout
    for rid in runs:  # one long-poll at a time: children finishing meanwhile return at once
        while _waiting(runs[rid], deadline):
            runs[rid] = client.wait_for_flow_run(rid, timeout=_wait_chunk(deadline))
    results = [_outcome(client, runs[run.id], parent, False) for run, parent in created]
    failed = [r for r in results if r.state and r.state.is_final and not r.state.is_completed()]
    if raise_on_failure and failed:
        first = failed[0]
        raise RunFailed(f"{len(failed)} of {len(results)} child runs failed; first: {first.name!r} ended "
                        f"{first.state.type.value}: {first.state.message}", run_id=first.id, state=first.state)
    return results
