"""Which crashes are relaunched (pure): transient causes by default, others only on opt-in."""

from __future__ import annotations

import pytest

from fleetflow.worker.retries import classify, decide_relaunch

TRANSIENT = {
    "Spot": "Task stopped: SpotInterruption: Your Spot Task was interrupted.",
    "capacity": "launch failed: RunTaskFailure: RunTask failed: RESOURCE:MEMORY (arn:aws:ecs:...)",
    "eni": "Task stopped: TaskFailedToStart: Timeout waiting for network interface provisioning to complete.",
    "storage": "ResourceInitializationError: ephemeral storage setup timed out",
    "pull": "CannotPullContainerError: pull image manifest has been retried 5 time(s): dial tcp: i/o timeout",
    "start": "TaskFailedToStart: did not start within task_start_timeout_seconds=300; stopped",
    "lost": "lost: the run's lease expired and the infrastructure is gone (last heartbeat ...)",
}
NOT_TRANSIENT = {
    "oom": ("out of memory: the run exceeded its memory limit of 256 MiB", "out_of_memory"),
    "oom-ecs": ("Essential container in task exited; OutOfMemoryError: Container killed due to memory usage",
                "out_of_memory"),
    "exit": ("process exited with code 3", "exit_code"),
    "signal": ("process killed by SIGKILL", "exit_code"),
}


@pytest.mark.parametrize("message", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_causes_are_relaunched_by_default(message):
    assert classify(message)[1] is True
    assert decide_relaunch(message, used=0, retries=2, retry_on=None).relaunch
    exhausted = decide_relaunch(message, used=2, retries=2, retry_on=None)
    assert not exhausted.relaunch and "exhausted" in exhausted.why


@pytest.mark.parametrize("message,cause", NOT_TRANSIENT.values(), ids=NOT_TRANSIENT.keys())
def test_other_causes_only_on_opt_in(message, cause):
    assert classify(message) == (cause, False)
    refused = decide_relaunch(message, used=0, retries=3, retry_on=None)
    assert not refused.relaunch and f"retry_on=[{cause!r}]" in refused.why
    assert decide_relaunch(message, used=0, retries=3, retry_on=[cause]).relaunch


def test_out_of_memory_is_never_mistaken_for_capacity():
    message = "Task stopped: OutOfMemoryError: Container killed; capacity provider FARGATE"
    assert classify(message) == ("out_of_memory", False)


def test_unrecognised_and_zero_retries():
    assert classify("flow raised ValueError") is None
    assert not decide_relaunch("flow raised ValueError", used=0, retries=5, retry_on=["exit_code"]).relaunch
    assert not decide_relaunch(TRANSIENT["Spot"], used=0, retries=0, retry_on=None).relaunch
