"""Sub-commands of perfkit.analyze: ``perfkit compare`` (A/B verdict) and ``perfkit diagnose``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perfkit.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's sub-commands to `perfkit`."""
    from perfkit.cliutil import add_db_argument

    cmp_ = sub.add_parser(
        "compare", help="A/B verdict between two runs (exit 1 on a regression)",
        description=("Compare a candidate run with a baseline run: Mann-Whitney U with a 98%% "
                     "Hodges-Lehmann interval (Kayenta's judge), Kolmogorov-Smirnov, bootstrap "
                     "intervals of the P50/P99 differences, Cliff's delta, Fisher's test on errors, "
                     "Holm control over metrics and a practical-effect margin. Exit 0 pass or "
                     "inconclusive, 1 regression (fail), 2 bad input."))
    cmp_.add_argument("baseline", help="baseline run id (or `latest`)")
    cmp_.add_argument("candidate", help="candidate run id (or `latest`)")
    add_db_argument(cmp_)
    cmp_.add_argument("--metric", action="append", default=None,
                      help="latency_ms (default), service_ms, ttft_ms, tpot_ms, ...; repeatable")
    cmp_.add_argument("--json", metavar="PATH", help="write the verdict as JSON here ('-' for stdout)")
    cmp_.add_argument("--margin-rel", type=float, default=0.05,
                      help="practical effect, share of the baseline median/P99 (default 0.05)")
    cmp_.add_argument("--margin-ms", type=float, default=0.1, help="practical effect floor in ms (default 0.1)")
    cmp_.add_argument("--alpha", type=float, default=0.02, help="family-wise error rate, Holm (default 0.02)")
    cmp_.add_argument("--fail-on-inconclusive", action="store_true",
                      help="exit 1 also when the verdict is inconclusive")
    cmp_.set_defaults(func=_cmd_compare)

    diag = sub.add_parser(
        "diagnose", help="ranked root-cause findings for runs",
        description=("Run the root-cause rules (queueing, fixed batching, proxy overhead, GPU memory, "
                     "lagged correlation and change points, schedule lag, availability/MTTR, SLO) "
                     "over runs and print the ranked findings. GPU findings use each run's own GPU "
                     "telemetry or GPU exports whose samples fall inside its time window."))
    diag.add_argument("runs", nargs="*", help="run ids (default: every run of the newest suite)")
    add_db_argument(diag)
    diag.add_argument("--json", metavar="PATH", help="write the findings as JSON here ('-' for stdout)")
    diag.add_argument("--fail-on", choices=("critical", "high", "medium", "low"), default=None,
                      help="exit 1 when a finding of this severity or worse is found (for pipelines)")
    diag.add_argument("--gpu-source", type=int, action="append", default=None, metavar="SOURCE_ID",
                      help="GPU export to judge the GPU by (a source id; repeatable). Default: the runs' "
                           "own GPU telemetry, or exports whose samples fall inside a run's time window")
    diag.set_defaults(func=_cmd_diagnose)


def _write_json(path: str, data: object) -> None:
    from perfkit.jsonsafe import dumps

    text = dumps(data, indent=2, default=str)
    if path == "-":
        print(text)
    else:
        Path(path).write_text(text + "\n", encoding="utf-8")


def _cmd_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from perfkit import store
    from perfkit.analyze import abtest
    from perfkit.store import runs

    metrics = args.metric or ["latency_ms"]
    for m in metrics:
        if m not in runs.LATENCY_COLUMNS:
            raise UsageError(f"--metric {m}: unknown; one of {', '.join(runs.LATENCY_COLUMNS)}")
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha {args.alpha}: must be within (0, 1)")
    th = abtest.Thresholds(alpha=args.alpha, margin_rel=args.margin_rel, margin_abs_ms=args.margin_ms)
    with store.connect(args.db, read_only=True) as con:
        verdict = abtest.compare_runs(con, args.baseline, args.candidate, metrics, th)
    table = verdict.table()
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        cols = ["metric", "class", "n_base", "n_cand", "baseline", "candidate", "diff", "diff_lo", "diff_hi",
                "p_holm", "cliffs_delta", "reason"]
        out = sys.stdout if args.json != "-" else sys.stderr
        print(f"baseline {verdict.baseline_run}  candidate {verdict.candidate_run}", file=out)
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"), file=out)
        print(f"verdict: {verdict.verdict.upper()} (score {verdict.score:.0f})", file=out)
    if args.json:
        _write_json(args.json, verdict.to_dict())
    if verdict.verdict == "fail" or (args.fail_on_inconclusive and verdict.verdict == "inconclusive"):
        return 1
    return 0


def _cmd_diagnose(args: argparse.Namespace) -> int:
    import pandas as pd

    from perfkit import store
    from perfkit.analyze import rootcause

    with store.connect(args.db, read_only=True) as con:
        found = rootcause.diagnose(con, args.runs or None, gpu_sources=args.gpu_source or ())
    if args.json:
        _write_json(args.json, [{**f.row(), "numbers": f.numbers} for f in found])
    if not found:
        print("no findings: none of the rules' causes is supported by these runs' data")
        return 0
    table = rootcause.findings_table(found)
    with pd.option_context("display.width", 220, "display.max_colwidth", 120):
        print(table[["severity", "title", "action"]].to_string(index=False),
              file=sys.stdout if args.json != "-" else sys.stderr)
    if args.fail_on:
        bar = rootcause.SEVERITY_RANK[args.fail_on]
        worst = [f for f in found if rootcause.SEVERITY_RANK[f.severity] >= bar]
        if worst:
            print(f"perfkit diagnose: {len(worst)} finding(s) at {args.fail_on} or worse", file=sys.stderr)
            return 1
    return 0
