"""The model optimization lab: variants of the demo classifier, their accuracy, and their cost on the serving path.

* :mod:`~perfkit.optimize.variants`: INT8 (dynamic, static QDQ with MinMax,
  Entropy or Percentile calibration, per-channel or per-tensor), magnitude and
  structured pruning, a distilled and a hard-label student, ONNX Runtime graph
  levels and threads; ``build(name)``, ``SPECS``, ``DEFAULT_VARIANTS``;
* :mod:`~perfkit.optimize.weights`: the pure weight transformations behind them;
* :mod:`~perfkit.optimize.data`: the train/test split and accuracy with its
  Clopper–Pearson interval;
* :mod:`~perfkit.optimize.measure`: serve each variant, benchmark it, record
  size, peak RSS and CPU per request (``optimize``, ``load``);
* :mod:`~perfkit.optimize.edge`: the edge profile (one thread, ``RLIMIT_AS``
  cap, SingleStream: frames per second and P90, or "cannot load");
* :mod:`~perfkit.optimize.results`: the tables notebook 08 shows (frontier,
  verdicts against FP32 (``comparison_frame``, ``INTERVALS``), cost per 1,000 queries, edge profile,
  the conclusion sentence).

Names load on first use so that ``perfkit --help`` (which imports
:mod:`perfkit.optimize.cli`, hence this package) stays light.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build": "perfkit.optimize.variants", "SPECS": "perfkit.optimize.variants",
    "DEFAULT_VARIANTS": "perfkit.optimize.variants", "optimize": "perfkit.optimize.measure",
    "load": "perfkit.optimize.measure", "stored_or_measured": "perfkit.optimize.measure",
    "variant_table": "perfkit.optimize.results",
    "verdicts": "perfkit.optimize.results", "conclusion": "perfkit.optimize.results",
    "recommended": "perfkit.optimize.results",
    "headline_figures": "perfkit.optimize.results", "edge_table": "perfkit.optimize.results",
    "comparison_frame": "perfkit.optimize.results", "INTERVALS": "perfkit.optimize.results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load an exported name from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'perfkit.optimize' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
