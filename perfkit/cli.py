"""The ``perfkit`` command line.

Each stage registers its own sub-commands from ``perfkit/<stage>/cli.py`` through
a ``register(subparsers)`` function; a handler returns the exit code. Bad input
raises :class:`perfkit.errors.UsageError` (one line on stderr, exit 2); a failed
check raises :class:`perfkit.errors.CheckFailed` or returns 1.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from perfkit import __version__
from perfkit.cliutil import Parser, add_db_argument
from perfkit.errors import CheckFailed, StoreError, UsageError

# Order here is the order in `perfkit --help`.
COMMAND_MODULES = (
    "perfkit.demo.cli",
    "perfkit.bench.cli",
    "perfkit.ingest.cli",
    "perfkit.analyze.cli",
    "perfkit.analyze.hardware.cli",
    "perfkit.analyze.trend_cli",
    "perfkit.report.cli",
    "perfkit.optimize.cli",
)


def _cmd_runs(args: argparse.Namespace) -> int:
    from perfkit import store

    with store.connect(args.db, read_only=True) as con:
        frame = store.list_runs(con)
    if frame.empty:
        print("no runs yet: `perfkit bench --target URL --rate R --duration S` records one")
        return 0
    with_cols = ["run_id", "label", "protocol", "pattern", "status", "started_at",
                 "requests", "p99_ms"]
    print(frame[with_cols].to_string(index=False))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from perfkit import store
    from perfkit.paths import parquet_location
    from perfkit.store.parquet import export_parquet

    if parquet_location(args.db) is not None:
        raise UsageError(f"--db {args.db}: already a Parquet export; export from a DuckDB file")
    with store.connect(args.db, read_only=True) as con:
        result = export_parquet(con, args.parquet)
    for table, rows in result.rows.items():
        print(f"{table:<24} {rows:>12,} rows  {result.partitions[table]:>6} partition(s) written")
    print(f"schema version {result.schema_version} -> {result.out_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="perfkit",
        description=(
            "Load-test AI inference services, ingest the telemetry around the tests, "
            "find out why a service is slow or expensive, and write HTML reports. "
            "Exit codes: 0 ok, 1 a failed check (SLO missed, regression), 2 bad input."
        ),
    )
    parser.add_argument("--version", action="version", version=f"perfkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    runs = sub.add_parser("runs", help="list the runs in the database",
                          description="List recorded runs, newest first.")
    add_db_argument(runs)
    runs.set_defaults(func=_cmd_runs)
    export = sub.add_parser(
        "export", help="write the store as Hive-partitioned Parquet",
        description="Write every table as Parquet partitioned by UTC day (and run, for runs, requests "
                    "and token gaps), with the schema version in each file's metadata. Exporting again "
                    "into DIR replaces the partitions written and keeps the rest. `--db DIR` then reads "
                    "it (docs/parquet.md).")
    add_db_argument(export)
    export.add_argument("--parquet", metavar="DIR", required=True, help="folder to write the Parquet files in")
    export.set_defaults(func=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"perfkit {args.command}: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"perfkit {args.command}: {exc}", file=sys.stderr)
        return 2
    except CheckFailed as exc:
        print(f"perfkit {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"perfkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
