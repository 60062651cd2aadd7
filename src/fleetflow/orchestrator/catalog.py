"""Everything that is not a run: logs, the task result cache, blocks, deployments, work pools
and workers. Named objects raise ObjectNotFound messages that list what does exist, so a typo
is fixed from the message alone."""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import sqlalchemy as sa

from ..exceptions import BlockAlreadyExists, BlockNotFound, ObjectAlreadyExists, ObjectNotFound
from . import tables as t
from .base import StoreBase, new_id, utcnow
from .names import check_name
from .schemas import BlockDocument, Deployment, LogRecord, Worker, WorkPool

_L, _C, _B, _D, _P, _W = t.logs, t.task_cache, t.block_documents, t.deployments, t.work_pools, t.workers
_INSERT_LOGS = _L.insert()
LOG_COLUMNS = ("flow_run_id", "task_run_id", "level", "name", "message", "timestamp")
_MAX_LISTED = 20


def _model(model: type[Any], row: sa.Row[Any]) -> Any:
    m = row._mapping
    return model(**{name: m[name] for name in model.model_fields if name in m})


def _names_hint(names: Sequence[str], wanted: str, what: str, how_to_create: str) -> str:
    """'Did you mean ...? Existing ...: a, b' or 'There are no ... yet; <how to create>'."""
    if not names:
        return f"There are no {what} yet; {how_to_create}"
    contains = [n for n in names if wanted.lower() in n.lower() or n.lower() in wanted.lower()]
    import difflib  # only when a name is not found

    close = list(dict.fromkeys(contains + difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)))[:3]
    listed = ", ".join(repr(n) for n in sorted(names)[:_MAX_LISTED])
    more = f" (and {len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    mean = f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return f"{mean}Existing {what}: {listed}{more}."


