"""The load engine: schedules, payloads, protocols, recording.

Python API (the CLI is a thin layer over it)::

    from perfkit.bench import BenchConfig, Stage, run
    summary = run(BenchConfig(target="http://127.0.0.1:8000", stages=[Stage("constant", 10, 50)]))
    perfkit.bench.summary.summarize(con, run_id)   # recompute from stored rows
    perfkit.bench.sweep.curve(con, sweep_id)       # latency-throughput curve

The summary is a :class:`perfkit.summary.RunSummary`. Names are loaded on first use,
so that ``perfkit --help`` (which imports :mod:`perfkit.bench.cli`) stays light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perfkit.bench.config import BenchConfig
    from perfkit.bench.payload import PayloadSpec
    from perfkit.bench.schedule import Stage
    from perfkit.summary import RunSummary

_LAZY = {"BenchConfig": "perfkit.bench.config", "PayloadSpec": "perfkit.bench.payload",
         "Stage": "perfkit.bench.schedule"}


def __getattr__(name: str) -> Any:
    """``BenchConfig`` (what a run is asked to do), ``PayloadSpec`` (how bodies are drawn),
    ``Stage`` (one arrival pattern): imported when first asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'perfkit.bench' has no attribute {name!r}")


def run(config: BenchConfig, run_id: str | None = None) -> RunSummary:
    """Run one benchmark; return its summary (see :func:`perfkit.bench.runner.run`)."""
    from perfkit.bench.runner import run as _run

    return _run(config, run_id)


__all__ = ["BenchConfig", "PayloadSpec", "Stage", "run"]
