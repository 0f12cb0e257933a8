"""Pure transformations of the MLP's weights: magnitude pruning, unit removal, a student trained by distillation.

The weights are the skl2onnx graph's initializers as NumPy arrays:
``coefficient``, ``coefficient1``... (``[in, out]``) and ``intercepts``,
``intercepts1``... (``[1, out]``), one pair per dense layer, the last one the
10-class read-out. Nothing here touches files or onnxruntime.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

Layers = list[tuple[np.ndarray, np.ndarray]]


def layer_names(count: int) -> list[tuple[str, str]]:
    """skl2onnx's initializer names of ``count`` dense layers."""
    return [(f"coefficient{i or ''}", f"intercepts{i or ''}") for i in range(count)]


def magnitude_prune(layers: Layers, sparsity: float) -> Layers:
    """Zero the ``sparsity`` fraction of smallest-magnitude weights of each matrix; shapes unchanged."""
    out = []
    for weight, bias in layers:
        cut = np.quantile(np.abs(weight), sparsity)
        out.append((np.where(np.abs(weight) <= cut, 0.0, weight).astype(weight.dtype), bias))
    return out


def remove_units(layers: Layers, fraction: float) -> Layers:
    """Remove the ``fraction`` of each hidden layer's units with the least weight through them.

    A unit's score is the norm of its incoming column times the norm of its
    outgoing row; dropping it deletes that column (and bias) and that row, so the
    matrices really shrink. The read-out layer keeps its 10 classes.
    """
    out = [(w.copy(), b.copy()) for w, b in layers]
    for i in range(len(out) - 1):
        w_in, b_in = out[i]
        w_out, b_out = out[i + 1]
        score = np.linalg.norm(w_in, axis=0) * np.linalg.norm(w_out, axis=1)
        keep_n = max(1, int(round(w_in.shape[1] * (1.0 - fraction))))
        keep = np.sort(np.argsort(score)[::-1][:keep_n])
        out[i] = (w_in[:, keep], b_in[:, keep])
        out[i + 1] = (w_out[keep, :], b_out)
    return out


def forward_logits(layers: Layers, features: np.ndarray) -> np.ndarray:
    """ReLU MLP logits of already-scaled ``features``."""
    h = features
    for weight, bias in layers[:-1]:
        h = np.maximum(h @ weight + bias, 0.0)
    weight, bias = layers[-1]
    return np.asarray(h @ weight + bias)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def train_student(features: np.ndarray, labels: np.ndarray, hidden: Sequence[int], *,
                  teacher_logits: np.ndarray | None = None, temperature: float = 4.0,
                  epochs: int = 60, batch: int = 64, lr: float = 3e-3, l2: float = 1e-4,
                  seed: int = 0) -> Layers:
    """Train a ReLU MLP with Adam on scaled ``features``.

    With ``teacher_logits`` the target is the teacher's temperature-softened
    distribution (loss ``T^2 * CE(softmax(t/T), softmax(z/T))``, Hinton et al.);
    without, the one-hot labels. Same seed, initialisation and schedule either way,
    so the two students differ only in what they learn from.
    """
    rng = np.random.default_rng(seed)
    sizes = [features.shape[1], *hidden, 10]
    params: Layers = [(rng.normal(0, np.sqrt(2.0 / a), (a, b)).astype(np.float64), np.zeros((1, b)))
                      for a, b in zip(sizes[:-1], sizes[1:])]
    if teacher_logits is not None:
        targets, scale = _softmax(teacher_logits / temperature), temperature
    else:
        targets, scale = np.eye(10)[labels], 1.0
    moments = [[np.zeros_like(p) for p in pair for _ in (0, 1)] for pair in params]
    step = 0
    for _epoch in range(epochs):
        order = rng.permutation(len(features))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            acts = [features[idx]]
            for weight, bias in params[:-1]:
                acts.append(np.maximum(acts[-1] @ weight + bias, 0.0))
            logits = acts[-1] @ params[-1][0] + params[-1][1]
            # d(T^2 CE)/dz = T (softmax(z/T) - target); T = 1 for hard labels
            delta = scale * (_softmax(logits / scale) - targets[idx]) / len(idx)
            step += 1
            for layer in range(len(params) - 1, -1, -1):
                weight, bias = params[layer]
                grads = (acts[layer].T @ delta + l2 * weight, delta.sum(axis=0, keepdims=True))
                if layer:
                    delta = (delta @ weight.T) * (acts[layer] > 0)
                params[layer] = _adam(params[layer], grads, moments[layer], step, lr)
    return [(w.astype(np.float32), b.astype(np.float32)) for w, b in params]


def _adam(pair: tuple[np.ndarray, np.ndarray], grads: tuple[np.ndarray, np.ndarray], m: list[np.ndarray],
          step: int, lr: float, b1: float = 0.9, b2: float = 0.999) -> tuple[np.ndarray, np.ndarray]:
    """One Adam update of a (weight, bias) pair; ``m`` holds [m_w, v_w, m_b, v_b], updated in place."""
    new = []
    for k, (param, grad) in enumerate(zip(pair, grads)):
        m[2 * k] = b1 * m[2 * k] + (1 - b1) * grad
        m[2 * k + 1] = b2 * m[2 * k + 1] + (1 - b2) * grad ** 2
        m_hat, v_hat = m[2 * k] / (1 - b1 ** step), m[2 * k + 1] / (1 - b2 ** step)
        new.append(param - lr * m_hat / (np.sqrt(v_hat) + 1e-8))
    return new[0], new[1]


def scaled(features: np.ndarray, offset: Sequence[float], scale: Sequence[float]) -> np.ndarray:
    """The skl2onnx ``Scaler`` node: ``(x - offset) * scale``."""
    return np.asarray((features - np.asarray(offset)) * np.asarray(scale), dtype=np.float64)


def sparsity(layers: Layers) -> float:
    """Fraction of exactly-zero weights over all matrices."""
    zeros = sum(int((w == 0).sum()) for w, _ in layers)
    return zeros / max(1, sum(w.size for w, _ in layers))


def hidden_widths(layers: Layers) -> tuple[int, ...]:
    """The hidden layer widths of ``layers``."""
    return tuple(int(w.shape[1]) for w, _ in layers[:-1])


def as_mapping(layers: Layers) -> Mapping[str, np.ndarray]:
    """Initializer name -> array for writing ``layers`` back into the graph."""
    out: dict[str, np.ndarray] = {}
    for (wn, bn), (w, b) in zip(layer_names(len(layers)), layers):
        out[wn], out[bn] = w, b
    return out
