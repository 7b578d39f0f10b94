"""Counter arithmetic (analytics.intervals), pure: DOMAIN.md §8 edge cases one by one."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.intervals import (
    BREAK,
    REFUSED,
    RESET,
    ROLLOVER,
    MeterSpec,
    MultiplierChange,
    Replacement,
    bucket_energy,
    interval_steps,
    meter_buckets,
    register_steps,
)

T0 = 1_738_339_200.0  # 2025-02-01 00:00 +08:00, a bucket boundary
Q = 900.0
SPEC = MeterSpec("register", 1.0, None, 900, 400.0)


def series(values: list[float], step: float = Q) -> tuple[np.ndarray, np.ndarray]:
    return T0 + step * np.arange(len(values)), np.array(values, dtype=np.float64)


def booked(values: list[float], spec: MeterSpec = SPEC, **kw: object) -> float:
    ts, v = series(values)
    return float(register_steps(ts, v, spec, **kw).quantity.sum())  # type: ignore[arg-type]


def test_regular_register_deltas_times_multiplier() -> None:
    ts, v = series([100, 101, 103, 106])
    steps = register_steps(ts, v, MeterSpec("register", 200.0, None, 900, 10_000.0))
    assert steps.quantity.tolist() == [0.0, 200.0, 400.0, 600.0]
    assert not steps.estimated.any()


def test_transient_zero_is_missing_not_consumption() -> None:
    steps = register_steps(*series([1000, 1010, 0, 1030, 1040]), SPEC)
    assert steps.quantity.sum() == pytest.approx(40.0)
    assert len(steps.reading_s) == 4  # the zero is not a reading
    assert steps.estimated.tolist() == [False, False, True, False]


def test_missing_value_is_never_zero() -> None:
    assert booked([1000, 1010, float("nan"), 1030]) == pytest.approx(30.0)


def test_true_rollover_by_modulus() -> None:
    spec = MeterSpec("register", 1.0, 100_000.0, 900, 400.0)
    steps = register_steps(*series([99_980, 99_990, 5, 15, 25, 35, 45]), spec)
    assert steps.quantity.sum() == pytest.approx(65.0)
    assert ROLLOVER in steps.kind.tolist()


def test_drop_without_modulus_or_event_is_not_booked() -> None:
    steps = register_steps(*series([500, 510, 520, 103, 113, 123, 133, 143]), SPEC)
    assert steps.quantity.sum() == pytest.approx(60.0)
    assert BREAK in steps.kind[1:].tolist()


def test_persisting_near_zero_is_a_reset() -> None:
    steps = register_steps(*series([5000, 5010, 2, 6, 12, 20, 30]), SPEC)
    assert steps.quantity.sum() == pytest.approx(10 + 2 + 28)
    assert RESET in steps.kind.tolist()


def test_flat_zero_for_hours_then_back_is_missing() -> None:
    values = [1000.0, 1010.0] + [0.0] * 12 + [1150.0, 1160.0]
    assert booked(values) == pytest.approx(160.0)


def test_recorded_replacement_joins_registers() -> None:
    ts, v = series([480, 490, 500, 103, 113])
    rep = Replacement(T0 + 2.5 * Q, final_register=505, initial_register=100)
    steps = register_steps(ts, v, SPEC, replacements=[rep])
    assert steps.quantity.sum() == pytest.approx(10 + 10 + 5 + 3 + 10)


def test_stuck_register_books_zero_and_refuses_the_jump() -> None:
    steps = register_steps(*series([1000, 1010] + [1010] * 8 + [2000, 2010, 2020, 2030, 2040, 2050]), SPEC)
    assert steps.quantity.sum() == pytest.approx(10 + 50)
    assert steps.flagged.sum() == pytest.approx(990.0)
    assert REFUSED in steps.kind.tolist()


def test_spike_beyond_rated_capacity_is_flagged_not_booked() -> None:
    steps = register_steps(*series([1000, 1010, 90_000, 1030, 1040]), SPEC)
    assert steps.quantity.sum() == pytest.approx(40.0)
    assert steps.flagged.sum() == pytest.approx(90_000 - 1010)


def test_spike_without_capacity_is_still_an_outlier() -> None:
    spec = MeterSpec("register", 1.0, None, 900, None)
    steps = register_steps(*series([1000, 1010, 5000, 1020, 1030, 1040, 1050, 1060]), spec)
    assert steps.quantity.sum() == pytest.approx(60.0)


def test_gap_spread_evenly_and_marked_estimated() -> None:
    ts, v = series([1000, 1010, 1020, 1080, 1090])
    ts = np.delete(T0 + Q * np.arange(10), [3, 4, 5, 6, 7])  # 5 readings missing
    steps = register_steps(ts, v, SPEC)
    buckets = bucket_energy(steps, 900)
    gap = buckets.estimated_quantity > 0
    assert buckets.estimated_quantity.sum() == pytest.approx(60.0)
    assert buckets.estimated_quantity[gap] == pytest.approx([10.0] * 6)
    assert buckets.coverage[gap].tolist() == [0.0] * 5 + [1.0]


def test_undecided_drop_at_the_end_is_pending() -> None:
    steps = register_steps(*series([1000, 1010, 0, 2]), SPEC)
    assert steps.pending_from_s == T0 + 2 * Q
    assert steps.quantity.sum() == pytest.approx(10.0)


def test_multiplier_change_from_its_effective_time() -> None:
    ts, v = series([10, 11, 12, 13, 14])
    change = MultiplierChange(T0 + 2 * Q, 200.0)
    spec = MeterSpec("register", 100.0, None, 900, 1e6)
    steps = register_steps(ts, v, spec, multiplier_changes=[change])
    assert steps.quantity.tolist() == [0.0, 100.0, 100.0, 200.0, 200.0]
    halfway = MultiplierChange(T0 + 2.5 * Q, 200.0)
    assert register_steps(ts, v, spec, multiplier_changes=[halfway]).quantity[3] == pytest.approx(150.0)


def test_interval_meter_and_capacity() -> None:
    ts, v = series([10.0, 20.0, 500.0, 30.0], step=3600.0)
    steps = interval_steps(ts, v, MeterSpec("interval", 1.0, None, 3600, 80.0))
    assert steps.quantity.tolist() == [10.0, 20.0, 0.0, 30.0]
    assert steps.flagged.sum() == 500.0
    buckets = bucket_energy(steps, 3600)
    assert buckets.quantity.sum() == pytest.approx(60.0)
    assert buckets.expected_readings.sum() == 4 and buckets.readings.sum() == 4


def test_coverage_per_bucket_and_gauges_refused() -> None:
    buckets, _ = meter_buckets(*series([1.0, 2.0, 3.0]), SPEC)
    assert buckets.readings.tolist() == [1, 1, 1]
    assert buckets.coverage.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="gauge"):
        meter_buckets(*series([1.0]), MeterSpec("gauge"))
