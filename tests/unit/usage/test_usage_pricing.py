"""Cost numbers equal the formula: several sizes, Spot, ARM, runs under the one-minute minimum,
ECS on EC2 without and with a price, Process free and with a local rate, a price file override."""

from __future__ import annotations

import json

import pytest

from fleetflow.settings import Settings
from fleetflow.usage.pricing import Rate, billed_seconds, estimate, fargate_rate, load_prices, rate_for, task_cost

X86 = (0.000011244, 0.0000012347)
ARM = (0.0000089944, 0.0000009889)


def formula(cpu, memory, seconds, vcpu_s, gb_s, minimum=60):
    billed = max(-(-seconds // 1), minimum)
    return (cpu / 1024 * vcpu_s + memory / 1024 * gb_s) * billed


@pytest.mark.parametrize("cpu,memory,seconds", [(256, 512, 600), (1024, 2048, 61.2), (2048, 4096, 3600),
                                                 (4096, 30720, 7200.5), (16384, 122880, 90)])
def test_fargate_cost_is_the_formula_for_several_sizes(cpu, memory, seconds):
    rate = fargate_rate(load_prices(), "us-east-1", "x86_64")
    assert rate.minimum_seconds == 60
    assert task_cost(cpu, memory, seconds, rate) == pytest.approx(formula(cpu, memory, seconds, *X86))


def test_arm_and_spot_prices():
    prices = load_prices()
    arm = fargate_rate(prices, "us-west-2", "aarch64")
    assert task_cost(1024, 2048, 600, arm) == pytest.approx(formula(1024, 2048, 600, *ARM))
    spot = fargate_rate(prices, "us-east-1", "x86_64", spot=True, spot_discount=0.7)
    assert task_cost(1024, 2048, 600, spot) == pytest.approx(0.3 * formula(1024, 2048, 600, *X86))
    assert "Spot" in spot.basis and "ARM" in arm.basis


def test_short_runs_pay_the_one_minute_minimum_and_whole_seconds():
    rate = fargate_rate(load_prices(), "us-east-1", "x86_64")
    assert billed_seconds(0.4, 60) == 60 and billed_seconds(60.01, 60) == 61 and billed_seconds(12.0) == 12
    assert task_cost(512, 1024, 3, rate) == pytest.approx(formula(512, 1024, 60, *X86))
    assert task_cost(512, 1024, 3, rate) == task_cost(512, 1024, 59.9, rate)


def test_unlisted_region_and_ec2_are_na_unless_priced():
    settings, prices = Settings(), load_prices()
    rate, basis = rate_for({"kind": "ecs", "launch_type": "FARGATE", "region": "xx-nowhere-1"}, settings, prices)
    assert rate is None and estimate(1024, 2048, 100, rate, basis).amount is None and "xx-nowhere-1" in basis
    rate, basis = rate_for({"kind": "ecs", "launch_type": "EC2"}, settings, prices)
    assert rate is None and "n/a" in basis
    priced = Settings(ecs_ec2_vcpu_hour_price=0.036, ecs_ec2_gb_hour_price=0.0045)
    rate, basis = rate_for({"kind": "ecs", "launch_type": "EC2"}, priced, prices)
    assert estimate(2048, 4096, 1800, rate, basis).amount == pytest.approx((2 * 0.036 + 4 * 0.0045) / 2)


def test_process_runs_are_free_unless_given_a_local_rate():
    prices = load_prices()
    rate, basis = rate_for({"kind": "process"}, Settings(), prices)
    assert estimate(1024, 2048, 100, rate, basis).amount == 0
    rate, basis = rate_for({"kind": "process"}, Settings(process_vcpu_hour_price=0.01, process_gb_hour_price=0.002), prices)
    cost = estimate(1024, 2048, 30, rate, basis)  # no minimum locally
    assert cost.amount == pytest.approx((0.01 + 2 * 0.002) * 30 / 3600) and cost.billed_seconds == 30


def test_price_file_overrides_regions(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"date": "2027-01-01", "regions": {
        "eu-central-1": {"x86_64": {"vcpu_second": 0.00001, "gb_second": 0.000001}}}}))
    prices = load_prices(path)
    rate = fargate_rate(prices, "eu-central-1", "x86_64")
    assert task_cost(1024, 1024, 100, rate) == pytest.approx((0.00001 + 0.000001) * 100)
    assert fargate_rate(prices, "us-east-1", "x86_64") is not None and prices["date"] == "2027-01-01"


def test_shipped_price_file_says_its_date_source_and_billing_rule():
    prices = load_prices()
    assert prices["date"] and any("aws.amazon.com/fargate/pricing" in s for s in prices["source"])
    assert prices["billing"]["minimum_seconds"] == 60 and "aws.amazon.com" in prices["billing"]["source"]
    assert Rate(1, 1).minimum_seconds == 0
