"""The load engine: schedules, payloads, protocols, recording.

Python API (the CLI is a thin layer over it)::

    from perfkit.bench import BenchConfig, Stage, run
    summary = run(BenchConfig(target="http://127.0.0.1:8000", stages=[Stage("constant", 10, 50)]))
    perfkit.bench.summary.summarize(con, run_id)   # recompute from stored rows
    perfkit.bench.sweep.curve(con, sweep_id)       # latency-throughput curve
"""
from __future__ import annotations

from perfkit.bench.config import BenchConfig
from perfkit.bench.payload import PayloadSpec
from perfkit.bench.schedule import Stage


def run(config: BenchConfig, run_id: str | None = None) -> dict:
    """Run one benchmark; return its summary dict (see :func:`perfkit.bench.runner.run`)."""
    from perfkit.bench.runner import run as _run

    return _run(config, run_id)


__all__ = ["BenchConfig", "PayloadSpec", "Stage", "run"]
