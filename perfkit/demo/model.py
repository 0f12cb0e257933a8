"""The demo classifier: a digits MLP exported to ONNX and served with onnxruntime.

What it is: scikit-learn's bundled *digits* data set (1,797 handwritten digits as
8x8 images, i.e. 64 pixel intensities 0..16 per row, 10 classes) trains a
``StandardScaler -> MLPClassifier`` pipeline (ReLU, hidden layers 512x512 by
default, Adam, fixed ``random_state``), which skl2onnx exports to an ONNX graph
(input ``X``: float32 ``[N, 64]``; outputs ``label`` ``[N]`` and ``probabilities``
``[N, 10]``). The ONNX bytes are cached under ``data/cache/`` keyed by a hash of
the recipe and the library versions (see :mod:`perfkit.demo.cache`); a first build
takes a couple of seconds, later starts load the file.

What a request means: ``input_data`` is either a flat list of numbers, chopped into
rows of 64 (the last row zero-padded), or a list of rows of at most 64 numbers each
(each zero-padded to 64). Every row is one image to classify, so a larger payload
is proportionally more model compute; this is what makes the long-tail and outlier
payload mixes of the load generator cost real server time.

onnxruntime runs with one intra-op and one inter-op thread: the load generator
shares this machine's two cores.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from perfkit.demo.cache import cached_file, recipe_key
from perfkit.errors import UsageError
from perfkit.paths import cache_dir

FEATURES = 64
CLASSES = 10
MAX_ROWS_PER_REQUEST = 4096
DEFAULT_HIDDEN = (512, 512)


class PayloadError(ValueError):
    """The request's ``input_data`` cannot be turned into model rows (HTTP 400)."""


def _recipe(hidden: Sequence[int]) -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "model": "digits-mlp", "hidden": list(hidden), "max_iter": 60, "seed": 0,
        "opset": 17, "sklearn": version("scikit-learn"), "skl2onnx": version("skl2onnx"),
        "onnx": version("onnx"), "recipe_version": 1,
    }


def build_onnx(hidden: Sequence[int] = DEFAULT_HIDDEN, rows: Sequence[int] | None = None) -> bytes:
    """Train the digits MLP with fixed seeds and return its ONNX serialization.

    ``rows``: train on these rows of the data set only, so the others stay unseen
    (the held-out test split of :mod:`perfkit.optimize`)."""
    import warnings

    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_digits(return_X_y=True)
    features = features.astype(np.float32)
    if rows is not None:
        features, labels = features[list(rows)], labels[list(rows)]
    classifier = MLPClassifier(hidden_layer_sizes=tuple(hidden), max_iter=60, random_state=0)
    pipeline = make_pipeline(StandardScaler(), classifier)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(features, labels)
    onx = to_onnx(pipeline, features[:1], options={id(classifier): {"zipmap": False}},
                  target_opset=17)
    return onx.SerializeToString()


