"""``perfkit bench``, ``perfkit sweep`` and ``perfkit locustfile``: a thin layer over :func:`perfkit.bench.run`.

Registering these commands imports the standard library only; the handlers import
the engine. ``perfkit bench`` installs its SIGINT/SIGTERM handling before anything
slow happens, so a signal at any moment ends in a finalized (interrupted) run or,
before the first request, in no run at all; never in a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from typing import TYPE_CHECKING, Any, TextIO

from perfkit.bench.choices import PATTERNS, PROTOCOLS
from perfkit.errors import UsageError

if TYPE_CHECKING:
    from perfkit.bench.config import BenchConfig
    from perfkit.summary import RunSummary

# Flags that map onto a field, one a line: FLAG [METAVAR] | OBJECT.FIELD[:TYPE] | help. The object
# is a Stage, the PayloadSpec or the BenchConfig itself. Defaults are None, so that a scenario
# file's values win unless a flag is given.
_FIELD_FLAGS = """
--target URL         | config.target           | e.g. http://127.0.0.1:8000 (empty path: the protocol's \
endpoint, /api/v1/infer, /v2/models/MODEL/infer, /v1/chat/completions); user:password@ is sent as Basic auth \
and never stored
--protocol           | config.protocol         | request format (default http-json)
--method             | config.method           | HTTP method (default POST)
--pattern            | stage.pattern           | arrival pattern (default constant)
--rate RPS           | stage.rate_rps:float    | (base) request rate, requests/s
--duration S         | stage.duration_s:float  | seconds of load
--concurrency N      | stage.concurrency:int   | closed loop: users in flight
--think-s S          | stage.think_s:float     | closed loop: pause after each response
--burstiness B       | stage.burstiness:float  | gamma shape (1 = Poisson, <1 burstier)
--spike-rps          | stage.spike_rps:float   | burst: rate added during a spike
--spike-period-s     | stage.spike_period_s:float | burst: time between spike starts
--spike-s            | stage.spike_s:float     | burst: spike length
--step-rps           | stage.step_rps:float    | step: rate added per step (start is --rate)
--step-s             | stage.step_s:float      | step: seconds per step
--steps              | stage.steps:int         | step: number of steps
--from-rps           | stage.from_rps:float    | ramp: start rate
--to-rps             | stage.to_rps:float      | ramp: end rate
--trace CSV          | stage.trace             | replay: CSV of send offsets (s)
--speed              | stage.speed:float       | replay: speed-up factor
--workers N          | config.workers:int      | load processes sharing the schedule
--payload KIND|PATH  | payload.kind            | fixed|normal|longtail|outliers or a .jsonl file
--payload-mean       | payload.mean:float      | mean body size (floats, or prompt words)
--payload-sd         | payload.sd:float        | normal: standard deviation of the size
--payload-sigma      | payload.sigma:float     | longtail: lognormal sigma
--outlier-fraction   | payload.outlier_fraction:float | outliers: share of outlier bodies
--outlier-factor     | payload.outlier_factor:float | outliers: size multiplier
--payload-template JSON|FILE | payload.template | body template, inline JSON ('{"inputs": ...}') or a JSON file, with "{{floats}}", "{{text}}", "{{size}}", "{{rows}}"
--model              | config.model            | model name in bodies and KServe paths (default demo)
--max-tokens         | config.max_tokens:int   | openai: max_tokens per request
--bearer-env VAR     | config.bearer_env       | send 'Authorization: Bearer $VAR' (never stored)
--timeout-s          | config.timeout_s:float  | connect+read timeout per request (default 30)
--max-connections    | config.max_connections:int | cap on open connections per worker
--slo-p99-ms MS      | config.slo_p99_ms:float | exit 1 if P99 latency exceeds this
--label              | config.label            | free text, k=v pairs are parsed ("hardware=T4,batching=fixed")
--summary-json PATH  | config.summary_json     | write the summary JSON here
--seed               | config.seed:int         | seed for schedules and payloads (default 0)
--min-duration-s     | config.min_duration_s:float | validity: minimum run length (default 10)
--min-queries        | config.min_queries:int  | validity: minimum successful requests (default 100)
--target-pid PID     | config.target_pid:int   | server process to sample (CPU, memory)
"""
_CHOICES = {"--protocol": PROTOCOLS, "--pattern": PATTERNS}
_TYPES = {"float": float, "int": int}


def _field_flags() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(flag, object, field, add_argument keywords) for each line of :data:`_FIELD_FLAGS`."""
    out = []
    for line in _FIELD_FLAGS.strip().splitlines():
        flag_part, target, help_text = (part.strip() for part in line.split(" | ", 2))
        flag, _, metavar = flag_part.partition(" ")
        where, _, name = target.partition(".")
        name, _, type_name = name.partition(":")
        kw: dict[str, Any] = {"help": help_text}
        if metavar:
            kw["metavar"] = metavar
        if type_name:
            kw["type"] = _TYPES[type_name]
        if flag in _CHOICES:
            kw["choices"] = _CHOICES[flag]
        out.append((flag, where, name, kw))
    return out


