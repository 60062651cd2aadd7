"""Infrastructure retries: relaunch a run whose infrastructure failed for a transient cause.

``classify`` is pure: the crash message (built from ECS stop codes and reasons, exit codes,
reconcile verdicts) -> a cause. Transient causes are relaunched up to the deployment's
``retries`` (as a new attempt of the same flow run: its history shows every attempt, and a
parent's ``run_deployment`` keeps waiting, since the run never became final). Out-of-memory
and a non-zero user exit are relaunched only when the deployment opts in with ``retry_on``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import states as st
from ..exceptions import InvalidStateTransition, ObjectNotFound

if TYPE_CHECKING:
    from ..client.protocol import OrchestratorAPI

RELAUNCH_STATE_NAME = "AwaitingRelaunch"

TRANSIENT = (
    ("spot interruption", re.compile(r"SpotInterruption|spot interruption|TerminationNotice", re.I)),
    ("capacity", re.compile(r"RESOURCE:|insufficient capacity|capacity is unavailable|capacity provider", re.I)),
    ("provisioning timeout", re.compile(r"(ENI|network interface|ephemeral storage)[^;]*(timeout|timed out)"
                                        r"|timeout waiting for (network interface|ephemeral storage)", re.I)),
    ("image pull i/o timeout", re.compile(r"CannotPullContainerError.*i/o timeout", re.I | re.S)),
    ("task failed to start", re.compile(r"TaskFailedToStart", re.I)),
    ("worker or lease lost", re.compile(r"^lost:|lease expired|worker was lost", re.I)),
)
OPT_IN = (
    ("out_of_memory", re.compile(r"out of memory|OutOfMemory", re.I)),
    ("exit_code", re.compile(r"exit(ed with)? code -?\d+|killed by SIG", re.I)),
)
RETRY_ON_CHOICES = tuple(name for name, _ in OPT_IN)


def classify(message: str | None) -> tuple[str, bool] | None:
    """``(cause, transient)`` for a crash message, or None when nothing is recognised.
    Non-transient causes are checked first: an OOM kill must never pass for a capacity issue."""
    text = message or ""
    for cause, pattern in OPT_IN[:1]:  # out of memory beats everything
        if pattern.search(text):
            return cause, False
    for cause, pattern in TRANSIENT:
        if pattern.search(text):
            return cause, True
    for cause, pattern in OPT_IN[1:]:
        if pattern.search(text):
            return cause, False
    return None


@dataclass(frozen=True)
class RetryDecision:
    relaunch: bool
    cause: str | None
    why: str


def decide_relaunch(message: str | None, *, used: int, retries: int, retry_on: list[str] | None) -> RetryDecision:
    """Pure: relaunch after this crash? ``used`` relaunches happened already."""
    found = classify(message)
    if found is None:
        return RetryDecision(False, None, "cause not recognised as an infrastructure failure")
    cause, transient = found
    if not transient and cause not in (retry_on or []):
        return RetryDecision(False, cause, f"{cause} is retried only with retry_on=[{cause!r}]")
    if used >= retries:
        return RetryDecision(False, cause, f"infrastructure retries exhausted ({used} of {retries})")
    return RetryDecision(True, cause, f"relaunch {used + 1} of {retries}")


def relaunches_so_far(client: OrchestratorAPI, flow_run_id: str) -> int:
    return sum(1 for s in client.read_flow_run_states(flow_run_id) if s.name == RELAUNCH_STATE_NAME)


def crash_or_relaunch(client: OrchestratorAPI, flow_run_id: str, message: str) -> bool:
    """CRASH the run, or relaunch it when its deployment's policy says so; True if relaunched."""
    run = client.read_flow_run(flow_run_id)
    policy = _policy(client, run)
    if policy is not None:
        retries, delay, retry_on = policy
        decision = decide_relaunch(message, used=relaunches_so_far(client, run.id), retries=retries, retry_on=retry_on)
        if decision.relaunch:
            note = f"attempt {run.launch_attempt or 1} crashed ({decision.cause}: {message}); {decision.why}"
            not_before = st.utcnow() + dt.timedelta(seconds=delay)
            if client.relaunch_flow_run(run.id, note, not_before=not_before) is not None:
                return True
    try:
        client.set_flow_run_state(run.id, st.Crashed(message=message))
    except InvalidStateTransition:
        pass  # it moved on meanwhile (e.g. its runner reported at the last moment)
    return False


def _policy(client: OrchestratorAPI, run: Any) -> tuple[int, float, list[str] | None] | None:
    if not run.deployment_id:
        return None
    try:
        deployment = client.read_deployment(run.deployment_id)
    except ObjectNotFound:
        return None
    if not deployment.infra_retries:
        return None
    return deployment.infra_retries, deployment.infra_retry_delay_seconds, deployment.infra_retry_on
