"""Analysis over the store: statistics, telemetry, root cause, A/B verdicts, hardware and TCO.

What notebooks 02-04 use, importable from here (``from perfkit.analyze import rootcause``):

* :mod:`~perfkit.analyze.telemetry` (02): a run's telemetry from the store —
  ``sources_for``, ``timeline``, ``series_frame``, ``bucket_quantiles``,
  ``headline_figures``;
* :mod:`~perfkit.analyze.promql`: PromQL's ``histogram_quantile`` and ``rate``
  on frames;
* :mod:`~perfkit.analyze.rootcause` (03): ``diagnose`` and the tables around it
  (``runs_overview``, ``batching_table``, ``proxy_tables``, ``gpu_frame``...);
* :mod:`~perfkit.analyze.abtest` (04): the A/B judge over sets of runs —
  ``compare_runs`` (a :class:`~perfkit.analyze.abtest.Verdict` with
  ``sentence``, ``table``, ``runs``), ``samples_for_plot``, ``headline_figures``;
  :mod:`~perfkit.analyze.bootstrap` its hierarchical block bootstrap and
  :mod:`~perfkit.analyze.experiment` the interleaved runs of ``perfkit abtest``;
* :mod:`~perfkit.analyze.history` (07): change points in a case's history of runs
  against the practical margin (``trend``, ``changes_frame``), read from the store by
  :mod:`~perfkit.analyze.trend_store` (``case_history``, ``load_trend``);
* :mod:`~perfkit.analyze.sweep_report` (09): a stored sweep's steps, its knee
  (:mod:`~perfkit.analyze.knee`, Kneedle) and where it over-saturated
  (:mod:`~perfkit.analyze.saturation`) — ``load``;
* :mod:`~perfkit.analyze.stats` and :mod:`~perfkit.analyze.twosample`: the
  statistics behind them.

Also by name: :func:`diagnose` (ranked root-cause findings over runs) and
:func:`compare_runs` (the A/B verdict between two sets of runs). Every name loads on
first use, so ``perfkit --help``, which imports this package, stays light.
Figures are in :mod:`perfkit.plots.diagnosis`.
"""
from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("abtest", "bootstrap", "experiment", "history", "knee", "promql", "rootcause", "saturation", "stats",
            "sweep_report", "telemetry", "trend_store", "twosample")
_FUNCTIONS = {"diagnose": "rootcause", "compare_runs": "abtest"}

__all__ = [*_MODULES, *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    """Import a submodule, or a function of one, on first use."""
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f"{__name__}.{_FUNCTIONS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
