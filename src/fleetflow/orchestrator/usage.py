"""Store operations for flow run usage records (what a run used; see :mod:`fleetflow.usage`).
Mixed into :class:`~fleetflow.orchestrator.service.Orchestrator`; :class:`UsageAPI` is the part
of the client protocol they add. The record is opaque JSON here: the store imports nothing
above it, so :class:`fleetflow.usage.model.RunUsage` validates it at the edges."""

from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from ..exceptions import ConfigurationError, ObjectNotFound
from . import tables as t
from .api_protocols import UsageAPI  # noqa: F401  (its public path)
from .base import StoreBase, utcnow

_U = t.flow_run_usage
MAX_IDS = 1000  # ids per read_flow_run_usages call


class UsageMixin(StoreBase):
    def write_flow_run_usage(self, flow_run_id: str, usage: dict[str, Any]) -> None:
        if not isinstance(usage, dict):
            raise ConfigurationError("a usage record is a JSON object (fleetflow.usage.RunUsage)", field="usage")
        with self._write() as conn:
            run = conn.execute(sa.select(t.flow_runs.c.deployment_id, t.flow_runs.c.created)
                               .where(t.flow_runs.c.id == flow_run_id)).first()
            if run is None:
                raise ObjectNotFound(f"No flow run with id {flow_run_id!r}.", kind="flow run", name=flow_run_id)
            conn.execute(sa.delete(_U).where(_U.c.flow_run_id == flow_run_id))
            conn.execute(_U.insert(), {"flow_run_id": flow_run_id, "deployment_id": run.deployment_id,
                                       "usage": usage, "created": run.created or utcnow()})

    def read_flow_run_usage(self, flow_run_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            return conn.execute(sa.select(_U.c.usage).where(_U.c.flow_run_id == flow_run_id)).scalar()

    def read_flow_run_usages(self, flow_run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(flow_run_ids))
        if len(ids) > MAX_IDS:
            raise ConfigurationError(f"read_flow_run_usages takes at most {MAX_IDS} ids (got {len(ids)}); "
                                     "read them in pages", field="flow_run_ids")
        if not ids:
            return {}
        with self._read() as conn:
            rows = conn.execute(sa.select(_U.c.flow_run_id, _U.c.usage).where(_U.c.flow_run_id.in_(ids)))
            return {row.flow_run_id: row.usage for row in rows}
