"""The contract room: typed errors with stable codes, the results registry, the store's
import boundary, runs from deployments as one store operation, and keyset pages."""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

import fleetflow
from fleetflow import exceptions as exc
from fleetflow.orchestrator.runs import page_cursor
from fleetflow.orchestrator.schemas import Deployment, FlowRun, WorkPool
from fleetflow.results import register_result_storage, storage_for
from fleetflow.states import Completed, StateType

STORE = Path(fleetflow.__file__).parent / "orchestrator"


# ---- errors -------------------------------------------------------------------------------
def test_every_error_class_has_a_unique_stable_code():
    codes = exc.error_codes()
    assert len(codes) == len(set(codes.values())) > 25
    pinned = {
        "object_not_found": exc.ObjectNotFound, "block_not_found": exc.BlockNotFound,
        "invalid_state_transition": exc.InvalidStateTransition, "parameter_validation_error": exc.ParameterValidationError,
        "invalid_override_error": exc.InvalidOverrideError, "ecs_config_error": exc.ECSConfigError,
        "authentication_error": exc.AuthenticationError, "permission_denied": exc.PermissionDenied,
    }  # fmt: skip
    for code, cls in pinned.items():
        assert cls.code == code and exc.error_class(code) is cls


def test_an_error_payload_rebuilds_the_same_class_and_attributes():
    original = exc.InvalidStateTransition("cannot go back", current="COMPLETED", proposed="RUNNING")
    rebuilt = exc.error_from_payload(exc.error_payload(original))
    assert type(rebuilt) is exc.InvalidStateTransition and str(rebuilt) == "cannot go back"
    assert (rebuilt.current, rebuilt.proposed) == ("COMPLETED", "RUNNING")
    assert isinstance(exc.error_from_payload({"code": "from_a_newer_server", "message": "m"}), exc.FleetflowError)


def test_http_statuses_follow_the_hierarchy():
    assert exc.BlockNotFound.http_status == 404 and exc.BlockAlreadyExists.http_status == 409
    assert exc.ParameterValidationError.http_status == 422 and exc.RateLimited.http_status == 429


# ---- the store's import boundary ----------------------------------------------------------
def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def test_the_store_imports_nothing_above_it():
    allowed_parents = {"..states", "..exceptions", "..settings"}
    for path in STORE.glob("*.py"):
        for name in _imports(path):
            if name.startswith(".."):
                assert name in allowed_parents, f"{path.name} imports {name}"
            assert not name.startswith("fleetflow"), f"{path.name} imports {name}"


def test_importing_the_store_loads_no_engine_aws_blocks_or_client():
    code = (
        "import sys, fleetflow.orchestrator\n"
        "bad = [m for m in sys.modules if m.startswith(('fleetflow.engine', 'fleetflow.aws', 'fleetflow.blocks',"
        " 'fleetflow.client', 'fleetflow.results'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- results ------------------------------------------------------------------------------
class _Memory:
    def __init__(self):
        self.data: dict[str, bytes] = {}

    def write_result(self, key: str, data: bytes) -> None:
        self.data[key] = data

    def read_result(self, key: str) -> bytes:
        return self.data[key]

    def describe(self):
        return {"type": "test-memory"}


def test_results_are_read_through_the_storage_registry():
    from fleetflow.results import persist_result

    memory = _Memory()
    register_result_storage("test-memory", lambda descriptor: memory)
    ref = persist_result({1, 2, 3}, storage=memory)  # a set is not JSON: pickled to the storage
    run = FlowRun(id="r", name="n", flow_name="f", state=Completed(data={"result": ref}))
    assert run.result() == {1, 2, 3}
    with pytest.raises(exc.MissingResult) as info:
        storage_for({"type": "nowhere"})
    assert "known types" in str(info.value)


# ---- runs from deployments ----------------------------------------------------------------
def _deployment(client, **fields) -> Deployment:
    client.create_work_pool(WorkPool(id="", name="pool"), overwrite=True)
    schema = {"properties": {"x": {}, "y": {}}, "required": ["x"]}
    return client.upsert_deployment(Deployment(
        id="", name="d", flow_name="f", entrypoint="f.py:f", work_pool_name="pool", parameters={"y": 1},
        parameter_schema=schema, tags=["t"], **fields,
    ))  # fmt: skip


def test_a_run_from_a_deployment_merges_checks_and_is_idempotent(temp_store):
    dep = _deployment(temp_store)
    run = temp_store.create_flow_run_from_deployment("f/d", parameters={"x": 2}, idempotency_key="k")
    assert run.state.type is StateType.SCHEDULED and run.deployment_id == dep.id
    assert (run.parameters, run.work_pool_name, run.tags) == ({"x": 2}, "pool", ["t"])
    assert temp_store.create_flow_run_from_deployment(dep.id, parameters={"x": 2}, idempotency_key="k").id == run.id
    with pytest.raises(exc.ParameterValidationError) as info:
        temp_store.create_flow_run_from_deployment("f/d", parameters={"x": 1, "z": 3})
    assert info.value.field == "z"
    with pytest.raises(exc.ParameterValidationError):
        temp_store.create_flow_run_from_deployment("f/d")  # x is required
    with pytest.raises(exc.InvalidOverrideError):
        import fleetflow.worker.resolve  # noqa: F401 - registers the infrastructure check

        temp_store.create_flow_run_from_deployment("f/d", parameters={"x": 1}, infra_overrides={"memroy": 1})
    assert [r.id for r in temp_store.read_flow_runs()] == [run.id]  # refused requests created nothing


def test_a_child_run_is_linked_to_its_parent_in_one_operation(temp_store):
    _deployment(temp_store)
    parent = temp_store.create_flow_run("parent")
    child = temp_store.create_flow_run_from_deployment(
        "f/d", parameters={"x": 1}, parent_flow_run_id=parent.id, parent_dynamic_key="0"
    )
    (link,) = temp_store.read_task_runs(parent.id)
    assert child.parent_task_run_id == link.id and child.parent_flow_run_id == parent.id
    assert link.state.type is StateType.RUNNING and link.name == "f/d"
    again = temp_store.create_flow_run_from_deployment("f/d", parameters={"x": 1}, parent_flow_run_id=parent.id,
                                                       parent_dynamic_key="0")  # fmt: skip
    assert again.id == child.id and len(temp_store.read_task_runs(parent.id)) == 1
    with pytest.raises(exc.ObjectNotFound):
        temp_store.create_flow_run_from_deployment("f/d", parameters={"x": 1}, parent_flow_run_id="missing")


def test_unknown_deployment_lists_close_names(temp_store):
    _deployment(temp_store)
    with pytest.raises(exc.ObjectNotFound) as info:
        temp_store.create_flow_run_from_deployment("f/e")
    assert "f/d" in str(info.value)


# ---- keyset pages and bounded counts ------------------------------------------------------
def test_flow_runs_page_by_cursor_and_count_with_a_bound(temp_store):
    ids = [temp_store.create_flow_run("f").id for _ in range(7)]
    seen, cursor = [], None
    while True:
        page = temp_store.read_flow_runs(limit=3, cursor=cursor)
        if not page:
            break
        seen += [r.id for r in page]
        cursor = page_cursor(page[-1])
    assert seen == list(reversed(ids))
    assert temp_store.count_flow_runs() == 7 and temp_store.count_flow_runs(limit=5) == 5
    assert temp_store.count_flow_runs(state_types=[StateType.RUNNING]) == 0
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert temp_store.read_flow_runs(created_after=future) == []
    with pytest.raises(exc.ConfigurationError):
        temp_store.read_flow_runs(cursor="garbage")
