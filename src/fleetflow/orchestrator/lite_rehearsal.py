"""Warming the plain SQLite path in the fork server's template (:mod:`fleetflow.fork_template`).

A forked child that is the first to run a piece of code pays for it twice: CPython specialises a
function's bytecode in place after a few calls, and lazily built things (the generated
statements' binders, pydantic validators) are built on first use -- each a write to memory the
child shares with the template, so a copied page (measured at ~4 µs of CPU each here). The
template builds and rehearses, once, what a launched run does on this path; nothing here opens
a connection or writes anything.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..states import State, StateType
from . import sqlite_sql as sql
from . import transitions as tr
from .base import utcnow
from .lite import CLAIM_MESSAGE, flow_run_from_mapping, validated_model
from .lite_statements import statement
from .schemas import BlockDocument, Deployment, FlowRun, WorkPool
from .sqlite_codecs import BIND


def prepare_statements() -> None:
    """Build every generated statement now (the fork server's template: its children then find
    them built, in shared memory)."""
    for name in sql.STATEMENTS:
        statement(name)


def rehearse_launch_path(rounds: int = 12) -> None:
    """Run the pure steps of a launched run's store calls -- binding the claim, the history
    and the transitions, decoding and validating the rows it reads -- on sample values, with
    no connection and no write."""
    running = State(type=StateType.RUNNING, message=CLAIM_MESSAGE)
    done = State(type=StateType.COMPLETED)
    run_id, now = "00000000-0000-0000-0000-000000000000", utcnow()
    run = {**FlowRun.model_construct(id=run_id, name="n", flow_name="f").__dict__,
           **tr.initial_columns([running]), "created": now, "launch_attempt": 1, "run_count": 1}
    samples = (
        ("read_deployment", Deployment(id=run_id, name="d", flow_name="f", entrypoint="f.py:f")),
        ("read_block_document", BlockDocument(id=run_id, block_type="b", name="n")),
        ("read_work_pool", WorkPool(id=run_id, name="p")),
    )
    reads = [(name, type(model), {**model.model_dump(), "created": now}) for name, model in samples]
    for _ in range(rounds):
        claim = statement("claim_launch")
        claim.args({**tr.transition_params(run_id, running), "p_token": "t", "p_owner": "o",
                    "p_expires": now, "p_handle": None})
        flow_run_from_mapping(claim.row(_sample_row("claim_launch", run)))
        for state in (running, done):
            statement("insert_history").args(tr.history_rows([state], flow_run_id=run_id)[0])
            statement(f"transition:flow_runs:{state.type.value}:check").args(tr.transition_params(run_id, state))
        for name, model, values in reads:
            validated_model(model, statement(name).row(_sample_row(name, values)))
        statement("insert_usage").args({"flow_run_id": run_id, "deployment_id": None, "usage": {"cpu": 1.0},
                                        "created": now})


def _sample_row(name: str, values: Mapping[str, Any]) -> tuple[Any, ...]:
    """A row of statement ``name`` as SQLite returns it, from ``values`` (absent keys NULL)."""
    return tuple(values.get(key) if BIND[codec] is None else BIND[codec](values.get(key))  # type: ignore[misc]
                 for key, codec in sql.STATEMENTS[name][2])
