"""The pure weight transformations and the frontier/verdict helpers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from perfkit.optimize import weights as W
from perfkit.optimize.results import direction, pareto, with_ratios
from perfkit.quantiles import Estimate


def _layers(seed: int = 0) -> W.Layers:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(6, 8)), rng.normal(size=(1, 8))), (rng.normal(size=(8, 3)), rng.normal(size=(1, 3)))]


def test_remove_units_drops_dead_units_without_changing_the_output():
    layers = _layers()
    layers[1][0][[1, 4, 6, 7], :] = 0.0  # four units whose outputs nothing reads
    pruned = W.remove_units(layers, 0.5)
    assert W.hidden_widths(pruned) == (4,) and pruned[1][0].shape == (4, 3)
    x = np.random.default_rng(1).normal(size=(5, 6))
    assert np.allclose(W.forward_logits(pruned, x), W.forward_logits(layers, x))


def test_magnitude_prune_zeroes_the_smallest_weights_only():
    layers = _layers()
    pruned = W.magnitude_prune(layers, 0.75)
    for (w, b), (w0, b0) in zip(pruned, layers):
        assert w.shape == w0.shape and np.array_equal(b, b0)
        kept = w != 0
        assert 0.2 <= kept.mean() <= 0.3
        assert np.abs(w0[kept]).min() >= np.abs(w0[~kept]).max()
    assert 0.7 <= W.sparsity(pruned) <= 0.8


def test_students_learn_and_differ_only_in_their_targets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + 2 * (x[:, 2] > 0)
    teacher = np.eye(10)[y] * 8.0
    hard = W.train_student(x, y, (16,), epochs=30)
    soft = W.train_student(x, y, (16,), teacher_logits=teacher, epochs=30)
    for student in (hard, soft):
        assert (W.forward_logits(student, x).argmax(axis=1) == y).mean() > 0.8  # chance: 0.25
    assert not np.allclose(hard[0][0], soft[0][0])


def test_pareto_keeps_only_undominated_points():
    latency = np.array([10.0, 5.0, 8.0, 5.0, 20.0])
    acc = np.array([0.98, 0.90, 0.99, 0.95, 0.99])
    assert pareto(latency, acc).tolist() == [False, False, True, True, False]


def test_ratios_and_the_99_percent_bar():
    frame = pd.DataFrame({"variant": ["fp32", "a", "b"], "accuracy": [0.98, 0.975, 0.95], "acc_lo": [0.96] * 3,
                          "acc_hi": [0.99] * 3, "p50_ms": [4.0, 2.0, 4.0], "p99_ms": [10.0, 5.0, 12.0],
                          "peak_rss_mb": [100.0] * 3, "size_kb": [1000.0, 250.0, 1000.0],
                          "capacity_rps_per_core": [500.0, 1000.0, 500.0], "kernel_ms": [0.1, 0.05, 0.1]})
    out = with_ratios(frame)
    assert out["within_99"].tolist() == [True, True, False]
    assert out["p99_ratio"].tolist() == [1.0, 0.5, 1.2] and out["size_ratio"].tolist()[1] == 0.25
    assert out["pareto"].tolist() == [True, True, False]


def test_direction_names_the_p99_decision():
    def est(lo: float, hi: float) -> Estimate:
        return Estimate((lo + hi) / 2, lo, hi, 100, 0.9, "bootstrap", "ms")

    assert direction("fail", est(2, 3), 1.0) == "slower"
    assert direction("pass", est(-3, -2), 1.0) == "faster"
    assert direction("pass", est(-0.5, 0.5), 1.0) == "same"
    assert direction("pass", est(-2, 0.5), 1.0) == "not slower"
    assert direction("inconclusive", est(-2, 2), 1.0) == "inconclusive"