def _dest(flag: str) -> str:
    return flag[2:].replace("-", "_")


def add_load_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by bench and sweep."""
    from perfkit.cliutil import add_db_argument

    p.add_argument("scenario", nargs="?", metavar="SCENARIO.toml", help="multi-stage scenario file")
    for flag, _, _, kw in _field_flags():
        p.add_argument(flag, **kw)
    p.add_argument("--header", action="append", metavar="'K: V'", help="extra request header (repeatable)")
    p.add_argument("--metrics-url", action="append", metavar="URL",
                   help="Prometheus endpoint to scrape during the run (repeatable), e.g. a server's own "
                   "metrics port: http://127.0.0.1:8082/metrics. Given, these are scraped INSTEAD of "
                   "<target>/metrics; to scrape the target as well, give its /metrics too. user:password@ "
                   "is sent as Basic auth, otherwise the run's credential headers; never stored")
    p.add_argument("--slo", metavar="K=V,...", help="goodput SLOs: latency_ms, ttft_ms, tpot_ms, itl_ms")
    add_db_argument(p)
    p.add_argument("--no-collect", action="store_true", help="do not sample telemetry during the run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _given(args: argparse.Namespace, where: str) -> dict[str, Any]:
    """The fields of ``where`` whose flags were given."""
    out = {}
    for flag, w, name, _ in _field_flags():
        value = getattr(args, _dest(flag))
        if w == where and value is not None:
            out[name] = value
    return out


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """Flags (and the scenario file, if given) -> a BenchConfig. Flags override the file."""
    from perfkit.bench.config import BenchConfig, parse_header, parse_slo
    from perfkit.bench.schedule import Stage

    stage_kw = _given(args, "stage")
    if args.scenario:
        from perfkit.bench import scenario

        cfg = scenario.load(args.scenario)
        if stage_kw:
            raise UsageError("stage flags (--rate, --pattern, --duration, ...) cannot be combined with a "
                             "scenario file; edit its [[stage]] tables")
    else:
        cfg = BenchConfig()
        pattern = stage_kw.get("pattern", "constant")
        if args.rate is None and pattern in ("constant", "poisson", "gamma", "burst", "step"):
            raise UsageError("--rate RPS is required (or give a SCENARIO.toml)")
        if args.duration is None and pattern not in ("step", "replay"):
            raise UsageError("--duration S is required (or give a SCENARIO.toml)")
        cfg.stages = [Stage(**stage_kw)]
    for name, value in _given(args, "config").items():
        setattr(cfg, name, value)
    if args.db is not None:
        cfg.db = args.db
    pay = _given(args, "payload")
    if args.seed is not None:
        pay["seed"] = args.seed
    if pay:
        cfg.payload = dataclasses.replace(cfg.payload, **pay)
    if args.header:
        cfg.headers = cfg.headers + [parse_header(h) for h in args.header]
    if args.metrics_url:
        cfg.metrics_urls = list(args.metrics_url)  # the flags replace a scenario file's list
    if args.slo:
        cfg.slo = {**cfg.slo, **parse_slo(args.slo)}
    cfg.quiet = bool(args.quiet)
    cfg.collect = not args.no_collect
    return cfg


def _fmt(v: float | None, unit: str = " ms") -> str:
    return "-" if v is None else f"{v:,.2f}{unit}"


def print_summary(s: RunSummary, out: TextIO | None = None) -> None:
    """The summary in a few lines (stdout by default)."""
    out = out or sys.stdout
    lat, lag = s["latency_ms"], s["schedule_lag_ms"]
    errs = ", ".join(f"{k} {v}" for k, v in s["errors"].items()) or "none"
    print(f"run {s['run_id']}  status {s['status']}  ({s['status_reason']})", file=out)
    never = s.get("never_sent")
    print(f"  requests {s['requests']:,}  ok {s['ok']:,}  errors: {errs}"
          + (f"  never sent: {never:,}" if never else ""), file=out)
    if s.get("error_bodies"):
        from perfkit.bench.errorbodies import lines

        for line in lines(s["error_bodies"]):
            print(f"    {line}", file=out)
    print(f"  intended {_fmt(s['intended_rate_rps'], ' req/s')}  achieved {_fmt(s['achieved_rate_rps'], ' req/s')}  "
          f"over {s['duration_s']:.2f} s", file=out)
    print(f"  latency from intended send (n={lat['n']:,}): p50 {_fmt(lat['p50'])}  p90 {_fmt(lat['p90'])}  "
          f"p99 {_fmt(lat['p99'])}  p99.9 {_fmt(lat['p999'])}  max {_fmt(lat['max'])}", file=out)
    ci = s["latency_ci_ms"]["p99"]
    if ci:
        print(f"  p99 {s['latency_ci_ms']['confidence']:.0%} CI [{_fmt(ci[0])}, {_fmt(ci[1])}]", file=out)
    print(f"  schedule lag: p50 {_fmt(lag['p50'])}  p99 {_fmt(lag['p99'])}  max {_fmt(lag['max'])}", file=out)
    if "ttft_intended_ms" in s and "tpot_ms" in s:
        ttft = s["ttft_intended_ms"]
        print(f"  TTFT from intended send p50 {_fmt(ttft['p50'])} p99 {_fmt(ttft['p99'])}  "
              f"TPOT p50 {_fmt(s['tpot_ms']['p50'])}  output {_fmt(s.get('output_tokens_per_s'), ' tok/s')}",
              file=out)
    if "goodput" in s:
        g = s["goodput"]
        print(f"  goodput {_fmt(g['rps'], ' req/s')} ({g['good']:,} of {g['n']:,} within {g['slo']})", file=out)
    print(f"  valid: {s['valid']}", file=out)


def exit_code(s: RunSummary) -> int:
    """0 ok; 1 failed run or missed --slo-p99-ms; 130/143 interrupted by SIGINT/SIGTERM."""
    if s["status"] == "interrupted":
        return 143 if s.get("signal") == "SIGTERM" else 130
    if s["status"] == "failed":
        return 1
    p99 = s.get("slo", {}).get("p99_ms")
    if p99 and not p99["met"]:
        return 1
    return 0


def report(s: RunSummary) -> int:
    """Print the summary and the warnings; return the exit code."""
    print_summary(s)
    if not s["validity"]["generator_kept_up"]:
        lag = s["schedule_lag_ms"]
        print(f"perfkit: WARNING: the load generator fell behind its schedule (lag p99 "
              f"{_fmt(lag['p99'])}, {100 * (lag['late_fraction'] or 0):.1f}% late > "
              f"{lag['late_threshold_ms']} ms): latencies include client delay; add --workers or "
              f"lower the rate. Run marked valid: false.", file=sys.stderr)
    if s["status"] == "failed":
        print(f"perfkit bench: run failed: {s['status_reason']}", file=sys.stderr)
    p99 = s.get("slo", {}).get("p99_ms")
    if p99 and not p99["met"]:
        print(f"perfkit bench: SLO missed: p99 {_fmt(p99['observed'])} > {p99['limit']:g} ms", file=sys.stderr)
    return exit_code(s)


def _cmd_bench(args: argparse.Namespace) -> int:
    from perfkit.bench.signals import Interrupted, StopSignals

    with StopSignals() as stop:  # first: a signal from here on never ends in a traceback
        try:
            from perfkit.bench.runner import run

            return report(run(config_from_args(args), stop=stop))
        except Interrupted as exc:
            print(f"perfkit bench: {exc}", file=sys.stderr)
            return 128 + exc.signum


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
    """Add ``bench``, ``sweep`` and ``locustfile`` to `perfkit`."""
    b = sub.add_parser("bench", help="open-loop load test of an inference endpoint",
                       description="Send load on a schedule, time every request from its intended send "
                       "(no coordinated omission), store one row per request and the run summary. "
                       "Exit 0 ok, 1 run failed or --slo-p99-ms missed, 2 bad input, 130/143 interrupted "
                       "(SIGINT/SIGTERM).")
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


__all__ = ["add_load_arguments", "config_from_args", "exit_code", "print_summary", "register", "report",
           "signal"]
