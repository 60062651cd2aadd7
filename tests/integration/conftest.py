import pytest

from worker_helpers import WorkerProcess, make_project


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "project")


@pytest.fixture
def worker(temp_store):
    """A started worker process on 'test-pool' (stopped at teardown)."""
    from fleetflow.deployments import ensure_work_pool

    ensure_work_pool(temp_store, "test-pool")
    w = WorkerProcess("test-pool", "w-main")
    w.wait_polling(temp_store, "test-pool")
    yield w
    w.stop()
