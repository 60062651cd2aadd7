"""Creating a flow run from a deployment: one store operation shared by ``run_deployment``,
the HTTP server, the scheduler and the web UI.

It merges the parameters onto the deployment's defaults, checks them against the stored
parameter schema, checks the infrastructure overrides (through the check registered by
:mod:`fleetflow.deployments`, which knows the block classes; the store does not import
them), and writes the parent's linking task run and the child run in one transaction,
idempotent on ``(deployment, idempotency_key)``.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any, Callable, Sequence

from ..exceptions import ObjectNotFound, ParameterValidationError
from ..states import State, StateType, utcnow
from . import transitions as tr
from .base import StoreBase, new_id
from .jsoncodec import json_dumps
from .parameter_checks import check_serialisable, check_types
from .schemas import Deployment, FlowRun

InfrastructureCheck = Callable[[Any, Deployment, FlowRun], None]
_checks: list[InfrastructureCheck] = []


def register_infrastructure_check(check: InfrastructureCheck) -> None:
    """Install ``check(store, deployment, probe_run)``: it raises (InvalidOverrideError...)
    when the run's overrides do not fit the deployment's infrastructure. Registered once by
    :mod:`fleetflow.deployments` on import."""
    if check not in _checks:
        _checks.append(check)


def check_parameters(deployment: Deployment, parameters: dict[str, Any]) -> None:
    """Unknown / missing names against the stored schema (types are checked by the runner)."""
    schema = deployment.parameter_schema or {}
    props = schema.get("properties")
    if props is None:
        return
    unknown = sorted(set(parameters) - set(props))
    if unknown and not schema.get("additionalProperties"):
        raise ParameterValidationError(
            f"{deployment.full_name} got unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(props) or 'none'}",
            field=unknown[0],
        )
    missing = sorted(set(schema.get("required", [])) - set(parameters))
    if missing:
        raise ParameterValidationError(f"{deployment.full_name} needs parameter(s) {', '.join(missing)}", field=missing[0])


def _is_integrity_error(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLAlchemy's IntegrityError (both stores raise that one). SQLAlchemy
    is not imported for the question: an exception of it cannot exist before it is loaded,
    and this module is on the plain SQLite path (a forked run's ``run_deployment``), which
    loads it only on such error paths."""
    sa = sys.modules.get("sqlalchemy")
    return sa is not None and isinstance(exc, sa.exc.IntegrityError)


class DeploymentRunsMixin(StoreBase):
    """``create_flow_run_from_deployment`` (expects the runs and deployments mixins)."""

    def create_flow_run_from_deployment(
        self,
        deployment: str,
        *,
        parameters: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        parent_flow_run_id: str | None = None,
        parent_dynamic_key: str | None = None,
        flow_run_name: str | None = None,
        scheduled_time: dt.datetime | None = None,
        infra_overrides: dict[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> FlowRun:
        dep = self._deployment_by_ref(deployment)
        params = dict(parameters or {})
        check_parameters(dep, {**dep.parameters, **params})
        check_types(dep.full_name, dep.parameter_schema, params)  # before any run exists
        check_serialisable(dep.full_name, params, json_dumps)
        overrides = dict(infra_overrides or {})
        probe = FlowRun(id="", name="", flow_name=dep.flow_name, work_pool_name=dep.work_pool_name, infra_overrides=overrides)
        for check in _checks:
            check(self, dep, probe)  # bad overrides fail here, before a run exists
        link_key = f"run_deployment:{dep.full_name}"
        if parent_flow_run_id is not None:
            dynamic = parent_dynamic_key or "0"
            idempotency_key = idempotency_key or f"{parent_flow_run_id}:{link_key}:{dynamic}"
        if idempotency_key is not None and (existing := self._find_idempotent(dep.id, idempotency_key)):  # type: ignore[attr-defined]
            return existing
        when = scheduled_time or utcnow()
        state = State(type=StateType.SCHEDULED, data={"scheduled_time": when.isoformat()})
        run = {
            "name": flow_run_name, "parameters": params, "deployment_id": dep.id, "work_pool_name": dep.work_pool_name,
            "idempotency_key": idempotency_key, "infra_overrides": overrides, "tags": list(tags or dep.tags),
            "expected_start_time": scheduled_time,
        }  # fmt: skip
        try:
            return self._insert_linked_run(dep.flow_name, state, run, parent_flow_run_id, link_key, parent_dynamic_key)
        except Exception as exc:
            if not _is_integrity_error(exc):
                raise
            if parent_flow_run_id is not None:
                self.read_flow_run(parent_flow_run_id)  # type: ignore[attr-defined]  # ObjectNotFound for a bad parent
            if idempotency_key is not None and (existing := self._find_idempotent(dep.id, idempotency_key)):  # type: ignore[attr-defined]
                return existing  # another caller created it between our check and insert
            raise

    def _deployment_by_ref(self, ref: str) -> Deployment:
        """By 'flow-name/deployment-name', or by id; a bare name gets a hint about the full form."""
        if "/" in ref:
            return self.read_deployment_by_name(ref)  # type: ignore[attr-defined]
        try:
            return self.read_deployment(ref)  # type: ignore[attr-defined]
        except ObjectNotFound:
            matches = [d.full_name for d in self.read_deployments() if d.name == ref]  # type: ignore[attr-defined]
            hint = f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""
            raise ObjectNotFound(
                f"No deployment {ref!r}: deployments are named 'flow-name/deployment-name' "
                f"(see `fleetflow deployment ls`){hint}", kind="deployment", name=ref,
            ) from None

    def _insert_linked_run(
        self, flow_name: str, state: State, run: dict[str, Any], parent_flow_run_id: str | None, link_key: str,
        dynamic: str | None,
    ) -> FlowRun:
        """The parent's task run (PENDING -> RUNNING) and the child run, one transaction."""
        from . import tables as t  # the Core path's (its store has loaded SQLAlchemy)
        from .runs import _run_name, flow_run_from_row  # the runs mixin's helpers

        run_id, parent_task_run_id = new_id(), None
        with self._write() as conn:
            if parent_flow_run_id is not None:
                parent_task_run_id = new_id()
                history = [State(type=StateType.PENDING), State(type=StateType.RUNNING)]
                conn.execute(t.task_runs.insert(), {
                    "id": parent_task_run_id, "flow_run_id": parent_flow_run_id, "task_key": link_key,
                    "name": link_key.removeprefix("run_deployment:"), "dynamic_key": dynamic or "0", "cache_key": None,
                    "created": utcnow(), **tr.initial_columns(history),
                })  # fmt: skip
                conn.execute(t.states.insert(), tr.history_rows(history, task_run_id=parent_task_run_id))
            values = {
                **run, "id": run_id, "name": run["name"] or _run_name(), "flow_name": flow_name,
                "parent_task_run_id": parent_task_run_id, "parent_flow_run_id": parent_flow_run_id,
                "infrastructure": {}, "created": utcnow(), **tr.initial_columns([state]),
            }  # fmt: skip
            row = conn.execute(t.flow_runs.insert().values(values).returning(*t.flow_runs.c)).one()
            conn.execute(t.states.insert(), tr.history_rows([state], flow_run_id=run_id))
        return flow_run_from_row(row)
