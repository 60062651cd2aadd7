"""Adapted from Prefect 2 docs/concepts/deployments-block-based.md ("Create a deployment from
a Python object", "Create a deployment on the CLI", agents and work queues) and
docs/concepts/deployments.md ("Running deployments": run_deployment, and a parent reading a
child's result with .state.result()): only the imports and CLI names changed."""

import sys

from fleetflow import flow
from fleetflow.deployments import Deployment, run_deployment
from compat_docs import Background, cli, write_project
from waiting import wait_until

FLOWS = '''
from fleetflow import flow, get_run_logger
from fleetflow.runtime import deployment

@flow
def my_flow(name: str = "world"):
    get_run_logger().info(f"Hello {name}!")
    return {"greeting": f"Hello {name}!", "count": 2, "deployment": deployment.name}
'''


def _flow(project):
    from fleetflow.entrypoints import load_flow_from_entrypoint

    return load_flow_from_entrypoint("flows.py:my_flow", project)


def test_python_deployment_run_deployment_and_state_result(temp_store, tmp_path, monkeypatch):
    project = write_project(tmp_path / "proj", FLOWS)
    monkeypatch.chdir(project)
    deployment = Deployment.build_from_flow(flow=_flow(project), name="example", version=1,
                                            work_queue_name="demo", work_pool_name="default-agent-pool")
    deployment.apply()
    assert deployment.load() is True and deployment.version == "1"
    worker = Background(sys.executable, "-m", "fleetflow", "worker", "start", "--pool", "default-agent-pool")
    try:
        worker.wait_polling(temp_store, "default-agent-pool")

        @flow
        def parent():
            response = run_deployment(name="my-flow/example", parameters={"name": "Marvin"})
            return response.state.result()

        assert parent() == {"greeting": "Hello Marvin!", "count": 2, "deployment": "example"}
        child = temp_store.read_flow_runs(flow_name="my-flow")[0]
        assert child.parent_flow_run_id == temp_store.read_flow_runs(flow_name="parent")[0].id
    finally:
        worker.stop()


def test_cli_deployment_with_a_work_queue_and_an_agent(temp_store, tmp_path):
    project = write_project(tmp_path / "proj", FLOWS)
    built = cli("deployment", "build", "flows.py:my_flow", "-n", "log-simple", "-q", "test", "-t", "docs",
                "-v", "2", "--apply", cwd=project)
    assert built.returncode == 0, built.stderr
    agent = Background(sys.executable, "-m", "fleetflow", "agent", "start", "-q", "test")
    try:
        agent.wait_polling(temp_store, "test")
        started = cli("deployment", "run", "my-flow/log-simple", "--params", '{"name": "Trillian"}')
        assert started.returncode == 0, started.stderr
        run = temp_store.read_flow_runs(flow_name="my-flow")[0]
        final = wait_until(lambda: (lambda r: r if r.state and r.state.is_final else None)(temp_store.read_flow_run(run.id)),
                           "the agent's run to finish")
        assert final.state.result() == {"greeting": "Hello Trillian!", "count": 2, "deployment": "log-simple"}
        assert final.tags == ["docs"]
    finally:
        out = agent.stop()
    assert "fleetflow worker start --pool test" in out
