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

from perfkit.bench.choices import PATTERNS, PROTOCOLS, SLO_KEYS
from perfkit.errors import UsageError
from perfkit.summary import invalid_reasons

if TYPE_CHECKING:
    from perfkit.bench.config import BenchConfig
    from perfkit.summary import PhaseSummary, RunSummary

# Flags that map onto a field, one a line: FLAG [METAVAR] | OBJECT.FIELD[:TYPE] | help. The object
# is a Stage, the PayloadSpec, the Workload or the BenchConfig itself. Defaults are None, so that a scenario
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
--warmup-s S         | config.warmup_s:float   | first seconds of the schedule, taken out of it (not added): \
their requests are sent and stored but excluded from the statistics (default 0)
--cooldown-s S       | config.cooldown_s:float | the same at the end of the schedule (default 0)
--concurrency N      | stage.concurrency:int   | closed loop: users in flight
--think-s S          | stage.think_s:float     | closed loop: pause after each response (default 0)
--burstiness B       | stage.burstiness:float  | gamma shape (1 = Poisson, <1 burstier; default 1)
--spike-rps          | stage.spike_rps:float   | burst: rate added during a spike (default 0)
--spike-period-s     | stage.spike_period_s:float | burst: time between spike starts (default 10)
--spike-s            | stage.spike_s:float     | burst: spike length (default 1)
--step-rps           | stage.step_rps:float    | step: rate added per step (start is --rate; default 0)
--step-s             | stage.step_s:float      | step: seconds per step (default 10)
--steps              | stage.steps:int         | step: number of steps (default 1)
--from-rps           | stage.from_rps:float    | ramp: start rate (default 0)
--to-rps             | stage.to_rps:float      | ramp: end rate (default 0)
--trace CSV|JSONL    | stage.trace             | replay: CSV of send offsets (s), or a Mooncake trace .jsonl \
(timestamps in ms; its rows are the --dataset unless one is given)
--speed              | stage.speed:float       | replay: speed-up factor (default 1)
--workers N          | config.workers:int      | load processes sharing the schedule (default 1)
--payload KIND|PATH  | payload.kind            | fixed|normal|longtail|outliers or a .jsonl file (default fixed)
--payload-mean       | payload.mean:float      | mean body size (floats, or prompt words; default 64)
--payload-sd         | payload.sd:float        | normal: standard deviation of the size (default 16)
--payload-sigma      | payload.sigma:float     | longtail: lognormal sigma (default 1)
--outlier-fraction   | payload.outlier_fraction:float | outliers: share of outlier bodies (default 0.01)
--outlier-factor     | payload.outlier_factor:float | outliers: size multiplier (default 16)
--payload-template JSON|FILE | payload.template | body template, inline JSON ('{"inputs": ...}') or a JSON file, with "{{floats}}", "{{text}}", "{{size}}", "{{rows}}"
--tokenizer PATH     | workload.tokenizer      | openai: count tokens with this Hugging Face tokenizer.json (or a \
directory holding one; needs the tokenizers package, pip install 'perfkit[llm]'); default perfkit-char-lm, the demo \
model's own (one token per character)
--prompt-tokens SPEC | workload.prompt_tokens  | openai: prompt length in tokens, each prompt generated to exactly \
that count with --tokenizer. SPEC: N | normal:MEAN,SD | longtail:MEDIAN,SIGMA (lognormal) | empirical:FILE_OR_LIST \
(observed lengths, resampled: a file of numbers or 12,40,33), clipped to [1, max] (',max=M'; default 131072). \
Default 64; a --dataset's prompts first
--output-tokens SPEC | workload.output_tokens  | openai: output length in tokens (SPEC as --prompt-tokens), sent \
as each body's max_tokens; not with --max-tokens (default 64; a --dataset's column first)
--dataset FILE       | workload.dataset        | openai: one body per row, cycled, from .jsonl/.json/.csv/.parquet, \
or a Mooncake trace .jsonl (timestamp ms, input_length, output_length, hash_ids), replayed on its own timing \
when neither --rate nor --pattern is given (--speed scales it)
--dataset-columns MAP | workload.dataset_columns | --dataset columns, FIELD=COLUMN,...: prompt=COL[,output_tokens=COL]\
[,messages=COL] (also prompt_tokens, hash_ids, timestamp); default: the columns so named
--turns N            | workload.turns:int      | openai chat: turns per conversation, each carrying the earlier \
prompts and generated answers of their output length (bodies are built before the run; default 1)
--ignore-eos         | workload.ignore_eos:bool | openai: also send min_tokens = max_tokens and ignore_eos: true \
(vLLM-like servers), so that answers run to their intended length
--model              | config.model            | model name in bodies and KServe paths (default: the demo \
server's, by protocol: demo for http-json, digits for kserve-v2, perfkit-char-lm for openai)
--max-tokens N       | config.max_tokens:int   | openai: max_tokens of every body, --payload files and \
templates included (max_completion_tokens where a body uses it; default 64 in drawn bodies, a file's own value)
--temperature T      | config.temperature:float | openai: temperature of every body, files included (default: \
the body's, else the server's)
--top-p P            | config.top_p:float      | openai: top_p of every body, files included (default: the \
body's, else the server's)
--stream             | config.stream:bool      | openai: ask for a token stream (SSE; the default, which leaves a \
file's bodies as written) or, with --no-stream, plain JSON answers (no TTFT/TPOT, usage tokens kept)
--bearer-env VAR     | config.bearer_env       | send 'Authorization: Bearer $VAR' (never stored)
--timeout-s          | config.timeout_s:float  | connect+read timeout per request (default 30)
--max-connections    | config.max_connections:int | cap on open connections per worker (default 20000)
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
        if type_name == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif type_name:
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
    p.add_argument("--slo", metavar="K=V,...",
                   help=f"goodput SLOs, each a bound on one per-request series: {', '.join(SLO_KEYS)} "
                   "(ttft_ms from the intended send; tpot_ms excludes TTFT, tpot_incl_ttft_ms includes it; "
                   "itl_max_ms: the request's largest token gap, itl_request_mean_ms: its mean gap)")
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
    work_kw = _given(args, "workload")
    if work_kw or str(stage_kw.get("trace", "")).endswith(".jsonl"):
        from perfkit.bench.workload import link_trace

        link_trace(stage_kw, work_kw, args.rate is not None or bool(args.scenario))
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
    if work_kw:
        cfg.workload = dataclasses.replace(cfg.workload, **work_kw)
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


def phase_line(phases: PhaseSummary) -> str:
    """``warm-up 5 s (n=40) and cool-down 2 s (n=16) excluded``: what the statistics leave out."""
    n, parts = phases["requests"], []
    if phases["warmup_s"]:
        parts.append(f"warm-up {phases['warmup_s']:g} s (n={n.get('warmup', 0):,})")
    if phases["cooldown_s"]:
        parts.append(f"cool-down {phases['cooldown_s']:g} s (n={n.get('cooldown', 0):,})")
    return " and ".join(parts) + " excluded"


def _p50_p99(s: RunSummary, key: str) -> str:
    """``name p50 X p99 Y`` of one summary series (``-`` where absent: summaries stored before it)."""
    v: Any = dict(s).get(key) or {}
    return f"{key} p50 {_fmt(v.get('p50'))} p99 {_fmt(v.get('p99'))}"


def _print_llm(s: RunSummary, out: TextIO) -> None:
    """TTFT, TPOT in both conventions and ITL in its three forms, each under its summary name."""
    print(f"  TTFT (first token - intended send) {_p50_p99(s, 'ttft_intended_ms')}  "
          f"output {_fmt(s.get('output_tokens_per_s'), ' tok/s')}", file=out)
    print(f"  TPOT excl. TTFT, (done - first token)/(tokens - 1): {_p50_p99(s, 'tpot_ms')}", file=out)
    print(f"  TPOT incl. TTFT, (done - intended send)/tokens:     {_p50_p99(s, 'tpot_incl_ttft_ms')}", file=out)
    print(f"  ITL pooled over every gap: {_p50_p99(s, 'itl_ms')}", file=out)
    print(f"  ITL per request, mean gap: {_p50_p99(s, 'itl_request_mean_ms')}  "
          f"largest gap: {_p50_p99(s, 'itl_max_ms')}", file=out)


def print_summary(s: RunSummary, out: TextIO | None = None) -> None:
    """The summary in a few lines (stdout by default)."""
    out = out or sys.stdout
    lat, lag = s["latency_ms"], s["schedule_lag_ms"]
    errs = ", ".join(f"{k} {v}" for k, v in s["errors"].items()) or "none"
    print(f"run {s['run_id']}  status {s['status']}  ({s['status_reason']})", file=out)
    never = s.get("never_sent")
    print(f"  requests {s['requests']:,}  ok {s['ok']:,}  errors: {errs}"
          + (f"  never sent: {never:,}" if never else ""), file=out)
    if s.get("phases"):
        print(f"  {phase_line(s['phases'])}", file=out)
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
        _print_llm(s, out)
    if "goodput" in s:
        g = s["goodput"]
        print(f"  goodput {_fmt(g['rps'], ' req/s')} ({g['good']:,} of {g['n']:,} within {g['slo']})", file=out)
    reasons = [] if s["valid"] else invalid_reasons(s)
    for reason in reasons or ["yes" if s["valid"] else "no"]:
        print(f"  valid: {'no — ' + reason if reasons else reason}", file=out)


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

            cfg = config_from_args(args)
            cfg.segment, cfg.start_at, cfg.clock_ref = args.segment, args.start_at, args.clock_ref
            return report(run(cfg, stop=stop))
        except Interrupted as exc:
            print(f"perfkit bench: {exc}", file=sys.stderr)
            return 128 + exc.signum
        except Exception:
            if stop.signum is None or not stop.armed:
                raise
            # The handler's Interrupted was raised inside a library that runs Python signal
            # handlers in its own code and re-raises its own error (DuckDB: "Query interrupted"
            # during the store's migrations): still an interruption before the run was recorded.
            print(f"perfkit bench: {Interrupted(stop.signum)}", file=sys.stderr)
            return 128 + stop.signum


def _cmd_sweep(args: argparse.Namespace) -> int:
    from perfkit.bench import sweep

    args.start_rate = args.rate  # where --find-max/--find-knee start (None: 10 req/s)
    if args.rate is None and not args.scenario:
        args.rate = 1.0  # placeholder: every sweep step sets its own rate
    return sweep.cli_sweep(config_from_args(args), args)


def _cmd_merge(args: argparse.Namespace) -> int:
    from perfkit.bench.merge import merge

    return report(merge(args.db, args.segments))


def _cmd_locustfile(args: argparse.Namespace) -> int:
    from perfkit.bench import locustgen

    path = locustgen.write(args.scenario, args.out, args.per_user_rps)
    print(f"wrote {path}: locust -f {path} --headless (or --master/--worker)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench``, ``sweep``, ``merge`` and ``locustfile`` to `perfkit`."""
    from perfkit.cliutil import add_command, add_db_argument

    b = sub.add_parser("bench", help="open-loop load test of an inference endpoint",
                       description="Send load on a schedule, time every request from its intended send "
                       "(no coordinated omission), store one row per request and the run summary. "
                       "Exit 0 ok, 1 run failed or --slo-p99-ms missed, 2 bad input, 130/143 interrupted "
                       "(SIGINT/SIGTERM).")
    add_load_arguments(b)
    b.add_argument("--segment", metavar="I/N", help="send only segment I of N of the schedule (sends k with "
                   "k %% N == I, rows keep their global seq); `perfkit merge` folds the N segments into one run")
    b.add_argument("--start-at", metavar="UNIX_S|+S", help="start at this wall-clock time (Unix seconds; +S: S "
                   "seconds from now); give every segment the same time. Refused if over 1 s in the past")
    b.add_argument("--clock-ref", metavar="URL", help="check this host's clock against URL (its X-Server-Time "
                   "header or a body holding the Unix time, e.g. serve-demo's /health) and refuse to start when "
                   "off by more than half the late threshold (2.5 ms)")
    b.set_defaults(func=_cmd_bench)
    m = add_command(sub, "merge", _cmd_merge, help="fold the segments of one run into a single run",
                    description="Merge the DuckDB files of the N segments of one run (`perfkit bench --segment "
                    "I/N`) into one run in --db: rows keep their global seq; summary, percentiles and validity "
                    "are recomputed over the union. Segments of different schedules, seeds or starts, a "
                    "different N, duplicate or missing segments are refused (exit 2).")
    m.add_argument("segments", nargs="+", metavar="SEGMENT_DB", help="one DuckDB file per segment")
    add_db_argument(m)
    s = sub.add_parser("sweep", help="latency-throughput curve over rates and its knee, or the max rate within an SLO",
                       description="Run bench at each of --rates (or, with --find-knee, at geometric rates), "
                       "stop after the first over-saturated step (completions short of arrivals for a sustained "
                       "window) and find the knee (Kneedle on achieved throughput vs --knee-metric); or search "
                       "(--find-max) for the highest rate whose P99 meets --slo-p99-ms. Every step is a stored "
                       "run labelled sweep=<id>; `perfkit report 09_sweep -p sweep ID` draws the curve.")
    add_load_arguments(s)
    s.add_argument("--rates", metavar="R1,R2,...", help="rates to run, requests/s")
    s.add_argument("--find-max", action="store_true", help="bracket then bisect the highest rate meeting the SLO")
    s.add_argument("--find-knee", action="store_true", help="find the knee; without --rates, run --rate (default "
                   "10) x --rate-factor^k until over-saturated, --max-rate or --max-steps")
    s.add_argument("--knee-metric", default="latency_p99", metavar="QUANTITY_PCT", help="the knee's latency: "
                   "latency|service|ttft|tpot|tpot_incl_ttft|itl_max|itl_request_mean _ p50|p90|p95|p99|p999 (default "
                   "latency_p99; ttft from the intended send)")
    s.add_argument("--knee-sensitivity", type=float, default=1.0, metavar="S", help="Kneedle sensitivity (default 1; "
                   "larger wants a sharper knee)")
    s.add_argument("--rate-factor", type=float, default=1.5, help="find-knee: ratio of one rate to the next (default 1.5)")
    s.add_argument("--max-steps", type=int, default=12, help="find-knee: rates at most (default 12)")
    s.add_argument("--saturation-window-s", type=float, default=3.0, metavar="W", help="over-saturation: completions "
                   "short of arrivals over W s in a row, the backlog growing throughout (default 3)")
    s.add_argument("--saturation-epsilon", type=float, default=0.1, metavar="E", help="over-saturation: completions "
                   "< (1 - E) x arrivals over the window (default 0.1)")
    s.add_argument("--max-rate", type=float, default=100000.0, help="find-max, find-knee: upper bound on the rate")
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


__all__ = ["add_load_arguments", "config_from_args", "exit_code", "print_summary", "register",
           "report", "signal"]
