"""Pre-started runners sized to demand (infrastructure/warm_pool.py): the pure sizing rule, and
real ``python -m fleetflow.runner --warm`` processes that report ready, are replaced as soon
as one is taken, grow with the launch rate up to the cap and exit when dismissed."""

from __future__ import annotations

import pytest

from fleetflow.infrastructure.warm_pool import HORIZON_SECONDS, WarmPool, warm_target
from waiting import wait_until


# ---- the sizing rule (pure) ---------------------------------------------------------------------
def test_no_recent_launches_keep_the_floor():
    assert warm_target([], 100.0, warmup_seconds=1.0, floor=2, cap=8) == 2
    assert warm_target([100.0 - HORIZON_SECONDS - 1], 100.0, warmup_seconds=1.0, floor=2, cap=8) == 2


def test_the_target_follows_launch_rate_times_warmup():
    # 10 launches over the last 2 s: 5 per second; a runner takes 1 s to warm: 5 + 1 kept.
    launches = [98.0 + 0.2 * i for i in range(10)]
    assert warm_target(launches, 100.0, warmup_seconds=1.0, floor=2, cap=20) == 6
    # A slower warm-up needs more runners for the same rate.
    assert warm_target(launches, 100.0, warmup_seconds=2.0, floor=2, cap=20) == 11
    # A burst counts over at least one warm-up (10 launches in 0.5 s, warm-up 2 s: 5 per second).
    assert warm_target([99.5 + 0.05 * i for i in range(10)], 100.0, warmup_seconds=2.0, floor=2, cap=20) == 11


def test_the_target_never_passes_the_cap_nor_drops_below_the_floor():
    burst = [99.9] * 50
    assert warm_target(burst, 100.0, warmup_seconds=1.0, floor=2, cap=4) == 4
    assert warm_target([99.0], 100.0, warmup_seconds=0.1, floor=3, cap=8) == 3


# ---- real runner processes ----------------------------------------------------------------------
@pytest.fixture
def pools():
    made: list[WarmPool] = []
    yield made.append
    for pool in made:
        for proc in pool.close():
            proc.wait(timeout=60)


def _dismiss(proc) -> None:
    proc.stdin.close()  # a taken runner with no assignment exits
    proc.wait(timeout=60)


def test_runners_report_ready_and_a_taken_one_is_replaced_at_once(pools):
    pool = WarmPool(2, cap=2)
    pools(pool)
    wait_until(lambda: pool.ready_count() == 2, "two pre-started runners ready", observe=pool.size)
    taken = pool.take()
    assert taken.poll() is None
    pool.refill()
    assert pool.size() == 2  # the replacement is starting already
    _dismiss(taken)
    assert taken.returncode == 0
    wait_until(lambda: pool.ready_count() == 2, "the replacement ready", observe=pool.size)


def test_a_launch_takes_a_ready_runner_before_one_still_starting(pools):
    pool = WarmPool(1, cap=3)
    pools(pool)
    wait_until(lambda: pool.ready_count() == 1, "the first runner ready", observe=pool.snapshot)
    pool.floor = 2
    pool.refill()  # a second runner, still importing
    snapshot = pool.snapshot()
    assert [ready for _, ready in snapshot] == [True, False], snapshot
    ready_pid = snapshot[0][0]
    taken = pool.take()
    assert taken.pid == ready_pid
    _dismiss(taken)


def test_the_pool_grows_with_back_to_back_launches_up_to_the_cap_and_shrinks_back(pools):
    now = [1000.0]
    pool = WarmPool(1, cap=4, clock=lambda: now[0])  # six launches within one second, however slow the machine
    pools(pool)
    taken = []
    for _ in range(6):
        taken.append(pool.take())
        pool.refill()
        now[0] += 0.1
    for proc in taken:
        _dismiss(proc)
    assert pool.size() == 4  # rate x warm-up exceeds the cap: the cap
    wait_until(lambda: pool.ready_count() == 4, "the grown pool ready", observe=pool.size)
    pool.set_cap(1)  # e.g. the worker's concurrency: never more than it
    pool.refill()
    assert pool.size() == 1
