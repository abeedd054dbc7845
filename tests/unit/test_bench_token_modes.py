"""The token benchmark's verdict over both revocation modes: each mode's best valid round, their
ratio, and the targets (default >= 0.8 x cached, >= 1,000 tokens/s)."""

from __future__ import annotations

from typing import Any

from testbed.bench.driver import NAME as PYTHON_DRIVER
from testbed.bench.token_modes import (
    CACHED_LABEL,
    DEFAULT_LABEL,
    best,
    measure,
    summary_lines,
    verdict,
    with_cpu,
)


def _round(per_second: float, *, other: int = 0, driver: str = "wrk 4.1.0", cpu: float = 5.0) -> dict[str, Any]:
    measured = {"per_second": per_second, "driver": driver, "statuses": {"2xx": int(per_second * 5), "other": other}}
    return with_cpu(measured, cpu)


def _rounds(default: list[dict[str, Any]], cached: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {DEFAULT_LABEL: default, CACHED_LABEL: cached}


def test_both_targets_met_with_the_best_round_of_each_mode():
    found = verdict(_rounds([_round(1100), _round(1200)], [_round(1400), _round(1300)]))
    assert found["default_per_second"] == 1200 and found["cached_per_second"] == 1400
    assert found["default_to_cached"] == round(1200 / 1400, 3)
    assert found["ratio_met"] and found["throughput_met"] and found["target_met"]
    assert found["rounds"][DEFAULT_LABEL] == [1100, 1200]


def test_a_default_under_0_8_of_cached_misses_the_ratio():
    found = verdict(_rounds([_round(1100)], [_round(1500)]))
    assert not found["ratio_met"] and found["throughput_met"] and not found["target_met"]


def test_a_default_under_1000_per_second_misses_the_throughput_target():
    found = verdict(_rounds([_round(900)], [_round(950)]))
    assert found["ratio_met"] and not found["throughput_met"] and not found["target_met"]


def test_a_round_with_refusals_does_not_count():
    assert best([_round(2000, other=3), _round(1200)])["per_second"] == 1200
    found = verdict(_rounds([_round(2000, other=3)], [_round(1300)]))
    assert not found["valid"] and not found["target_met"]


def test_the_python_drivers_figures_are_not_judged():
    found = verdict(_rounds([_round(1200, driver=PYTHON_DRIVER)], [_round(1300, driver=PYTHON_DRIVER)]))
    assert found["target_met"] is None and "not judged" in "\n".join(summary_lines(found))


def test_the_modes_take_turns():
    order: list[str] = []
    rounds = measure(
        {DEFAULT_LABEL: "default", CACHED_LABEL: "cached"},  # type: ignore[dict-item]
        lambda running: order.append(running) or _round(1000),  # type: ignore[func-returns-value]
        rounds=2,
        progress=lambda _: None,
    )
    assert order == ["default", "cached", "default", "cached"]
    assert [len(found) for found in rounds.values()] == [2, 2]


def test_tokens_per_cpu_second_compare_the_modes_costs_apart_from_tokens_per_second():
    assert with_cpu(_round(1000), 4.0)["per_server_cpu_second"] == 1250.0
    assert with_cpu(_round(1000), 0.0)["per_server_cpu_second"] == 0.0
    # a busy machine took half the core in the cached rounds: tokens/s mislead, CPU-seconds do not
    found = verdict(_rounds([_round(900, cpu=5.0)], [_round(600, cpu=2.5)]))
    assert found["default_per_cpu_second"] == 900 and found["cached_per_cpu_second"] == 1200
    assert found["default_to_cached_by_cpu"] == 0.75
    assert "per CPU-second" in "\n".join(summary_lines(found))
