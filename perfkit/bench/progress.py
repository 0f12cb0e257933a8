"""What a run shows while it runs: the "started" line and the live progress bar (stderr)."""
from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from perfkit.bench.engine import COLUMNS

_LAT = COLUMNS.index("done_ns"), COLUMNS.index("intended_ns"), COLUMNS.index("err")


def announce_start(run_id: str, target_shown: str) -> None:
    """One line once the first request has left (scripts may wait for it)."""
    print(f"perfkit bench: run {run_id} started: first request sent to {target_shown}", file=sys.stderr,
          flush=True)


class Progress:
    """tqdm bar on stderr with live P50/P99 from an HdrHistogram (3 significant digits);
    nothing when quiet or when stderr is not a terminal."""

    def __init__(self, total: int | None, quiet: bool):
        self.bar: Any = None
        self.hist: Any = None
        self.last = 0.0
        if quiet or not sys.stderr.isatty():
            return
        from hdrh.histogram import HdrHistogram
        from tqdm import tqdm

        self.hist = HdrHistogram(1, 3_600_000_000, 3)  # microseconds, 1 us .. 1 h
        self.bar = tqdm(total=total, unit="req", file=sys.stderr, leave=False)

    def update(self, batch: np.ndarray) -> None:
        """Count a worker batch and record its successful latencies (from the intended send)."""
        if self.bar is None:
            return
        done_i, int_i, err_i = _LAT
        lat_us = (batch[:, done_i] - batch[:, int_i]) // 1000
        record = self.hist.record_value
        for v in lat_us[batch[:, err_i] == 0].tolist():
            record(max(1, v))
        self.bar.update(len(batch))
        now = time.monotonic()
        if now - self.last > 0.5 and self.hist.get_total_count():
            self.last = now
            self.bar.set_postfix_str(f"p50 {self.hist.get_value_at_percentile(50) / 1000:.1f} ms "
                                     f"p99 {self.hist.get_value_at_percentile(99) / 1000:.1f} ms")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
