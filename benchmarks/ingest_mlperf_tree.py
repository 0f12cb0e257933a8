"""Whole-tree ingest time of an MLPerf results tree (target: the v4.1 tree in under 30 s).

    .venv/bin/python benchmarks/ingest_mlperf_tree.py [TREE]

TREE defaults to ../shared/data/mlperf-inference-v4.1 beside the clone; the
store is a fresh DuckDB file in a temporary folder.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from perfkit import store
from perfkit.ingest.mlperf_results import ingest_tree

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    tree = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / ".." / "shared" / "data" / "mlperf-inference-v4.1"
    with tempfile.TemporaryDirectory() as tmp, store.connect(Path(tmp) / "bench.duckdb", quiet=True) as con:
        start = time.perf_counter()
        result = ingest_tree(con, tree)
        elapsed = time.perf_counter() - start
    print(result.line())
    print(f"whole-tree ingest: {elapsed:.1f} s ({result.stored / elapsed:.0f} runs/s; target < 30 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
