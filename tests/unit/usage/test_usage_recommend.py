"""Right-sizing decisions (pure): steady -> expected pair, one OOM -> above its limit, no
history -> a clear message, saturated CPU not lowered, risk counted, valid pairs only."""

from __future__ import annotations

from fleetflow.aws.fargate import check_fargate_size
from fleetflow.usage.pricing import fargate_rate, load_prices
from fleetflow.usage.recommend import Observation, percentile, recommend, recommendation_summary, smallest_pair

RATE = fargate_rate(load_prices(), "us-east-1", "x86_64")


def steady(n=20, memory=700.0, cpu=0.3, limit=(1024, 4096)):
    return [Observation(memory + i % 3, cpu, limit[0], limit[1], billed_seconds=300) for i in range(n)]


def test_steady_workload_gets_the_expected_pair():
    rec = recommend(steady(), (1024, 4096), headroom=0.25, rate=RATE, runs_per_month=600)
    # p95 = 702 MiB x 1.25 = 877.5 MiB; p95 cpu 0.3 x 1.25 x 1024 = 384 units -> 512 cpu / 1024 MiB
    assert rec.proposed == (512, 1024) and rec.at_risk == 0 and rec.changes
    check_fargate_size(*rec.proposed)
    assert rec.saving_per_run > 0 and rec.saving_per_month == rec.saving_per_run * 600
    assert recommendation_summary(rec).startswith("downsize 1024 cpu / 4096 MiB -> 512 cpu / 1024 MiB")


def test_bursty_workload_with_one_oom_goes_above_that_limit():
    runs = steady(19, memory=300) + [Observation(None, None, 512, 1024, oom=True)]
    rec = recommend(runs, (512, 1024), headroom=0.25, rate=RATE)
    assert rec.oom_runs == 1 and rec.proposed[1] > 1024
    assert rec.proposed == (512, 2048)  # the cheapest valid pair above the OOM limit
    assert "out of memory" in rec.reasons[0]


def test_no_history_gives_a_clear_message():
    rec = recommend([], (1024, 2048), rate=RATE)
    assert rec.proposed is None and "no completed runs" in rec.message
    assert recommendation_summary(rec) == rec.message


def test_saturated_cpu_is_not_lowered_and_risk_is_counted():
    # One run in 20 peaked at 3000 MiB: above the p95, so the proposal (2048 MiB) would have killed it.
    runs = steady(19, memory=400, cpu=0.98, limit=(1024, 4096)) + [Observation(3000, 0.98, 1024, 4096)]
    rec = recommend(runs, (1024, 4096), headroom=0.0, rate=RATE)
    assert rec.proposed == (1024, 2048) and any("throttled" in r for r in rec.reasons)
    assert rec.at_risk == 1
    assert "1 of 20 past runs would have run out of memory" in recommendation_summary(rec)


def test_smallest_pair_is_always_a_valid_fargate_size():
    for cpu_need in (0, 100, 300, 1500, 5000, 12000):
        for mem_need in (0, 400, 1500, 9000, 40000, 100000):
            pair = smallest_pair(cpu_need, mem_need, RATE)
            assert pair is not None
            check_fargate_size(*pair)
            assert pair[0] >= cpu_need and pair[1] >= mem_need
    assert smallest_pair(0, 200_000, RATE) is None


def test_percentile_is_nearest_rank():
    assert percentile(list(range(1, 21))) == 19 and percentile([5.0]) == 5.0


def test_a_size_raised_for_safety_says_what_it_costs_not_a_negative_saving():
    busy = [Observation(300.0 + i % 3, 0.48, 512, 1024, billed_seconds=300) for i in range(20)]  # cpu at its limit
    rec = recommend(busy, (512, 1024), headroom=0.25, rate=RATE, runs_per_month=600)
    assert rec.proposed[0] > 512 and rec.saving_per_run < 0
    text = recommendation_summary(rec)
    assert "more per run" in text and "costs $" in text and "$-" not in text
