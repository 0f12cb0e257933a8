"""Drawing the latency-over-time figure of a long run: every dot vs the tail plus a sample.

An hour at 1,000 req/s is 3.6 M requests. Notebook 01 draws at most
``SCATTER_MAX_POINTS`` dots (all requests above P99 plus a seeded sample of the
rest); this measures what that saves against drawing every dot, same figure,
same PNG rendering, in the same process. Run: ``.venv/bin/python benchmarks/report_scatter.py [N]``.
"""
from __future__ import annotations

import io
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from perfkit.report import benchmark  # noqa: E402


def synthetic_run(n: int, rate_rps: float = 1000.0, seed: int = 0) -> benchmark.RunData:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate_rps
    lat = rng.lognormal(np.log(6.0), 0.4, n)
    frame = pd.DataFrame({"t_s": t, "done_t_s": t + lat / 1000.0, "latency_ms": lat,
                          "schedule_lag_ms": rng.exponential(0.05, n), "error_kind": None})
    return benchmark.RunData(run={"run_id": "synthetic"}, requests=frame)


def render_s(data: benchmark.RunData, max_points: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fig = benchmark.plot_latency_over_time(data, max_points=max_points)
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    data = synthetic_run(n)
    every = render_s(data, max_points=n)
    sampled = render_s(data, max_points=benchmark.SCATTER_MAX_POINTS)
    print(f"latency-over-time figure, {n:,} requests (best of 3, PNG rendered):")
    print(f"  every dot          {every * 1000:9.1f} ms")
    print(f"  tail + sample      {sampled * 1000:9.1f} ms  ({benchmark.SCATTER_MAX_POINTS:,} dots at most)")
    print(f"  ratio              {every / sampled:9.1f}x faster")


if __name__ == "__main__":
    main()
