"""Statistics of each arrival pattern, checked on the pure schedule arrays."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from perfkit.bench import schedule as sch
from perfkit.errors import InputError, UsageError


def test_constant_is_evenly_spaced_and_counts_rate_times_duration():
    offs = sch.constant(50.0, 4.0)
    assert len(offs) == 200
    assert offs[0] == 0.0
    assert np.allclose(np.diff(offs), 0.02)
    assert offs[-1] < 4.0


def test_poisson_interarrivals_are_exponential_ks():
    offs = sch.poisson(200.0, 60.0, seed=3)
    gaps = np.diff(offs)
    # KS against Exp(mean 1/200): a Poisson process must not be rejected.
    assert stats.kstest(gaps, "expon", args=(0, 1 / 200.0)).pvalue > 0.01
    assert len(offs) == pytest.approx(12000, rel=0.05)
    # ...and a constant schedule must be rejected by the same test (the test can fail).
    assert stats.kstest(np.diff(sch.constant(200.0, 60.0)), "expon", args=(0, 1 / 200.0)).pvalue < 1e-6


@pytest.mark.parametrize("b", [0.25, 1.0, 4.0])
def test_gamma_cv_is_one_over_sqrt_burstiness(b):
    gaps = np.diff(sch.gamma(100.0, 200.0, burstiness=b, seed=11))
    cv = gaps.std() / gaps.mean()
    assert cv == pytest.approx(1 / np.sqrt(b), rel=0.08)
    assert gaps.mean() == pytest.approx(0.01, rel=0.05)


def test_seeded_schedules_are_reproducible_and_seed_matters():
    a = sch.gamma(100, 5, 0.5, seed=1)
    assert np.array_equal(a, sch.gamma(100, 5, 0.5, seed=1))
    assert not np.array_equal(a, sch.gamma(100, 5, 0.5, seed=2))


def test_step_levels():
    offs = sch.step(start_rps=10, step_rps=20, step_s=2.0, steps=4)
    counts = np.histogram(offs, bins=[0, 2, 4, 6, 8])[0]
    assert counts.tolist() == [20, 60, 100, 140]


def test_ramp_rate_follows_the_line():
    offs = sch.ramp(10.0, 110.0, 20.0)
    assert len(offs) == 1200  # (10 + 110) / 2 * 20
    counts, edges = np.histogram(offs, bins=np.arange(0, 21, 1.0))
    mids = (edges[:-1] + edges[1:]) / 2
    slope, intercept = np.polyfit(mids, counts, 1)
    assert slope == pytest.approx(5.0, rel=0.03)       # (110 - 10) / 20 rps per second
    assert intercept == pytest.approx(10.0, abs=1.0)
    assert np.all(np.diff(offs) > 0)


def test_burst_heights_and_period():
    offs = sch.burst(base_rps=10, duration_s=10, spike_rps=90, period_s=5, spike_s=1)
    per_s = np.histogram(offs, bins=np.arange(0, 11, 1.0))[0]
    assert per_s.tolist() == [100, 10, 10, 10, 10, 100, 10, 10, 10, 10]


def test_build_concatenates_stages_with_stage_index():
    offs, idx, total = sch.build([sch.Stage("constant", 2.0, 10.0), sch.Stage("constant", 1.0, 5.0)])
    assert total == 3.0
    assert len(offs) == 25 and idx.tolist() == [0] * 20 + [1] * 5
    assert offs[20] == pytest.approx(2.0)


def test_replay_reads_offsets_and_names_the_bad_line(tmp_path):
    good = tmp_path / "trace.csv"
    good.write_text("offset_s,user\n0.5,a\n0.1,b\n1.5,c\n")
    assert sch.replay(good).tolist() == [0.1, 0.5, 1.5]
    assert sch.replay(good, speed=2).tolist() == [0.05, 0.25, 0.75]
    bad = tmp_path / "bad.csv"
    bad.write_text("0.1\n0.2\nsoon\n")
    with pytest.raises(InputError, match=r"bad.csv:3: offset is not a number"):
        sch.replay(bad)


@pytest.mark.parametrize("call", [lambda: sch.constant(0, 1), lambda: sch.constant(1, -1),
                                  lambda: sch.gamma(1, 1, burstiness=0), lambda: sch.step(1, 1, 1, 0),
                                  lambda: sch.burst(1, 10, 5, 1, 2)])
def test_bad_knobs_are_usage_errors(call):
    with pytest.raises(UsageError):
        call()


def test_timerfd_never_wakes_before_the_instant():
    import asyncio
    import time

    from perfkit.bench import timer

    async def main():
        t = timer.create()
        if t is None:
            pytest.skip("no timerfd on this platform")
        lateness = []
        for k in range(50):
            due = time.monotonic_ns() + 50_000 * (k % 5)
            await t.sleep_until(due)
            lateness.append(time.monotonic_ns() - due)
        t.close()
        return lateness

    assert min(asyncio.run(main())) >= 0


@settings(max_examples=60, deadline=None)
@given(rate=st.floats(0.5, 5000), duration=st.floats(0.1, 20), seed=st.integers(0, 2**31))
def test_every_pattern_gives_sorted_offsets_inside_the_run(rate, duration, seed):
    for offs in (sch.constant(rate, duration), sch.poisson(rate, duration, seed),
                 sch.gamma(rate, duration, 0.3, seed), sch.ramp(rate, rate / 3, duration)):
        assert np.all(np.diff(offs) >= 0)
        assert offs.size == 0 or (offs[0] >= 0 and offs[-1] < duration)
    assert len(sch.constant(rate, duration)) == int(np.ceil(rate * duration - 1e-9))


def test_intended_mean_rate_of_stages():
    assert sch.Stage("poisson", duration_s=2, rate_rps=2).mean_rate_rps() == 2
    assert sch.Stage("ramp", duration_s=10, from_rps=10, to_rps=30).mean_rate_rps() == pytest.approx(20)
    assert sch.Stage("step", rate_rps=10, step_rps=10, step_s=1, steps=3).mean_rate_rps() == pytest.approx(20)
    assert sch.Stage("closed", concurrency=2).mean_rate_rps() is None
