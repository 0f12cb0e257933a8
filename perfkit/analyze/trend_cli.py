"""``perfkit history`` and ``perfkit trend``: a case's runs over time, its change points, the gate.

``perfkit trend --gate`` exits 1 when the newest run of a case sits after a
regression change point nobody acknowledged (``--ack CHANGE_ID --reason TEXT``),
0 otherwise, 2 on bad input. The statistics are in :mod:`perfkit.analyze.history`,
the SQL in :mod:`perfkit.analyze.trend_store`.
"""
from __future__ import annotations

import argparse
import math

from perfkit.cliutil import add_command, add_db_argument
from perfkit.errors import UsageError

_METRIC_HELP = ("p50_ms, p90_ms, p95_ms, p99_ms, p999_ms, ttft_p50_ms, ttft_p99_ms, tpot_p50_ms, "
                "tpot_p99_ms or error_rate")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``perfkit history`` and ``perfkit trend``."""
    h = add_command(sub, "history", _cmd_history, help="a case's metric over its runs, one point per run",
                    description="One point per completed run labelled case=NAME, oldest first, with its "
                                "interval, version (label version=...), perfkit version and machine.")
    h.add_argument("--case", required=True, metavar="NAME", help="the run label case=NAME")
    h.add_argument("--metric", default="p99_ms", metavar="M", help=f"{_METRIC_HELP} (default p99_ms)")
    h.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    add_db_argument(h)
    t = add_command(
        sub, "trend", _cmd_trend, help="change points in each case's history; --gate for pipelines",
        description="Find change points (E-Divisive-style: binary segmentation with a permutation test) in "
                    "each case's metrics over its runs; report the run, the versions before and after, the "
                    "change with its 95%% interval, and whether it is a regression or an improvement against "
                    "the practical margin. Exit codes: with --gate 1 when the newest run of a case sits after "
                    "an unacknowledged regression, else 0; 2 on bad input.")
    t.add_argument("--case", action="append", default=[], metavar="NAME",
                   help="a case (repeatable; default: every case)")
    t.add_argument("--metric", action="append", default=[], metavar="M",
                   help=f"{_METRIC_HELP} (repeatable; default p50_ms and p99_ms)")
    t.add_argument("--margin", type=float, default=5.0, metavar="PCT",
                   help="practical margin in percent: smaller shifts are 'within margin' (default 5)")
    t.add_argument("--gate", action="store_true", help="exit 1 on an open (unacknowledged) regression")
    t.add_argument("--ack", metavar="CHANGE_ID", help="acknowledge this change point (needs --reason)")
    t.add_argument("--reason", metavar="TEXT", help="why the change is accepted (with --ack)")
    t.add_argument("--json", action="store_true", help="print the change points as JSON")
    add_db_argument(t)


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.4g}"


def _cmd_history(args: argparse.Namespace) -> int:
    from perfkit import store
    from perfkit.analyze import trend_store

    try:
        trend_store.check_metric(args.metric)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with store.connect(args.db, read_only=True) as con:
        if args.case not in trend_store.cases(con):
            raise UsageError(f"no completed run of case {args.case!r} (see `perfkit runs`)")
        frame = trend_store.case_history(con, args.case, args.metric)
    if args.json:
        from perfkit.jsonsafe import dumps

        for row in frame.to_dict("records"):
            print(dumps(row))
        return 0
    print(f"case {args.case}, {args.metric}: {len(frame)} runs, oldest first (95% intervals)")
    for row in frame.itertuples(index=False):
        interval = f"[{_fmt(row.lo)}, {_fmt(row.hi)}]" if math.isfinite(row.lo) else "[no interval]"
        print(f"  {row.started_at:25}  {row.run_id:28}  {_fmt(row.value):>9} {interval:22} n={row.n:<7} "
              f"version={row.version or '-'}  perfkit {row.tool_version or '-'}  {row.machine}")
    return 0


def _cmd_trend(args: argparse.Namespace) -> int:
    if args.margin <= 0 or args.margin >= 100:
        raise UsageError(f"--margin {args.margin}: give a percentage between 0 and 100")
    if bool(args.ack) != bool(args.reason):
        raise UsageError("--ack CHANGE_ID and --reason TEXT go together")
    from perfkit import store
    from perfkit.analyze import trend_store

    metrics = args.metric or list(trend_store.DEFAULT_METRICS)
    with store.connect(args.db, read_only=not args.ack) as con:
        try:
            result = trend_store.load_trend(con, args.case, metrics, args.margin / 100)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if args.ack:
            match = [c for c in result.changes if c.change_id == args.ack]
            if not match:
                raise UsageError(f"no change point with id {args.ack!r} (see `perfkit trend`)")
            with store.transaction(con):
                trend_store.acknowledge(con, match[0], args.reason)
            print(f"acknowledged {args.ack} ({match[0].sentence()}) by {trend_store.who()}: {args.reason}")
            return 0
    if args.json:
        from perfkit.jsonsafe import dumps

        print(dumps({"margin": args.margin / 100, "changes": [c.to_dict() for c in result.changes],
                     "open": [c.change_id for c in result.open]}))
    else:
        print(result.summary())
        for c in result.changes:
            print(f"  {c.change_id}  {c.kind:13}  {c.sentence()}; p={c.p_value:.3f}, "
                  f"versions {c.version_before or '-'} -> {c.version_after or '-'}")
    if args.gate and result.open:
        print(f"gate: {len(result.open)} open regression(s); acknowledge with "
              f"`perfkit trend --ack CHANGE_ID --reason TEXT`")
        return 1
    return 0
