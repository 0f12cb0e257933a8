"""The over-saturation test on per-second arrival and completion counts: a growing backlog is found,
a steady high load is not."""
from __future__ import annotations

import numpy as np

from perfkit.analyze.saturation import oversaturation


def counts(send_s: np.ndarray, latency_s: np.ndarray, seconds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-second arrivals, completions within the schedule (the drain after it is not counted) and
    the median latency (ms) of each second's arrivals."""
    edges = np.arange(seconds + 1)
    bins = np.digitize(send_s, edges) - 1
    medians = np.array([np.median(latency_s[bins == b]) * 1e3 if (bins == b).any() else np.nan
                        for b in range(seconds)])
    return np.histogram(send_s, edges)[0], np.histogram(send_s + latency_s, edges)[0], medians


def fifo_server(send_s: np.ndarray, service_s: float) -> np.ndarray:
    """Latencies of one server taking ``service_s`` per request, first come first served."""
    done = np.empty_like(send_s)
    free = 0.0
    for i, t in enumerate(send_s):
        free = max(free, t) + service_s
        done[i] = free
    return done - send_s


def test_a_growing_backlog_is_detected():
    # 100 req/s offered, 60 served: 40 more in flight every second, each waiting longer
    res = oversaturation([100] * 8, [60] * 8, [20, 400, 1000, 1600, 2200, 2800, 3400, 4000])
    assert res.oversaturated is True
    assert res.start_s == 0.0 and res.window_s == 3.0
    assert res.arrival_rps == 100 and res.completion_rps == 60 and res.in_flight == 120
    assert "completions" in res.reason


def test_a_steady_high_load_is_not():
    rng = np.random.default_rng(3)
    send = np.sort(rng.uniform(0, 10, 5000))                  # Poisson, 500 req/s for 10 s
    latency = 0.02 + rng.exponential(0.03, send.size)          # served at once, 50 ms on average
    res = oversaturation(*counts(send, latency, 10))
    assert res.oversaturated is False and res.start_s is None


def test_a_slight_overload_is_detected_from_a_queue_simulation():
    # a single server taking 10 ms per request, offered 115 req/s (Poisson): the queue grows ~15/s
    rng = np.random.default_rng(5)
    send = np.cumsum(rng.exponential(1 / 115, 1200))
    send = send[send < 10]
    res = oversaturation(*counts(send, fifo_server(send, 0.010), 10))
    assert res.oversaturated is True


def test_a_busy_server_that_keeps_up_is_not():
    # the same server offered 85 req/s
    rng = np.random.default_rng(5)
    send = np.cumsum(rng.exponential(1 / 85, 1000))
    send = send[send < 10]
    assert oversaturation(*counts(send, fifo_server(send, 0.010), 10)).oversaturated is False


def test_the_start_up_of_a_slow_service_is_no_backlog():
    # 20 req/s, each taking 2.5 s: 50 in flight once steady, reached only after 2.5 s
    send = np.arange(0, 10, 0.05)
    arrivals, completions, medians = counts(send, np.full(send.size, 2.5), 10)
    assert oversaturation(arrivals, completions).oversaturated is True   # by counts alone the rise looks like a queue
    assert oversaturation(arrivals, completions, medians).oversaturated is False  # but nobody waits longer
    assert oversaturation(arrivals, completions, skip_s=3).oversaturated is False


def test_requests_that_never_completed_wait_without_bound():
    res = oversaturation([50] * 5, [50, 20, 0, 0, 0], [10, 300, float("nan"), float("nan"), float("nan")])
    assert res.oversaturated is True and res.start_s == 1.0     # bin 0 kept up: no growth in it


def test_a_short_dip_that_catches_up_is_not_sustained():
    assert oversaturation([100] * 8, [100, 100, 100, 40, 160, 100, 100, 100]).oversaturated is False


def test_a_few_requests_at_a_low_rate_are_noise():
    assert oversaturation([2] * 8, [2, 1, 0, 1, 2, 2, 2, 2]).oversaturated is False


def test_too_short_to_tell():
    res = oversaturation([100], [50])
    assert res.oversaturated is None and "too short" in res.reason
