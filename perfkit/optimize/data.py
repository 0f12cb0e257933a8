"""The digits data split behind every variant, and accuracy on the held-out part.

The teacher (the FP32 reference) is trained on the training split only, so the
test split is data that no variant ever saw: not in training, not in calibration
(static quantization calibrates on training rows), not in distillation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from perfkit.quantiles import Estimate, proportion_ci

TEST_FRACTION = 0.3
SPLIT_SEED = 0


@dataclass(frozen=True)
class Split:
    """Row indices of the digits data set: training and held-out test (disjoint)."""

    train: np.ndarray
    test: np.ndarray


def digits_split(test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> Split:
    """A stratified, seeded split of scikit-learn's digits rows."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    labels = load_digits().target
    train, test = train_test_split(np.arange(len(labels)), test_size=test_fraction, random_state=seed,
                                   stratify=labels)
    return Split(np.sort(train), np.sort(test))


def digits_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32 ``[N, 64]``) and labels of the given rows."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data[rows].astype(np.float32), data.target[rows].astype(np.int64)


def predict(session: Any, features: np.ndarray) -> np.ndarray:
    """Class labels from any classifier session: its first output of integer labels ``[N]`` when it has
    one (skl2onnx's ``label``), else the arg-max over the last axis of its first output (scores ``[N, C]``)."""
    outputs = session.run(None, {session.get_inputs()[0].name: features})
    for meta, value in zip(session.get_outputs(), outputs):
        if "int" in meta.type and np.asarray(value).ndim == 1:
            return np.asarray(value).astype(np.int64)
    return np.asarray(outputs[0]).argmax(axis=-1).astype(np.int64)


def accuracy(session: Any, features: np.ndarray, labels: np.ndarray, confidence: float = 0.95) -> Estimate:
    """Top-1 accuracy of an onnxruntime session on ``features`` with its Clopper–Pearson interval."""
    correct = int((predict(session, features) == np.asarray(labels).astype(np.int64)).sum())
    return proportion_ci(correct, len(labels), confidence)
