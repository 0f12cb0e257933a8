"""The model variants: built reproducibly from the demo's FP32 MLP, cached, and recorded for ``serve-demo``.

Every variant derives from one teacher: the demo's recipe (``StandardScaler ->
MLPClassifier``, 512x512, seed 0) trained on the training split of
:mod:`perfkit.optimize.data` only. A variant is an ONNX file in the cache folder,
named by a hash of its recipe (so a changed recipe or library rebuilds it), plus
a manifest ``digits-variant-NAME.json`` that ``perfkit serve-demo --model-variant
NAME`` reads (:func:`perfkit.demo.model.load_variant`): the file, its hidden widths
and its session settings (graph optimization level, intra-op threads).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from perfkit.demo.cache import cached_file, recipe_key
from perfkit.demo.model import DEFAULT_HIDDEN, build_onnx, variant_manifest
from perfkit.optimize import weights as W
from perfkit.optimize.data import SPLIT_SEED, TEST_FRACTION, digits_rows, digits_split

STUDENT_HIDDEN = (32, 32)
CALIBRATION_ROWS = 256


@dataclass(frozen=True)
class Spec:
    """One variant: its technique and the parameters of its build."""

    name: str
    technique: str
    about: str
    params: dict[str, Any] = field(default_factory=dict)


def _specs() -> list[Spec]:
    specs = [Spec("fp32", "reference", "FP32 teacher, 512x512, graph optimization all, 1 thread"),
             Spec("int8-dynamic", "quantization", "dynamic INT8 (weights int8, activations quantized per batch)",
                  {"method": "dynamic"})]
    for calib in ("minmax", "entropy", "percentile"):
        specs.append(Spec(f"int8-static-{calib}", "quantization",
                          f"static QDQ INT8, {calib} calibration, per-channel weights",
                          {"method": "static", "calibration": calib, "per_channel": True}))
    specs.append(Spec("int8-static-minmax-tensor", "quantization", "static QDQ INT8, minmax, per-tensor weights",
                      {"method": "static", "calibration": "minmax", "per_channel": False}))
    for pct in (50, 80, 90):
        specs.append(Spec(f"prune-unstructured-{pct}", "unstructured pruning",
                          f"{pct}% of each matrix's smallest weights zeroed, shapes unchanged", {"sparsity": pct / 100}))
    for pct in (50, 75):
        specs.append(Spec(f"prune-structured-{pct}", "structured pruning",
                          f"{pct}% of hidden units removed, matrices shrink", {"fraction": pct / 100}))
    for kind in ("kd", "hard"):
        what = "the teacher's logits at temperature 4" if kind == "kd" else "hard labels only"
        specs.append(Spec(f"student-{kind}", "distillation", f"student {STUDENT_HIDDEN[0]}x{STUDENT_HIDDEN[1]} "
                          f"trained on {what}", {"targets": kind, "hidden": list(STUDENT_HIDDEN)}))
    for level in ("disabled", "basic", "extended"):
        specs.append(Spec(f"ort-{level}", "runtime", f"FP32, graph optimization {level}", {"graph_level": level}))
    specs.append(Spec("threads-2", "runtime", "FP32, 2 intra-op threads", {"threads": 2}))
    return specs


SPECS: dict[str, Spec] = {s.name: s for s in _specs()}
#: The subset ``perfkit optimize`` measures by default (``--all`` for every variant).
DEFAULT_VARIANTS = ("fp32", "int8-dynamic", "int8-static-entropy", "prune-unstructured-80",
                    "prune-structured-50", "student-kd", "student-hard", "ort-disabled")


@dataclass(frozen=True)
class Built:
    """A built variant: its ONNX file, hidden widths and session settings."""

    spec: Spec
    path: Path
    hidden: tuple[int, ...]
    graph_level: str = "all"
    threads: int = 1

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def _versions() -> dict[str, str]:
    return {lib: version(lib) for lib in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")}


def _teacher_recipe() -> dict[str, Any]:
    return {"model": "digits-mlp-holdout", "hidden": list(DEFAULT_HIDDEN), "split_seed": SPLIT_SEED,
            "test_fraction": TEST_FRACTION, "recipe_version": 1, **_versions()}


def teacher_path() -> Path:
    """The FP32 teacher (trained on the training split only), built once and cached."""
    path, _ = cached_file(f"digits-mlp-holdout-{recipe_key(_teacher_recipe())}.onnx",
                          lambda: build_onnx(DEFAULT_HIDDEN, rows=digits_split().train.tolist()))
    return path


def _load(path: Path) -> Any:
    import onnx

    return onnx.load(str(path))


def read_layers(path: Path) -> W.Layers:
    """The dense layers (weight, bias) of an MLP ONNX file."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in _load(path).graph.initializer}
    count = sum(1 for n in inits if n.startswith("coefficient"))
    return [(inits[w], inits[b]) for w, b in W.layer_names(count)]


