"""The judge's error rates on synthetic runs: autocorrelated (AR(1)) requests and a run-level random effect.

Fixed seed, so the counts are deterministic; the bounds are generous binomial
ones around the targets (false alarms <= 5 %, detection of +10 % >= 80 %).
"""
from __future__ import annotations

import numpy as np

from ab_synth import runs
from perfkit.analyze import abtest

PAIRS = 40
TH = abtest.Thresholds(resamples=200, outer=1000)


def _fails(base: abtest.Arm, cand: abtest.Arm, seed: int) -> bool:
    return abtest.overall(abtest.judge(base, cand, TH, seed=seed)) == "fail"


def test_false_alarms_on_a_a_and_detection_of_a_ten_percent_slowdown_with_three_runs_per_arm():
    rng = np.random.default_rng(20261201)
    false_alarms = detected = 0
    for i in range(PAIRS):
        base = abtest.bootstrap_arm("baseline", "", runs(rng, 3), TH, i)
        same = abtest.bootstrap_arm("candidate", "", runs(rng, 3, tag="c"), TH, i)
        slower = abtest.bootstrap_arm("candidate", "", runs(rng, 3, scale=1.1, tag="c"), TH, i)
        false_alarms += _fails(base, same, i)
        detected += _fails(base, slower, i)
    assert false_alarms <= 0.10 * PAIRS, f"{false_alarms} false alarms in {PAIRS} A/A pairs"
    assert detected >= 0.70 * PAIRS, f"+10 % detected in only {detected} of {PAIRS} pairs"
