"""`perfkit ingest` and `perfkit prometheus`."""
from __future__ import annotations

import argparse
import os
import sys

from perfkit.cliutil import add_db_argument

_INGEST = (
    "Import exported telemetry or another tool's results. Each file is one transaction "
    "(all or nothing); re-ingesting the same bytes is a no-op. Samples without a "
    "timestamp (Prometheus text) are stamped with --at, else the time of the ingest (UTC).")
_PROMETHEUS = (
    "Query /api/v1/query_range in chunks of at most 11,000 points per series and "
    "ingest the result as prom-range. Default range: the last hour; default step: "
    "the smallest that keeps the range under 11,000 points, at least 1 s.")


def _cmd_ingest(args: argparse.Namespace) -> int:
    from perfkit import store
    from perfkit.ingest import importers, parse_time

    at = parse_time(args.at, "--at") if args.at else None
    if args.kind == "mlperf-results" or (args.kind == "mlperf" and any(map(os.path.isdir, args.paths))):
        return _ingest_trees(args)
    with store.connect(args.db) as con:
        importers.ingest_paths(con, args.kind, args.paths, label=args.label, run_id=args.run,
                               at_unix_s=at)
    return 0


def _ingest_trees(args: argparse.Namespace) -> int:
    """MLPerf results trees: a line per skipped run, a count per tree; exit 1 if any run was skipped."""
    from perfkit import store
    from perfkit.ingest import mlperf_results

    skipped = 0
    with store.connect(args.db) as con:
        for path in args.paths:
            result = mlperf_results.ingest_tree(con, path, label=args.label)
            for problem in result.problems:
                print(problem, file=sys.stderr)
            print(result.line())
            skipped += len(result.problems)
    return 1 if skipped else 0


def _cmd_prometheus(args: argparse.Namespace) -> int:
    from perfkit import store
    from perfkit.ingest import parse_duration, parse_time, promapi

    end = parse_time(args.end, "--end") if args.end else None
    start = parse_time(args.start, "--start") if args.start else None
    step = parse_duration(args.step, "--step") if args.step else None
    with store.connect(args.db) as con:
        result = promapi.pull(con, args.url, args.query, start=start, end=end, step_s=step,
                              label=args.label, run_id=args.run, timeout_s=args.timeout)
    print(result.line())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's sub-commands to `perfkit`."""
    from perfkit.ingest import KINDS

    p = sub.add_parser("ingest", description=_INGEST,
                       help="import telemetry/results files into the database")
    p.add_argument("kind", choices=KINDS, metavar="KIND", help=" | ".join(KINDS))
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="files to import (mlperf-results: results tree folders)")
    add_db_argument(p)
    p.add_argument("--label", default=None, help="free text stored with the source, e.g. hardware=T4")
    p.add_argument("--run", default=None, metavar="RUN_ID",
                   help="attach the data to this run (else it joins runs by time window)")
    p.add_argument("--at", default=None, metavar="TIME",
                   help="timestamp for samples that carry none (default: now)")
    p.set_defaults(func=_cmd_ingest)

    q = sub.add_parser("prometheus", description=_PROMETHEUS,
                       help="pull a PromQL range from a Prometheus server into the database")
    q.add_argument("--url", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    q.add_argument("--query", required=True, metavar="PROMQL")
    q.add_argument("--start", default=None, help="epoch seconds, ISO 8601 or now-1h")
    q.add_argument("--end", default=None, help="epoch seconds, ISO 8601 or now (default)")
    q.add_argument("--step", default=None, help="resolution: seconds or a duration (15s, 1m)")
    q.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    add_db_argument(q)
    q.add_argument("--label", default=None)
    q.add_argument("--run", default=None, metavar="RUN_ID")
    q.set_defaults(func=_cmd_prometheus)
