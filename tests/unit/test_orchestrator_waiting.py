"""The store's long-polls woken by commits (orchestrator/waiting.py), on SQLite and PostgreSQL:
``wait_for_flow_run`` returns the final run when another *process* finishes it, many waiting
threads are all woken (their checks shared), a claim that waits gets a run created meanwhile, and
a wait that nothing ends returns the run as it is at its timeout. Among waiting threads one
leads (watches and queries) and hands over when it leaves; a thread that starts waiting just
after the change that finished its run is not left waiting for a later one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

from fleetflow.orchestrator import Orchestrator, WorkPool
from fleetflow.orchestrator.waiting import ChangeFeed, sqlite_file, waiting_for
from waiting import wait_until
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


def test_when_the_leading_waiter_leaves_another_takes_over(orchestrator, store_url):
    first, second = (orchestrator.create_flow_run("f", state=Running()) for _ in range(2))
    _, waiters = waiting_for(orchestrator)
    seen: dict[str, StateType] = {}

    def wait(run_id: str) -> None:
        seen[run_id] = orchestrator.wait_for_flow_run(run_id, timeout=120).state.type

    leader = threading.Thread(target=wait, args=(first.id,))
    leader.start()
    wait_until(lambda: waiters._leader is not None, "the first waiter leads")
    follower = threading.Thread(target=wait, args=(second.id,))
    follower.start()
    wait_until(lambda: second.id in waiters._waiting, "the second thread waits")
    _finish_elsewhere(store_url, first.id).wait(timeout=120)
    leader.join(timeout=150)
    assert seen == {first.id: StateType.COMPLETED} and follower.is_alive()  # only the finished run's waiter woke
    _finish_elsewhere(store_url, second.id).wait(timeout=120)  # seen by the follower, now leading
    follower.join(timeout=150)
    assert seen[second.id] is StateType.COMPLETED


def test_a_run_finished_just_before_its_wait_began_is_seen(orchestrator):
    led, late = (orchestrator.create_flow_run("f", state=Running()) for _ in range(2))
    feed, waiters = waiting_for(orchestrator)
    leader = threading.Thread(target=orchestrator.wait_for_flow_run, args=(led.id,), kwargs={"timeout": 60})
    leader.start()
    wait_until(lambda: waiters._leader is not None, "a waiter leads")
    seen = waiters.mark()  # the late waiter's mark, before the change that finishes its run
    orchestrator.set_flow_run_state(late.id, Completed())
    wait_until(lambda: feed.generation != seen, "the leader noticed the change (and checked without the late run)")
    waiters.wait(late.id, seen, time.monotonic() + 120)
    # It returned by looking for its own run, not when the leader left at its timeout and
    # handed over (the leader's run is still unfinished, its thread still waiting).
    assert leader.is_alive()
    orchestrator.set_flow_run_state(led.id, Completed())
    leader.join(timeout=90)
    assert not leader.is_alive()


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
