"""Store operations behind Prefect 2's smaller features: artifacts, variables and tag-based
task concurrency limits. Mixed into :class:`~fleetflow.orchestrator.service.Orchestrator`;
:class:`ExtrasAPI` is the part of the client protocol they add.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa

from ..exceptions import ObjectAlreadyExists, ObjectNotFound
from . import tables as t
from .api_protocols import Artifact, ConcurrencyLimit, ExtrasAPI, SlotOutcome, Variable  # noqa: F401  (public paths)
from .base import StoreBase, new_id, utcnow

_A, _V, _CL, _CS, _TR = t.artifacts, t.variables, t.concurrency_limits, t.concurrency_slots, t.task_runs
_FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
def _model(model: type[Any], row: Any) -> Any:
    m = row._mapping
    return model(**{name: m[name] for name in model.model_fields if name in m})


class ArtifactsMixin(StoreBase):
    def create_artifact(self, type: str, data: Any, *, key: str | None = None, description: str | None = None,
                        flow_run_id: str | None = None, task_run_id: str | None = None) -> Artifact:
        values = dict(id=new_id(), key=key, type=type, description=description, data=data,
                      flow_run_id=flow_run_id, task_run_id=task_run_id, created=utcnow())
        with self._write() as conn:
            conn.execute(_A.insert(), values)
        return Artifact(**values)

    def read_artifacts(self, *, key: str | None = None, flow_run_id: str | None = None, limit: int = 200) -> list[Artifact]:
        query = sa.select(_A).order_by(_A.c.created.desc(), _A.c.id).limit(limit)
        if key is not None:
            query = query.where(_A.c.key == key)
        if flow_run_id is not None:
            query = query.where(_A.c.flow_run_id == flow_run_id)
        with self._read() as conn:
            return [_model(Artifact, r) for r in conn.execute(query)]


class VariablesMixin(StoreBase):
    def set_variable(self, name: str, value: str, *, tags: Sequence[str] = (), overwrite: bool = False) -> Variable:
        now = utcnow()
        stmt = self._insert(_V).values(id=new_id(), name=name, value=value, tags=list(tags), created=now, updated=now)
        if overwrite:
            stmt = stmt.on_conflict_do_update(index_elements=[_V.c.name],
                                              set_={"value": stmt.excluded.value, "tags": stmt.excluded.tags, "updated": now})
        try:
            with self._write() as conn:
                row = conn.execute(stmt.returning(*_V.c)).one()
        except sa.exc.IntegrityError:
            raise ObjectAlreadyExists(
                f"a variable named {name!r} already exists; pass overwrite=True (CLI: --overwrite) to replace it"
            ) from None
        return _model(Variable, row)

    def read_variable(self, name: str) -> Variable | None:
        with self._read() as conn:
            row = conn.execute(sa.select(_V).where(_V.c.name == name)).first()
        return _model(Variable, row) if row is not None else None

    def read_variables(self) -> list[Variable]:
        with self._read() as conn:
            return [_model(Variable, r) for r in conn.execute(sa.select(_V).order_by(_V.c.name))]

    def delete_variable(self, name: str) -> None:
        with self._write() as conn:
            deleted = conn.execute(sa.delete(_V).where(_V.c.name == name)).rowcount
        if not deleted:
            raise ObjectNotFound(f"no variable named {name!r}; `fleetflow variable ls` lists them", kind="variable", name=name)


class ConcurrencyMixin(StoreBase):
    def create_concurrency_limit(self, tag: str, limit: int) -> ConcurrencyLimit:
        """Create or change the limit of ``tag`` (Prefect's ``concurrency-limit create`` upserts)."""
        stmt = self._insert(_CL).values(tag=tag, concurrency_limit=limit, created=utcnow())
        stmt = stmt.on_conflict_do_update(index_elements=[_CL.c.tag], set_={"concurrency_limit": limit})
        with self._write() as conn:
            conn.execute(stmt)
        return next(c for c in self.read_concurrency_limits() if c.tag == tag)

    def read_concurrency_limits(self) -> list[ConcurrencyLimit]:
        with self._read() as conn:
            limits = conn.execute(sa.select(_CL).order_by(_CL.c.tag)).all()
            slots = conn.execute(sa.select(_CS.c.tag, _CS.c.task_run_id)).all()
        held: dict[str, list[str]] = {}
        for tag, task_run_id in slots:
            held.setdefault(tag, []).append(task_run_id)
        return [ConcurrencyLimit(tag=r.tag, concurrency_limit=r.concurrency_limit, created=r.created,
                                 active_slots=sorted(held.get(r.tag, []))) for r in limits]

    def delete_concurrency_limit(self, tag: str) -> None:
        with self._write() as conn:
            deleted = conn.execute(sa.delete(_CL).where(_CL.c.tag == tag)).rowcount
            conn.execute(sa.delete(_CS).where(_CS.c.tag == tag))
        if not deleted:
            raise ObjectNotFound(f"no concurrency limit for tag {tag!r}; `fleetflow concurrency-limit ls` lists them",
                                 kind="concurrency-limit", name=tag)

    def acquire_concurrency_slot(self, tag: str, task_run_id: str) -> SlotOutcome:
        with self._write() as conn:
            query = sa.select(_CL.c.concurrency_limit).where(_CL.c.tag == tag)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()  # serialises acquirers of one tag
            limit = conn.execute(query).scalar()
            if limit is None:
                return "unlimited"
            self._free_stale_slots(conn, tag)
            holders = set(conn.execute(sa.select(_CS.c.task_run_id).where(_CS.c.tag == tag)).scalars())
            if task_run_id in holders:
                return "acquired"
            if len(holders) >= limit:
                return "full"
            conn.execute(_CS.insert(), {"tag": tag, "task_run_id": task_run_id, "acquired": utcnow()})
            return "acquired"

    @staticmethod
    def _free_stale_slots(conn: sa.Connection, tag: str) -> None:
        """Slots whose task run is already final (its process died holding them)."""
        final = sa.select(_TR.c.id).where(_TR.c.state_type.in_(_FINAL))
        conn.execute(sa.delete(_CS).where(_CS.c.tag == tag, _CS.c.task_run_id.in_(final)))

    def release_concurrency_slot(self, tag: str, task_run_id: str) -> None:
        with self._write() as conn:
            conn.execute(sa.delete(_CS).where(_CS.c.tag == tag, _CS.c.task_run_id == task_run_id))