def _scaler(model: Any) -> tuple[list[float], list[float]]:
    node = next(n for n in model.graph.node if n.op_type == "Scaler")
    attrs = {a.name: list(a.floats) for a in node.attribute}
    return attrs["offset"], attrs["scale"]


def _with_layers(path: Path, layers: W.Layers) -> bytes:
    """The teacher graph with its dense layers replaced (shapes may change)."""
    from onnx import numpy_helper

    model = _load(path)
    arrays = W.as_mapping(layers)
    for init in model.graph.initializer:
        if init.name in arrays:
            init.CopyFrom(numpy_helper.from_array(arrays[init.name].astype(np.float32), init.name))
    del model.graph.value_info[:]
    return bytes(model.SerializeToString())


def _calibration_reader(input_name: str, rows: np.ndarray, batches: int = 8) -> Any:
    """Up to ``batches`` equal batches of ``rows`` (the Entropy calibrator refuses unequal ones; the
    remainder of the division is left out)."""
    from onnxruntime.quantization import CalibrationDataReader

    count = min(batches, len(rows))
    size = len(rows) // count

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches: Iterator[np.ndarray] = iter([rows[i * size:(i + 1) * size] for i in range(count)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    return Reader()


def calibration_rows() -> np.ndarray:
    """The static quantization's calibration data: training rows only, never the test split."""
    train, _labels = digits_rows(digits_split().train)
    return np.random.default_rng(0).permutation(train)[:CALIBRATION_ROWS]


def quantized(source: Path, params: dict[str, Any], calibration: Callable[[], np.ndarray]) -> bytes:
    """``source`` quantized to INT8 by onnxruntime: ``params`` as in :data:`SPECS` (method, calibration,
    per_channel); ``calibration`` gives the rows a static method calibrates on."""
    from onnxruntime import quantization as q

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "q.onnx"
        if params["method"] == "dynamic":
            q.quantize_dynamic(str(source), str(out), weight_type=q.QuantType.QInt8)
        else:
            input_name = _load(source).graph.input[0].name
            method = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
                      "percentile": q.CalibrationMethod.Percentile}[params["calibration"]]
            q.quantize_static(str(source), str(out), _calibration_reader(input_name, calibration()),
                              quant_format=q.QuantFormat.QDQ,
                              per_channel=params["per_channel"], weight_type=q.QuantType.QInt8,
                              activation_type=q.QuantType.QUInt8, calibrate_method=method)
        return out.read_bytes()


def _student(teacher: Path, params: dict[str, Any]) -> bytes:
    train, labels = digits_rows(digits_split().train)
    offset, scale = _scaler(_load(teacher))
    features = W.scaled(train, offset, scale)
    logits = W.forward_logits(read_layers(teacher), features) if params["targets"] == "kd" else None
    student = W.train_student(features, labels, params["hidden"], teacher_logits=logits)
    return _with_layers(teacher, student)


def _builder(spec: Spec, teacher: Path) -> Callable[[], bytes] | None:
    """How to make the variant's own ONNX bytes; None for a runtime setting over the teacher file."""
    p = spec.params
    if spec.technique == "quantization":
        return lambda: quantized(teacher, p, calibration_rows)
    if spec.technique == "unstructured pruning":
        return lambda: _with_layers(teacher, W.magnitude_prune(read_layers(teacher), p["sparsity"]))
    if spec.technique == "structured pruning":
        return lambda: _with_layers(teacher, W.remove_units(read_layers(teacher), p["fraction"]))
    if spec.technique == "distillation":
        return lambda: _student(teacher, p)
    return None


_RESHAPED = ("unstructured pruning", "structured pruning", "distillation")


def build(name: str) -> Built:
    """Build variant ``name`` (or find it in the cache) and write its manifest for ``serve-demo``."""
    spec = SPECS[name]
    teacher = teacher_path()
    make = _builder(spec, teacher)
    path = teacher
    if make is not None:
        key = recipe_key({"variant": name, "params": spec.params, "teacher": teacher.name, "recipe_version": 1,
                          **_versions()})
        path, _ = cached_file(f"digits-variant-{name}-{key}.onnx", make)
    float_weights = path if spec.technique in _RESHAPED else teacher  # a quantized graph renames them
    built = Built(spec, path, W.hidden_widths(read_layers(float_weights)),
                  spec.params.get("graph_level", "all"), int(spec.params.get("threads", 1)))
    _write_manifest(built)
    return built


def _write_manifest(built: Built) -> None:
    manifest = variant_manifest(built.spec.name)
    text = json.dumps({"file": built.path.name, "hidden": list(built.hidden), "graph_level": built.graph_level,
                       "threads": built.threads, "technique": built.spec.technique, "about": built.spec.about})
    tmp = manifest.with_name(f"{manifest.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, manifest)
