"""Whole-tree ingest time of an MLPerf results tree (target: the v4.1 tree in under 30 s).

    .venv/bin/python benchmarks/ingest_mlperf_tree.py TREE

TREE is a local copy of the round's results (mlcommons/inference_results_v4.1, or
a subset with its paths); the store is a fresh DuckDB file in a temporary folder.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from perfkit import store
from perfkit.ingest.mlperf_results import ingest_tree



def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    tree = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp, store.connect(Path(tmp) / "bench.duckdb", quiet=True) as con:
        start = time.perf_counter()
        result = ingest_tree(con, tree)
        elapsed = time.perf_counter() - start
    print(result.line())
    print(f"whole-tree ingest: {elapsed:.1f} s ({result.stored / elapsed:.0f} runs/s; target < 30 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