class LogsMixin(StoreBase):
    def write_logs(self, records: Sequence[LogRecord]) -> None:
        if not records:
            return
        # Plain attribute reads: model_dump costs microseconds per line, and lines come by the thousand.
        rows = [{name: getattr(r, name) for name in LOG_COLUMNS} for r in records]
        with self._write() as conn:
            conn.execute(_INSERT_LOGS, rows)

    def write_log_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """:meth:`write_logs` for lines as plain tuples ``(flow_run_id, task_run_id, level, name,
        message, unix_time)``: the engine's log shipper hands its batches over this way, with
        no model per line (a store-only fast path, not part of the client protocol)."""
        if not rows:
            return
        values = [dict(zip(LOG_COLUMNS, (*row[:5], dt.datetime.fromtimestamp(row[5], dt.timezone.utc)))) for row in rows]
        with self._write() as conn:
            conn.execute(_INSERT_LOGS, values)

    def read_logs(
        self, *, flow_run_id: str | None = None, task_run_id: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[LogRecord]:
        query = sa.select(_L).where(_L.c.id > after_id).order_by(_L.c.id).limit(limit)
        if flow_run_id is not None:
            query = query.where(_L.c.flow_run_id == flow_run_id)
        if task_run_id is not None:
            query = query.where(_L.c.task_run_id == task_run_id)
        with self._read() as conn:
            return [_model(LogRecord, r) for r in conn.execute(query)]


def cache_upsert(insert: Any) -> Any:
    """The task-cache upsert, built on the dialect's INSERT construct (bind its columns)."""
    return insert.on_conflict_do_update(
        index_elements=[_C.c.cache_key],
        set_={"result": insert.excluded.result, "expiration": insert.excluded.expiration, "created": insert.excluded.created},
    )


# A cached result that has not expired (bind ``p_key`` and ``p_now``).
READ_CACHE = sa.select(_C.c.result).where(
    _C.c.cache_key == sa.bindparam("p_key", type_=_C.c.cache_key.type),
    sa.or_(_C.c.expiration.is_(None), _C.c.expiration > sa.bindparam("p_now", type_=_C.c.expiration.type)),
)


class CacheMixin(StoreBase):
    def read_cache(self, cache_key: str) -> dict[str, Any] | None:
        with self._read() as conn:
            return conn.execute(READ_CACHE, {"p_key": cache_key, "p_now": utcnow()}).scalar()

    def write_cache(self, cache_key: str, result: dict[str, Any], expiration: dt.datetime | None) -> None:
        values = {"cache_key": cache_key, "result": result, "expiration": expiration, "created": utcnow()}
        with self._write() as conn:
            conn.execute(cache_upsert(self._insert(_C)), values)


class BlocksMixin(StoreBase):
    def save_block_document(
        self, block_type: str, name: str, data: dict[str, Any], *, schema_version: int = 1, overwrite: bool = False
    ) -> BlockDocument:
        now = utcnow()
        stmt = self._insert(_B).values(
            id=new_id(), block_type=block_type, name=name, schema_version=schema_version, data=data, created=now, updated=now
        )
        if overwrite:  # keep id and created of the existing document
            stmt = stmt.on_conflict_do_update(
                index_elements=[_B.c.block_type, _B.c.name],
                set_={"data": stmt.excluded.data, "schema_version": stmt.excluded.schema_version, "updated": now},
            )
        try:
            with self._write() as conn:
                row = conn.execute(stmt.returning(*_B.c)).one()
        except sa.exc.IntegrityError as exc:
            raise BlockAlreadyExists(
                f"A {block_type!r} block named {name!r} already exists; pass overwrite=True to replace it."
            ) from exc
        return _model(BlockDocument, row)

    def read_block_document(self, block_type: str, name: str) -> BlockDocument:
        with self._read() as conn:
            row = conn.execute(sa.select(_B).where(_B.c.block_type == block_type, _B.c.name == name)).first()
            if row is None:
                names = conn.execute(sa.select(_B.c.name).where(_B.c.block_type == block_type)).scalars().all()
        if row is None:
            hint = _names_hint(names, name, f"{block_type!r} blocks", f"save one with `<BlockClass>(...).save({name!r})`.")
            raise BlockNotFound(f"No {block_type!r} block named {name!r}. {hint}", kind="block", name=name)
        return _model(BlockDocument, row)

    def read_block_documents(self, block_type: str | None = None) -> list[BlockDocument]:
        query = sa.select(_B).order_by(_B.c.block_type, _B.c.name)
        if block_type is not None:
            query = query.where(_B.c.block_type == block_type)
        with self._read() as conn:
            return [_model(BlockDocument, r) for r in conn.execute(query)]

    def delete_block_document(self, block_type: str, name: str) -> None:
        with self._write() as conn:
            deleted = conn.execute(sa.delete(_B).where(_B.c.block_type == block_type, _B.c.name == name)).rowcount
        if not deleted:
            raise BlockNotFound(f"No {block_type!r} block named {name!r} to delete.", kind="block", name=name)


_DEPLOYMENT_COLUMNS = [name for name in Deployment.model_fields if name in _D.c and name not in ("created", "updated")]


class DeploymentsMixin(StoreBase):
    def upsert_deployment(self, deployment: Deployment) -> Deployment:
        now = utcnow()
        values = deployment.model_dump(include=set(_DEPLOYMENT_COLUMNS))
        values.update(id=deployment.id or new_id(), created=now, updated=now)
        stmt = self._insert(_D).values(values)
        replaced = {name: stmt.excluded[name] for name in _DEPLOYMENT_COLUMNS if name not in ("id", "flow_name", "name")}
        stmt = stmt.on_conflict_do_update(index_elements=[_D.c.flow_name, _D.c.name], set_={**replaced, "updated": now})
        try:
            with self._write() as conn:
                row = conn.execute(stmt.returning(*_D.c)).one()
        except sa.exc.IntegrityError as exc:  # the id is taken by a deployment of another name
            raise ObjectAlreadyExists(
                f"Deployment id {deployment.id!r} is already used by another deployment; "
                f"leave the id empty to get a new one for {deployment.full_name!r}."
            ) from exc
        return _model(Deployment, row)

    def read_deployment(self, deployment_id: str) -> Deployment:
        with self._read() as conn:
            row = conn.execute(sa.select(_D).where(_D.c.id == deployment_id)).first()
        if row is None:
            raise ObjectNotFound(f"No deployment with id {deployment_id!r}.", kind="deployment", name=deployment_id)
        return _model(Deployment, row)

    def read_deployment_by_name(self, full_name: str) -> Deployment:
        flow_name, _, name = full_name.partition("/")
        with self._read() as conn:
            row = conn.execute(sa.select(_D).where(_D.c.flow_name == flow_name, _D.c.name == name)).first() if name else None
            if row is None:
                existing = [f"{f}/{n}" for f, n in conn.execute(sa.select(_D.c.flow_name, _D.c.name))]
        if row is not None:
            return _model(Deployment, row)
        form = "" if name else " Deployment names have the form 'flow-name/deployment-name'."
        if not name:  # a bare deployment name: suggest the full names that end with it
            existing = [e for e in existing if e.endswith("/" + full_name)] or existing
        hint = _names_hint(
            existing, full_name, "deployments",
            "create one with `Deployment.build_from_flow(flow, name=...).apply()` or `fleetflow deploy`.",
        )  # fmt: skip
        raise ObjectNotFound(f"No deployment named {full_name!r}.{form} {hint}", kind="deployment", name=full_name)

    def read_deployments(self, *, flow_name: str | None = None, work_pool_name: str | None = None) -> list[Deployment]:
        query = sa.select(_D).order_by(_D.c.flow_name, _D.c.name)
        if flow_name is not None:
            query = query.where(_D.c.flow_name == flow_name)
        if work_pool_name is not None:
            query = query.where(_D.c.work_pool_name == work_pool_name)
        with self._read() as conn:
            return [_model(Deployment, r) for r in conn.execute(query)]

    def delete_deployment(self, deployment_id: str) -> None:
        with self._write() as conn:
            deleted = conn.execute(sa.delete(_D).where(_D.c.id == deployment_id)).rowcount
        if not deleted:
            raise ObjectNotFound(f"No deployment with id {deployment_id!r}.", kind="deployment", name=deployment_id)


class PoolsMixin(StoreBase):
    def create_work_pool(self, pool: WorkPool, *, overwrite: bool = False) -> WorkPool:
        check_name("work pool", pool.name)
        # Pausing is an action on a pool, not part of its definition: creating or overwriting
        # a pool neither pauses nor resumes it (see set_work_pool_paused).
        values = pool.model_dump(exclude={"last_polled", "created", "is_paused"})
        values.update(id=pool.id or new_id(), created=utcnow())
        stmt = self._insert(_P).values(values)
        if overwrite:  # keep id, created, last_polled and is_paused
            kept = ("id", "name", "created")
            stmt = stmt.on_conflict_do_update(
                index_elements=[_P.c.name], set_={k: stmt.excluded[k] for k in values if k not in kept}
            )
        try:
            with self._write() as conn:
                row = conn.execute(stmt.returning(*_P.c)).one()
        except sa.exc.IntegrityError as exc:
            raise ObjectAlreadyExists(
                f"A work pool named {pool.name!r} already exists; pass overwrite=True to replace it."
            ) from exc
        return _model(WorkPool, row)

    def read_work_pool(self, name: str) -> WorkPool:
        with self._read() as conn:
            row = conn.execute(sa.select(_P).where(_P.c.name == name)).first()
            if row is None:
                names = conn.execute(sa.select(_P.c.name)).scalars().all()
        if row is None:
            hint = _names_hint(names, name, "work pools", f"create one with `fleetflow work-pool create {name}`.")
            raise ObjectNotFound(f"No work pool named {name!r}. {hint}", kind="work pool", name=name)
        return _model(WorkPool, row)

    def read_work_pools(self) -> list[WorkPool]:
        with self._read() as conn:
            return [_model(WorkPool, r) for r in conn.execute(sa.select(_P).order_by(_P.c.name))]

    def set_work_pool_paused(self, name: str, paused: bool) -> WorkPool:
        """Pause (its runs stay SCHEDULED; no worker claims them) or resume a pool."""
        with self._write() as conn:
            row = conn.execute(sa.update(_P).where(_P.c.name == name).values(is_paused=bool(paused))
                               .returning(*_P.c)).first()  # fmt: skip
        if row is None:
            return self.read_work_pool(name)  # raises ObjectNotFound naming the pools
        return _model(WorkPool, row)

    def delete_work_pool(self, name: str) -> None:
        with self._write() as conn:
            conn.execute(sa.delete(_W).where(_W.c.work_pool_name == name))
            deleted = conn.execute(sa.delete(_P).where(_P.c.name == name)).rowcount
        if not deleted:
            raise ObjectNotFound(f"No work pool named {name!r} to delete.", kind="work pool", name=name)

    def worker_heartbeat(
        self, work_pool_name: str, worker_name: str, *, hostname: str | None = None, pid: int | None = None
    ) -> None:
        stmt = self._insert(_W).values(
            work_pool_name=work_pool_name, name=worker_name, hostname=hostname, pid=pid, last_heartbeat=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[_W.c.work_pool_name, _W.c.name],
            set_={"hostname": stmt.excluded.hostname, "pid": stmt.excluded.pid, "last_heartbeat": stmt.excluded.last_heartbeat},
        )
        with self._write() as conn:
            conn.execute(stmt)

    def read_workers(self, work_pool_name: str) -> list[Worker]:
        query = sa.select(_W).where(_W.c.work_pool_name == work_pool_name).order_by(_W.c.name)
        with self._read() as conn:
            return [_model(Worker, r) for r in conn.execute(query)]
