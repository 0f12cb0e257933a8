"""Orchestration: the stages run end to end (demo server, ``perfkit bench``, then reports).

* :mod:`perfkit.pipeline.suite`: what a suite is (cases, comparisons) and the default suite.
* :mod:`perfkit.pipeline.capabilities`: which cases and reports can run here, and why not.
* :mod:`perfkit.pipeline.bench`: one ``perfkit bench`` subprocess, its summary back.
* :mod:`perfkit.pipeline.run`: a suite executed: servers, benchmarks, rendering.

``perfkit report --suite NAME`` (and ``make report``) runs a suite. The stages
never import this package; it imports them. Names below load on first use, so
importing the package stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Case": "perfkit.pipeline.suite",
    "Comparison": "perfkit.pipeline.suite",
    "Suite": "perfkit.pipeline.suite",
    "get_suite": "perfkit.pipeline.suite",
    "describe": "perfkit.pipeline.capabilities",
    "run_bench": "perfkit.pipeline.bench",
    "choose_run": "perfkit.pipeline.bench",
    "run_suite": "perfkit.pipeline.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """``pipeline.choose_run`` and friends, imported when first used."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