@dataclass
class DigitsModel:
    """A loaded onnxruntime session plus where it came from."""

    session: Any
    path: str
    hidden: tuple[int, ...]
    built_now: bool
    variant: str = ""

    @property
    def description(self) -> str:
        hidden = "x".join(str(h) for h in self.hidden)
        source = f"variant {self.variant}" if self.variant else ("built" if self.built_now else "cached")
        return f"digits MLP {FEATURES}->{hidden}->{CLASSES} (onnxruntime, {source}: {self.path})"

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classify float32 ``[N, 64]`` rows; return (labels ``[N]``, probabilities ``[N, 10]``)."""
        labels, probabilities = self.session.run(None, {"X": rows})
        return labels, probabilities


GRAPH_LEVELS = ("disabled", "basic", "extended", "all")


def open_session(path: str | Path, threads: int = 1, graph_level: str = "all") -> Any:
    """An onnxruntime CPU session: ``threads`` intra-op threads, one inter-op, graph optimization level."""
    import onnxruntime as ort

    levels = {"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = levels[graph_level]
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def variant_manifest(name: str) -> Path:
    """Where ``perfkit optimize`` records variant ``name``: a JSON file naming its ONNX file
    (in the same cache folder), its hidden widths and its session settings."""
    return cache_dir() / f"digits-variant-{name}.json"


def load_model(hidden: Sequence[int] = DEFAULT_HIDDEN, threads: int = 1, variant: str = "") -> DigitsModel:
    """Load the cached ONNX model (building it first if missing), or a built variant by name."""
    if variant:
        return load_variant(variant, threads)
    hidden = tuple(int(h) for h in hidden)
    key = recipe_key(_recipe(hidden))
    path, built_now = cached_file(f"digits-mlp-{key}.onnx", lambda: build_onnx(hidden))
    session = open_session(path, threads)
    return DigitsModel(session=session, path=str(path), hidden=hidden, built_now=built_now)


def load_variant(name: str, threads: int = 1) -> DigitsModel:
    """Load a variant built by ``perfkit optimize``; its own thread setting wins over ``threads``."""
    import json

    manifest = variant_manifest(name)
    if not manifest.exists():
        raise UsageError(f"--model-variant {name}: not built (no {manifest.name} in the cache); "
                         "run 'perfkit optimize --variants NAME' first")
    spec = json.loads(manifest.read_text(encoding="utf-8"))
    path = manifest.with_name(spec["file"])
    session = open_session(path, int(spec.get("threads") or threads), spec.get("graph_level", "all"))
    return DigitsModel(session=session, path=str(path), hidden=tuple(spec["hidden"]), built_now=False,
                       variant=name)


def _check_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(f"{where} is {type(value).__name__}, expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise PayloadError(f"{where} is not a finite number")
    return number


def rows_from_input(input_data: Any) -> np.ndarray:
    """Turn a request's ``input_data`` into float32 ``[N, 64]`` model rows.

    A flat list of numbers is chopped into rows of 64 (the last zero-padded); a list
    of lists is one row per inner list (each at most 64 numbers, zero-padded).
    Raises :class:`PayloadError` naming the offending element.
    """
    if not isinstance(input_data, list) or not input_data:
        raise PayloadError("input_data must be a non-empty list of numbers or of rows")
    if all(isinstance(item, list) for item in input_data):
        if len(input_data) > MAX_ROWS_PER_REQUEST:
            raise PayloadError(f"input_data has {len(input_data)} rows, at most "
                               f"{MAX_ROWS_PER_REQUEST} allowed")
        rows = np.zeros((len(input_data), FEATURES), dtype=np.float32)
        for i, row in enumerate(input_data):
            if not row or len(row) > FEATURES:
                raise PayloadError(f"input_data[{i}] has {len(row)} values, expected 1..{FEATURES}")
            rows[i, :len(row)] = [_check_number(v, f"input_data[{i}][{j}]")
                                  for j, v in enumerate(row)]
        return rows
    if any(isinstance(item, list) for item in input_data):
        raise PayloadError("input_data mixes numbers and rows; send one or the other")
    count = len(input_data)
    n_rows = -(-count // FEATURES)
    if n_rows > MAX_ROWS_PER_REQUEST:
        raise PayloadError(f"input_data has {count} values ({n_rows} rows), at most "
                           f"{MAX_ROWS_PER_REQUEST} rows allowed")
    if not all(type(value) in (int, float) for value in input_data):
        for i, value in enumerate(input_data):
            _check_number(value, f"input_data[{i}]")
    flat = np.zeros(n_rows * FEATURES, dtype=np.float32)
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf: reported below
        flat[:count] = input_data
    if not np.isfinite(flat).all():
        bad = int(np.flatnonzero(~np.isfinite(flat))[0])
        raise PayloadError(f"input_data[{bad}] is not a finite float32 number")
    return flat.reshape(n_rows, FEATURES)


def digits_sample(count: int, seed: int = 0) -> list[list[float]]:
    """``count`` real digit images (rows of 64 floats), e.g. to build test payloads."""
    from sklearn.datasets import load_digits

    features = load_digits().data
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(features), size=count)
    return features[picks].tolist()
