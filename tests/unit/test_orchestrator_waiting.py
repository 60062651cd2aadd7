"""The store's long-polls woken by commits (orchestrator/waiting.py), on SQLite and PostgreSQL:
``wait_for_flow_run`` returns the final run when another *process* finishes it, many waiting
threads are all woken (their checks shared), a claim that waits gets a run created meanwhile, and
a wait that nothing ends returns the run as it is at its timeout."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from fleetflow.orchestrator import Orchestrator, WorkPool
from fleetflow.orchestrator.waiting import ChangeFeed, sqlite_file
from fleetflow.states import Completed, Running, Scheduled, StateType

FINISH_IN_ANOTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from fleetflow.orchestrator import Orchestrator
    from fleetflow.states import Completed

    store = Orchestrator.create(sys.argv[1])
    for run_id in sys.argv[2:]:
        store.set_flow_run_state(run_id, Completed())
    store.dispose()
    """
)


def _finish_elsewhere(url: str, *run_ids: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", FINISH_IN_ANOTHER_PROCESS, url, *run_ids])


def test_a_waiter_gets_the_run_once_another_process_finishes_it(orchestrator, store_url):
    run = orchestrator.create_flow_run("f", state=Running())
    other = _finish_elsewhere(store_url, run.id)
    try:
        final = orchestrator.wait_for_flow_run(run.id, timeout=120)
    finally:
        other.wait(timeout=120)
    assert final.state.type is StateType.COMPLETED


def test_many_waiting_threads_are_all_woken(orchestrator, store_url):
    runs = [orchestrator.create_flow_run("f", state=Running()) for _ in range(12)]
    seen: dict[str, StateType] = {}

    def wait(run_id: str) -> None:
        seen[run_id] = orchestrator.wait_for_flow_run(run_id, timeout=120).state.type

    threads = [threading.Thread(target=wait, args=(r.id,)) for r in runs]
    for thread in threads:
        thread.start()
    other = _finish_elsewhere(store_url, *(r.id for r in runs))
    other.wait(timeout=120)
    for thread in threads:
        thread.join(timeout=150)
    assert seen == {r.id: StateType.COMPLETED for r in runs}


def test_a_wait_nothing_ends_returns_the_run_as_it_is(orchestrator):
    run = orchestrator.create_flow_run("f", state=Running())
    assert orchestrator.wait_for_flow_run(run.id, timeout=0.2).state.type is StateType.RUNNING


def test_a_waiting_claim_gets_a_run_created_meanwhile(orchestrator):
    orchestrator.create_work_pool(WorkPool(id="", name="p", type="process"))
    claimed: list = []
    waiter = threading.Thread(target=lambda: claimed.extend(orchestrator.claim_flow_runs("p", "w", wait=120)))
    waiter.start()
    run = orchestrator.create_flow_run("f", state=Scheduled(), work_pool_name="p")
    waiter.join(timeout=150)
    assert [r.id for r in claimed] == [run.id] and claimed[0].state_type is StateType.PENDING


def test_the_feed_counts_commits_of_other_connections(tmp_path):
    url = f"sqlite:///{tmp_path / 'feed.db'}"
    store = Orchestrator.create(url)
    try:
        feed = ChangeFeed(sqlite_file(store.engine))
        seen = feed.mark()
        assert feed.mark() == seen  # nothing committed since
        store.create_flow_run("f", state=Completed())
        assert feed.mark() == seen + 1
        feed.close()
    finally:
        store.dispose()


def test_only_file_databases_have_a_feed(tmp_path):
    import sqlalchemy as sa

    assert sqlite_file(sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")) == str(tmp_path / "x.db")
    assert sqlite_file(sa.create_engine("sqlite://")) is None
    assert sqlite_file(sa.create_engine("postgresql+psycopg://u@h/db")) is None
