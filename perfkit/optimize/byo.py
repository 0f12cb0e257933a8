"""Bring your own model: the quantization and runtime variants of a user's ONNX classifier, scored and profiled.

In: an ONNX classifier (first input: a batch of samples; output: integer labels
``[N]`` or class scores ``[N, C]``) and a NumPy ``.npz`` test set with
``inputs`` and ``labels`` (and optionally ``calibration``: rows for static
quantization; without it the first quarter of ``inputs``, at most 256 rows,
calibrates and is left out of the scoring, so the score stays on unseen data).
Out: per variant its accuracy with the Clopper–Pearson interval, file size, the
model call on a batch in-process, and the edge profile (:mod:`perfkit.optimize.edge`).

A variant that onnxruntime's tools cannot build from the graph (e.g. a model
with no ``ai.onnx`` operators to quantize) is a row with the reason in ``note``.
Pruning and distillation are not offered: they rewrite the demo MLP's dense
layers by name, which an arbitrary graph does not have. Nor is serving: the demo
server speaks the digits classifier's 64-value rows.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfkit.demo.cache import cached_file
from perfkit.demo.model import open_session
from perfkit.errors import UsageError
from perfkit.optimize.data import accuracy
from perfkit.optimize.edge import run_file
from perfkit.optimize.variants import SPECS, quantized

#: The variants a user's model gets: INT8 (dynamic, static MinMax and Entropy per-channel) and graph levels.
BYO_VARIANTS = ("fp32", "int8-dynamic", "int8-static-minmax", "int8-static-entropy", "ort-disabled", "ort-basic")
CALIBRATION_MAX = 256


@dataclass(frozen=True)
class TestSet:
    """Samples and labels to score on, and the rows static quantization calibrates on (never scored)."""

    inputs: np.ndarray
    labels: np.ndarray
    calibration: np.ndarray


def load_test_set(path: str | Path) -> TestSet:
    """Read a ``.npz`` with ``inputs`` and ``labels`` (and optionally ``calibration``)."""
    try:
        data = np.load(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--test-set {path}: not a NumPy .npz file ({exc})") from None
    missing = [k for k in ("inputs", "labels") if k not in data.files]
    if missing:
        raise UsageError(f"--test-set {path}: no array {', '.join(missing)} (has {', '.join(data.files) or 'none'})")
    inputs, labels = np.asarray(data["inputs"], dtype=np.float32), np.asarray(data["labels"]).astype(np.int64)
    if len(inputs) != len(labels) or len(labels) < 2:
        raise UsageError(f"--test-set {path}: {len(inputs)} inputs but {len(labels)} labels")
    if "calibration" in data.files:
        return TestSet(inputs, labels, np.asarray(data["calibration"], dtype=np.float32))
    cut = min(CALIBRATION_MAX, max(1, len(inputs) // 4))
    return TestSet(inputs[cut:], labels[cut:], inputs[:cut])


def _variant_file(model: Path, name: str, test_set: TestSet) -> Path:
    """The cached ONNX file of variant ``name`` of ``model`` (the model itself for FP32 and runtime settings)."""
    spec = SPECS[name]
    if spec.technique != "quantization":
        return model
    digest = hashlib.sha256(model.read_bytes() + test_set.calibration.tobytes()).hexdigest()[:16]
    path, _ = cached_file(f"byo-{digest}-{name}.onnx",
                          lambda: quantized(model, spec.params, lambda: test_set.calibration))
    return path


def evaluate(model: str | Path, test_set: TestSet, *, edge_cap_mb: int | None = 4096, edge_s: float = 1.0,
             batch: int = 32) -> pd.DataFrame:
    """One row per variant of ``model``: accuracy and interval, kept share, size, batch call time, edge profile."""
    from perfkit.optimize.measure import kernel_ms

    model = Path(model)
    if not model.is_file():
        raise UsageError(f"--model {model}: no such file")
    rows: list[dict[str, Any]] = []
    for name in BYO_VARIANTS:
        try:
            path = _variant_file(model, name, test_set)
        except Exception as exc:  # onnxruntime's tools refuse some graphs: a result for this variant, not a crash
            rows.append({"variant": name, "about": SPECS[name].about, "note": f"not built: {exc}"})
            continue
        level = str(SPECS[name].params.get("graph_level", "all"))
        session = open_session(path, threads=1, graph_level=level)
        acc = accuracy(session, test_set.inputs, test_set.labels)
        row = {"variant": name, "about": SPECS[name].about, "accuracy": acc.value, "acc_lo": acc.lo,
               "acc_hi": acc.hi, "tested": acc.n, "size_kb": path.stat().st_size / 1024,
               "kernel_ms": kernel_ms(session, test_set.inputs[:batch]), "note": ""}
        if edge_cap_mb is not None:
            edge = run_file(name, path, test_set.inputs, level, edge_cap_mb, edge_s)
            row.update(edge_fps=edge.fps, edge_p90_ms=edge.p90_ms, note=edge.reason)
        rows.append(row)
    frame = pd.DataFrame(rows)
    ref = frame.iloc[0]
    frame["kept_pct"] = 100 * frame["accuracy"] / ref["accuracy"]
    frame["kernel_ratio"] = frame["kernel_ms"] / ref["kernel_ms"]
    frame["size_ratio"] = frame["size_kb"] / ref["size_kb"]
    return frame
