"""Adapted from Prefect 2 docs/concepts/work-pools.md and work-queues.md ("Work queues":
priority, concurrency limits, pausing; agents polling specific queues with
`agent start -p POOL -q QUEUE`; `deployment build -q`): only the command name changed."""

import sys

from compat_docs import Background, cli, write_project
from waiting import wait_until

FLOWS = '''
from fleetflow import flow

@flow
def etl(n: int = 1):
    return n * 10
'''


def _final(client, run_id):
    run = client.read_flow_run(run_id)
    return run if run.state and run.state.is_final else None


def test_agent_serves_only_its_queue_and_a_paused_queue_waits(temp_store, tmp_path):
    project = write_project(tmp_path / "proj", FLOWS)
    assert cli("work-queue", "create", "critical", "-p", "my-pool", "--priority", "1").returncode == 0
    assert cli("work-queue", "create", "low", "-p", "my-pool", "--priority", "10", "--limit", "1").returncode == 0
    for name, queue in (("urgent", "critical"), ("nightly", "low")):
        built = cli("deployment", "build", "flows.py:etl", "-n", name, "-p", "my-pool", "-q", queue, "--skip-upload", "-a",
                    cwd=project)
        assert built.returncode == 0, built.stderr

    assert cli("work-queue", "pause", "low", "-p", "my-pool").returncode == 0
    cli("deployment", "run", "etl/nightly", "--params", '{"n": 2}')
    cli("deployment", "run", "etl/urgent", "--params", '{"n": 1}')
    runs = {r.parameters["n"]: r for r in temp_store.read_flow_runs(flow_name="etl")}

    agent = Background(sys.executable, "-m", "fleetflow", "agent", "start", "-p", "my-pool", "-q", "critical", "-q", "low")
    try:
        agent.wait_polling(temp_store, "my-pool")
        urgent = wait_until(lambda: _final(temp_store, runs[1].id), "the critical queue's run to finish")
        assert urgent.state.result() == 10
        assert temp_store.read_flow_run(runs[2].id).state_type.value == "SCHEDULED"  # its queue is paused
        assert cli("work-queue", "resume", "low", "-p", "my-pool").returncode == 0
        nightly = wait_until(lambda: _final(temp_store, runs[2].id), "the resumed queue's run to finish")
        assert nightly.state.result() == 20
    finally:
        out = agent.stop()
    assert "worker start --pool my-pool -q critical -q low" in out


def test_worker_limited_to_one_queue_leaves_the_others(temp_store, tmp_path):
    project = write_project(tmp_path / "proj", FLOWS)
    for name, queue in (("a", "team-a"), ("b", "team-b")):
        assert cli("deployment", "build", "flows.py:etl", "-n", name, "-p", "shared", "-q", queue, "--skip-upload", "-a",
                   cwd=project).returncode == 0
    cli("deployment", "run", "etl/a", "--params", '{"n": 3}')
    cli("deployment", "run", "etl/b", "--params", '{"n": 4}')
    runs = {r.parameters["n"]: r for r in temp_store.read_flow_runs(flow_name="etl")}
    worker = Background(sys.executable, "-m", "fleetflow", "worker", "start", "-p", "shared", "-q", "team-a")
    try:
        worker.wait_polling(temp_store, "shared")
        assert wait_until(lambda: _final(temp_store, runs[3].id), "team-a's run").state.result() == 30
        assert temp_store.read_flow_run(runs[4].id).state_type.value == "SCHEDULED"
    finally:
        worker.stop()
