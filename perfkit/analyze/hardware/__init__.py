"""Hardware comparison, total cost of ownership and mixed-fleet sizing.

Pure modules (frames in, frames or dataclasses out):

* :mod:`~perfkit.analyze.hardware.catalog`: the hardware catalog, validated row by row.
* :mod:`~perfkit.analyze.hardware.compare`: per-device metrics from measured runs,
  MLPerf results or the datasheet.
* :mod:`~perfkit.analyze.hardware.ratings`: stars per workload profile, by formula.
* :mod:`~perfkit.analyze.hardware.mlperf`: MLPerf published results tables.
* :mod:`~perfkit.analyze.hardware.tco`: cost per query / 1k queries / 1M tokens, rent or own.
* :mod:`~perfkit.analyze.hardware.fleet`: the cheapest integer fleet (MILP).
* :mod:`~perfkit.analyze.hardware.options`: ``NAME=NUMBER`` text (flags, notebook parameters).
* :mod:`~perfkit.analyze.hardware.reference`: the MLPerf reference table (shipped v4.1, rebuilt from a tree).
* :mod:`~perfkit.analyze.hardware.evidence`: comparison, ratings, TCO and fleet capacities from MLPerf rows.

I/O: :mod:`~perfkit.analyze.hardware.queries` reads labelled runs and their power
from the store. Figures are in :mod:`perfkit.plots.hardware`; the ``hardware``,
``tco`` and ``fleet`` commands in :mod:`~perfkit.analyze.hardware.cli`. The
notebooks (05, 06) and the commands call the same functions, exported here.

Exports are loaded on first use, so that importing the command line stays light.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "catalog": ("load_catalog", "catalog_row", "catalog_view", "match_hardware", "rate_column",
                "LISTING_COLUMNS", "ESTIMATE_BASIS", "is_estimate"),
    "compare": ("capacity_at_slo", "catalog_metrics", "comparison_headline", "measured_metrics",
                "mlperf_metrics", "p99_at_load", "per_device_runs"),
    "ratings": ("ARTICLE_STARS", "PROFILES", "RATING_FORMULA", "comparison_table",
                "rate_profiles", "summary_view"),
    "mlperf": ("load_mlperf_files", "load_mlperf_results"),
    "queries": ("capacity_from_store", "measured_runs", "runs_from_store"),
    "tco": ("CostParams", "TCO_COLUMNS", "TCO_DETAIL_COLUMNS", "devices_frame", "hourly_cost_breakdown",
            "rent_vs_own", "tco_headline", "tco_table", "tco_view", "throughput_for_tco"),
    "fleet": ("FleetComparison", "FleetResult", "WorkloadClass", "capacity_frame", "fleet_table",
              "plan_fleet", "scaled_capacities", "solve_fleet", "summary_line"),
    "options": ("parse_names", "parse_overrides"),
    "reference": ("build_reference", "load_reference", "reproduce_official", "write_reference"),
    "evidence": ("EVIDENCE_FORMULA", "article_comparison", "capacity_basis", "evidence_headline",
                 "evidence_ratings", "fleet_capacities", "measured_points", "mlperf_evidence", "mlperf_tco",
                 "sensitivity", "with_measured"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use (pandas, scipy... stay unloaded till then)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
