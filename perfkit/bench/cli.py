"""``perfkit bench`` and ``perfkit sweep``: a thin layer over :func:`perfkit.bench.run`."""
from __future__ import annotations

import argparse
import dataclasses
import sys

from perfkit.bench.config import BenchConfig, parse_header, parse_slo
from perfkit.bench.schedule import PATTERNS, Stage
from perfkit.errors import UsageError


def add_load_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by bench and sweep. Defaults are None so a scenario file's values win
    unless a flag is given explicitly."""
    from perfkit.cliutil import add_db_argument

    p.add_argument("scenario", nargs="?", metavar="SCENARIO.toml", help="multi-stage scenario file")
    p.add_argument("--target", metavar="URL", help="e.g. http://127.0.0.1:8000 (empty path: the "
                   "protocol's endpoint, /api/v1/infer, /v2/models/MODEL/infer, /v1/chat/completions)")
    p.add_argument("--protocol", choices=("http-json", "kserve-v2", "openai"))
    p.add_argument("--method", help="HTTP method (default POST)")
    p.add_argument("--pattern", choices=PATTERNS, help="arrival pattern (default constant)")
    p.add_argument("--rate", type=float, metavar="RPS", help="(base) request rate, requests/s")
    p.add_argument("--duration", type=float, metavar="S", help="seconds of load")
    p.add_argument("--concurrency", type=int, metavar="N", help="closed loop: users in flight")
    p.add_argument("--think-s", type=float, metavar="S", help="closed loop: pause after each response")
    p.add_argument("--burstiness", type=float, metavar="B", help="gamma shape (1 = Poisson, <1 burstier)")
    p.add_argument("--spike-rps", type=float, help="burst: rate added during a spike")
    p.add_argument("--spike-period-s", type=float, help="burst: time between spike starts")
    p.add_argument("--spike-s", type=float, help="burst: spike length")
    p.add_argument("--step-rps", type=float, help="step: rate added per step (start is --rate)")
    p.add_argument("--step-s", type=float, help="step: seconds per step")
    p.add_argument("--steps", type=int, help="step: number of steps")
    p.add_argument("--from-rps", type=float, help="ramp: start rate")
    p.add_argument("--to-rps", type=float, help="ramp: end rate")
    p.add_argument("--trace", metavar="CSV", help="replay: CSV of send offsets (s)")
    p.add_argument("--speed", type=float, help="replay: speed-up factor")
    p.add_argument("--workers", type=int, metavar="N", help="load processes sharing the schedule")
    p.add_argument("--payload", metavar="KIND|PATH", help="fixed|normal|longtail|outliers or a .jsonl file")
    p.add_argument("--payload-mean", type=float, help="mean body size (floats, or prompt words)")
    p.add_argument("--payload-sd", type=float, help="normal: standard deviation of the size")
    p.add_argument("--payload-sigma", type=float, help="longtail: lognormal sigma")
    p.add_argument("--outlier-fraction", type=float, help="outliers: share of outlier bodies")
    p.add_argument("--outlier-factor", type=float, help="outliers: size multiplier")
    p.add_argument("--payload-template", metavar="JSON", help='template with "{{floats}}", "{{text}}", "{{size}}"')
    p.add_argument("--model", help="model name in bodies and KServe paths (default demo)")
    p.add_argument("--max-tokens", type=int, help="openai: max_tokens per request")
    p.add_argument("--header", action="append", metavar="'K: V'", help="extra request header (repeatable)")
    p.add_argument("--bearer-env", metavar="VAR", help="send 'Authorization: Bearer $VAR' (never stored)")
    p.add_argument("--timeout-s", type=float, help="connect+read timeout per request (default 30)")
    p.add_argument("--max-connections", type=int, help="cap on open connections per worker")
    p.add_argument("--slo-p99-ms", type=float, metavar="MS", help="exit 1 if P99 latency exceeds this")
    p.add_argument("--slo", metavar="K=V,...", help="goodput SLOs: latency_ms, ttft_ms, tpot_ms, itl_ms")
    p.add_argument("--label", help='free text, k=v pairs are parsed ("hardware=T4,batching=fixed")')
    add_db_argument(p)
    p.add_argument("--summary-json", metavar="PATH", help="write the summary JSON here")
    p.add_argument("--seed", type=int, help="seed for schedules and payloads (default 0)")
    p.add_argument("--min-duration-s", type=float, help="validity: minimum run length (default 10)")
    p.add_argument("--min-queries", type=int, help="validity: minimum successful requests (default 100)")
    p.add_argument("--no-collect", action="store_true", help="do not sample telemetry during the run")
    p.add_argument("--target-pid", type=int, metavar="PID", help="server process to sample (CPU, memory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


_STAGE_FLAGS = {"pattern": "pattern", "rate": "rate_rps", "duration": "duration_s", "concurrency": "concurrency",
                "think_s": "think_s", "burstiness": "burstiness", "spike_rps": "spike_rps",
                "spike_period_s": "spike_period_s", "spike_s": "spike_s", "step_rps": "step_rps",
                "step_s": "step_s", "steps": "steps", "from_rps": "from_rps", "to_rps": "to_rps",
                "trace": "trace", "speed": "speed"}
_PAYLOAD_FLAGS = {"payload": "kind", "payload_mean": "mean", "payload_sd": "sd", "payload_sigma": "sigma",
                  "outlier_fraction": "outlier_fraction", "outlier_factor": "outlier_factor",
                  "payload_template": "template", "seed": "seed"}
_TOP_FLAGS = ("target", "protocol", "method", "workers", "model", "max_tokens", "bearer_env", "timeout_s",
              "max_connections", "slo_p99_ms", "label", "db", "summary_json", "seed", "min_duration_s",
              "min_queries", "target_pid")


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """Flags (and the scenario file, if given) -> a BenchConfig. Flags override the file."""
    if args.scenario:
        from perfkit.bench import scenario

        cfg = scenario.load(args.scenario)
        stage_kw = {f: getattr(args, a) for a, f in _STAGE_FLAGS.items() if getattr(args, a) is not None}
        if stage_kw:
            raise UsageError("stage flags (--rate, --pattern, --duration, ...) cannot be combined with a "
                             "scenario file; edit its [[stage]] tables")
    else:
        cfg = BenchConfig()
        kw = {f: getattr(args, a) for a, f in _STAGE_FLAGS.items() if getattr(args, a) is not None}
        if args.rate is None and kw.get("pattern", "constant") in ("constant", "poisson", "gamma", "burst", "step"):
            raise UsageError("--rate RPS is required (or give a SCENARIO.toml)")
        if args.duration is None and kw.get("pattern", "constant") not in ("step", "replay"):
            raise UsageError("--duration S is required (or give a SCENARIO.toml)")
        cfg.stages = [Stage(**kw)]
    for name in _TOP_FLAGS:
        v = getattr(args, name)
        if v is not None:
            setattr(cfg, name, v)
    pay = {f: getattr(args, a) for a, f in _PAYLOAD_FLAGS.items() if getattr(args, a) is not None}
    if pay:
        cfg.payload = dataclasses.replace(cfg.payload, **pay)
    if args.header:
        cfg.headers = cfg.headers + [parse_header(h) for h in args.header]
    if args.slo:
        cfg.slo = {**cfg.slo, **parse_slo(args.slo)}
    cfg.quiet = bool(args.quiet)
    cfg.collect = not args.no_collect
    return cfg


def _fmt(v, unit: str = " ms") -> str:
    return "-" if v is None else f"{v:,.2f}{unit}"


def print_summary(s: dict, out=sys.stdout) -> None:
    lat = s.get("latency_ms") or {}
    lag = s.get("schedule_lag_ms") or {}
    errs = ", ".join(f"{k} {v}" for k, v in (s.get("errors") or {}).items()) or "none"
    print(f"run {s['run_id']}  status {s['status']}  ({s.get('status_reason')})", file=out)
    print(f"  requests {s['requests']:,}  ok {s['ok']:,}  errors: {errs}", file=out)
    rate = s.get("intended_rate_rps")
    print(f"  intended {_fmt(rate, ' req/s')}  achieved {_fmt(s.get('achieved_rate_rps'), ' req/s')}  "
          f"over {s['duration_s']:.2f} s", file=out)
    print(f"  latency from intended send (n={lat.get('n', 0):,}): p50 {_fmt(lat.get('p50'))}  "
          f"p90 {_fmt(lat.get('p90'))}  p99 {_fmt(lat.get('p99'))}  p99.9 {_fmt(lat.get('p999'))}  "
          f"max {_fmt(lat.get('max'))}", file=out)
    ci = (s.get("latency_ci_ms") or {}).get("p99")
    if ci:
        print(f"  p99 {s['latency_ci_ms']['confidence']:.0%} CI [{_fmt(ci[0])}, {_fmt(ci[1])}]", file=out)
    print(f"  schedule lag: p50 {_fmt(lag.get('p50'))}  p99 {_fmt(lag.get('p99'))}  max {_fmt(lag.get('max'))}",
          file=out)
    if "ttft_ms" in s:
        print(f"  TTFT p50 {_fmt(s['ttft_ms'].get('p50'))} p99 {_fmt(s['ttft_ms'].get('p99'))}  "
              f"TPOT p50 {_fmt(s['tpot_ms'].get('p50'))}  output {_fmt(s.get('output_tokens_per_s'), ' tok/s')}",
              file=out)
    if "goodput" in s:
        g = s["goodput"]
        print(f"  goodput {_fmt(g.get('rps'), ' req/s')} ({g['good']:,} of {g['n']:,} within {g['slo']})", file=out)
    print(f"  valid: {s['valid']}", file=out)


def exit_code(s: dict) -> int:
    """0 ok; 1 failed run or missed --slo-p99-ms; 130/143 interrupted by SIGINT/SIGTERM."""
    if s["status"] == "interrupted":
        return 143 if s.get("signal") == "SIGTERM" else 130
    if s["status"] == "failed":
        return 1
    p99 = ((s.get("slo") or {}).get("p99_ms") or {})
    if p99 and not p99.get("met"):
        return 1
    return 0


def report(s: dict) -> int:
    """Print the summary and the warnings; return the exit code."""
    print_summary(s)
    v = s.get("validity") or {}
    if not v.get("generator_kept_up", True):
        lag = s.get("schedule_lag_ms") or {}
        print(f"perfkit: WARNING: the load generator fell behind its schedule (lag p99 "
              f"{_fmt(lag.get('p99'))}, {100 * (lag.get('late_fraction') or 0):.1f}% late > "
              f"{lag.get('late_threshold_ms')} ms): latencies include client delay; add --workers or "
              f"lower the rate. Run marked valid: false.", file=sys.stderr)
    if s["status"] == "failed":
        print(f"perfkit bench: run failed: {s.get('status_reason')}", file=sys.stderr)
    p99 = (s.get("slo") or {}).get("p99_ms")
    if p99 and not p99["met"]:
        print(f"perfkit bench: SLO missed: p99 {_fmt(p99['observed'])} > {p99['limit']:g} ms", file=sys.stderr)
    return exit_code(s)


def _cmd_bench(args: argparse.Namespace) -> int:
    from perfkit.bench.runner import run

    cfg = config_from_args(args)
    return report(run(cfg))


def _cmd_sweep(args: argparse.Namespace) -> int:
    from perfkit.bench import sweep

    if args.rate is None and not args.scenario:
        args.rate = 1.0  # placeholder: every sweep step sets its own rate
    return sweep.cli_sweep(config_from_args(args), args)


def _cmd_locustfile(args: argparse.Namespace) -> int:
    from perfkit.bench import locustgen

    path = locustgen.write(args.scenario, args.out, args.per_user_rps)
    print(f"wrote {path}: locust -f {path} --headless (or --master/--worker)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` and ``sweep`` to `perfkit`."""
    b = sub.add_parser("bench", help="open-loop load test of an inference endpoint",
                       description="Send load on a schedule, time every request from its intended send "
                       "(no coordinated omission), store one row per request and the run summary. "
                       "Exit 0 ok, 1 run failed or --slo-p99-ms missed, 2 bad input, 130 interrupted.")
    add_load_arguments(b)
    b.set_defaults(func=_cmd_bench)
    s = sub.add_parser("sweep", help="latency-throughput curve over rates, or the max rate within an SLO",
                       description="Run bench at each of --rates, or search (--find-max) for the highest "
                       "rate whose P99 meets --slo-p99-ms; every step is a stored run labelled sweep=<id>.")
    add_load_arguments(s)
    s.add_argument("--rates", metavar="R1,R2,...", help="rates to run, requests/s")
    s.add_argument("--find-max", action="store_true", help="bracket then bisect the highest rate meeting the SLO")
    s.add_argument("--max-rate", type=float, default=100000.0, help="find-max: upper bound on the search")
    s.add_argument("--tolerance", type=float, default=0.05, help="find-max: stop when the bracket is this "
                   "fraction of the rate")
    s.set_defaults(func=_cmd_sweep)
    lf = sub.add_parser("locustfile", help="write a locustfile (LoadTestShape + same payloads) for a scenario",
                        description="Translate SCENARIO.toml into a locustfile for `locust --master/--worker`: "
                        "a LoadTestShape following the stages' rates and the same seeded payloads.")
    lf.add_argument("scenario", metavar="SCENARIO.toml")
    lf.add_argument("-o", "--out", default="locustfile.py", help="where to write (default locustfile.py)")
    lf.add_argument("--per-user-rps", type=float, default=1.0, help="requests/s each Locust user paces itself to")
    lf.set_defaults(func=_cmd_locustfile)
