"""The knee (Kneedle) on synthetic throughput-latency curves whose knee is known, and the metric names."""
from __future__ import annotations

import numpy as np
import pytest

from perfkit.analyze.knee import kneedle, parse_metric


def test_hockey_stick_knee_is_where_the_slope_breaks():
    x = np.arange(10, 101, 10, dtype=float)
    y = np.where(x <= 60, 10 + 0.01 * x, 10.6 + 5 * (x - 60))
    assert kneedle(x, y) == 5                      # x = 60


def test_queue_curve_knee_at_seventy_percent_load():
    # M/M/1 response time 1 / (mu - lambda) at 10%..90% load: Kneedle's knee is 70%, the classic rule of thumb
    x = np.arange(10, 91, 10, dtype=float)
    assert x[kneedle(x, 1000 / (100 - x))] == 70


def test_throughput_that_falls_past_saturation_keeps_the_knee_on_the_last_good_step():
    achieved = [10, 20, 40, 60, 62, 58]            # the last step achieved less than the one before
    p99 = [5, 5.1, 5.3, 6, 40, 400]
    assert kneedle(achieved, p99) == 3


def test_missing_points_are_skipped_and_indices_stay_those_given():
    x = [10, 20, None, 40, 60, 62, 58]
    y = [5, 5.1, 7.0, 5.3, 6, 40, 400]
    assert kneedle(x, y) == 4
    assert kneedle([10, 20, 30, 40], [5, float("nan"), float("nan"), 9]) is None


def test_no_knee_on_a_straight_line_few_points_or_a_flat_curve():
    assert kneedle([10, 20, 30, 40, 50], [10, 11, 12, 13, 14]) is None
    assert kneedle([10, 20], [1, 100]) is None
    assert kneedle([10, 20, 30], [5, 5, 5]) is None


def test_sensitivity_asks_for_a_sharper_bend():
    x = np.arange(10, 101, 10, dtype=float)
    mild = 10 + (x / 100) ** 2 * 10
    assert kneedle(x, mild, sensitivity=1.0) is not None
    assert kneedle(x, mild, sensitivity=5.0) is None


def test_metric_names():
    m = parse_metric("ttft_p99")
    assert (m.column, m.q) == ("ttft_intended_ms", 0.99)
    assert parse_metric("itl_max_p999").column == "itl_ms_max"
    assert parse_metric("tpot_incl_ttft_p90").column == "tpot_incl_ttft_ms"
    assert parse_metric("itl_request_mean_p50").column == "itl_request_mean_ms"
    assert parse_metric("latency_p50").q == 0.5
    for bad in ("latency", "p99", "latency_p98", "gpu_p99"):
        with pytest.raises(ValueError, match="unknown knee metric"):
            parse_metric(bad)


def test_no_knee_where_latency_falls_or_only_the_last_step_bends():
    # a fast server warming up: P99 falls as the rate rises (measured: the demo without batching)
    assert kneedle([25, 50, 100, 200, 400], [28.0, 10.3, 7.7, 5.2, 6.3]) is None
    assert kneedle([10, 20, 40, 80], [5, 5.1, 5.2, 50]) == 2
    assert kneedle([10, 20, 40, 80], [5, 5.05, 5.1, 5.2]) is None
