"""``perfkit hardware``, ``perfkit tco`` and ``perfkit fleet``: flags in, tables out.

Only argument parsing and printing live here; every figure comes from the
functions the notebooks call (:mod:`perfkit.analyze.hardware`). Heavy imports
happen inside the handlers, so registering the commands stays cheap.
"""
from __future__ import annotations

import argparse
import math
import re
from typing import TYPE_CHECKING

from perfkit.cliutil import add_db_argument
from perfkit.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from perfkit.analyze.hardware.fleet import WorkloadClass

_HARDWARE_HELP = """\
List and validate the hardware catalog (data/hardware.csv), or compare hardware.

--compare catalog  datasheet only, an estimate (basis "estimate (datasheet TFLOPS
                   scaling)"): throughput = peak dense FP16 TFLOPS (or INT8 TOPS
                   with --precision int8), perf/W = that / TDP, perf per $/h = that
                   / price_hour_usd. Shown as numbers, never rated with stars.
--compare runs     measured runs tagged --label hardware=NAME: qps_at_slo = the
                   highest achieved rate among runs with P99 <= --slo-p99-ms and
                   >= 99 % successes (--conservative: the upper end of the
                   run's P99 95 % interval must meet the SLO; --require-valid:
                   only runs marked valid); P99 at --load-rps interpolated linearly
                   between runs; perf/W = qps_at_slo / mean power (telemetry of
                   the run: gpu_power_w series inside the run's window, else
                   catalog TDP); perf per $/h = qps_at_slo / price. A run of N
                   devices carries --label hardware=NAME,devices=N: its rates
                   and power are divided by N (figures are per device).
--compare mlperf   MLPerf summary_results.json or summary.csv (--mlperf PATH,
                   --model M): Server result per accelerator as qps_at_slo,
                   Offline per accelerator as peak throughput, perf/W =
                   Performance_Result / Power_Result where has_power.

Ratings per profile (latency-sensitive, throughput-first, cost-sensitive):
each metric m normalized to the best device, s = m / max(m) (or min(m) / m
when lower is better); score = weighted geometric mean exp(sum w ln s / sum w);
stars = max(1, ceil(5 x score)). Weights: latency-sensitive 0.5 p99_at_load_ms
(lower better) + 0.5 qps_at_slo; throughput-first 0.7 peak_throughput + 0.3
perf_per_w; cost-sensitive 0.7 perf_per_usd_hour + 0.3 perf_per_w. A profile
is left unrated where its key metric is missing (e.g. no price). Every row
names its basis: a measured run id, an MLPerf row, or the estimate tier.
"""

_TCO_HELP = """\
Cost per query, per 1,000 queries and per 1M tokens, energy and FLOPS/W, per device.

  cost_per_1k_queries_usd = hourly_usd / (3600 x qps_at_slo x utilization) x 1000
  cost_per_1m_tokens_usd  = hourly_usd / (3600 x output_tokens_per_s x utilization) x 1e6
  energy_kwh              = mean_power_w x hours / 1000 x PUE
  capex_usd_per_h         = price_purchase_usd / (life_years x 8760)
  fp16_gflops_per_w       = fp16_tflops_dense x 1000 / mean_power_w
hourly_usd is price_hour_usd when --mode rent (electricity is in the rent) and
capex_usd_per_h + energy_kwh_per_h x --kwh-price when --mode own. Mean power is
--power-w when given, else TDP x --power-fraction. With --slo-p99-ms, throughput
within the SLO and power come from runs labelled hardware=NAME in --db (qps_basis
names the run); --qps values are "given". --utilization (default 1.0)
is the fraction of paid hours serving at the measured rate.
"""

_FLEET_HELP = """\
The cheapest integer fleet for several workload classes (scipy.optimize.milp).

Model: n_h integer devices of type h; x_hc >= 0 device-equivalents of h given
to class c (integers with --no-split). Minimize sum_h cost_h n_h subject to
sum_h cap_hc u_c x_hc >= D_c (each class's demand) and sum_c x_hc <= n_h (no
device over-committed); x_hc = 0 where h cannot serve c.
  --realtime NAME=RPS@P99MS        D_c = RPS, to be served with P99 <= P99MS
  --offline NAME=ITEMS_PER_DAY@H   D_c = ITEMS / (3600 x H): done within H hours
Capacities: --capacity HW:CLASS=RPS (measured, per device, within the class's
latency bound). Estimate tier, only with --use-estimates: --reference HW with
--ref-capacity CLASS=RPS[@P99MS]: cap_hc = cap_ref,c x r, p99_hc = p99_ref,c / r,
r = tflops_h / tflops_ref (peak dense, catalog; compute-bound assumption); a
real-time class only goes to devices whose scaled P99 meets its bound; the output
then says the capacities are an estimate. The cheapest one-type fleet is
solved the same way, and the saving of the mix over it is reported. Every
device is paid around the clock; the offline window may overlap the real-time
peak, so both demands are met at once. --window-rent adds integer m_h devices
rented only while the longest offline window is open: they serve offline
classes only and cost cost_h x window_h / 24 per hour averaged over the day.
"""


def _catalog(args: argparse.Namespace) -> "pd.DataFrame":
    from perfkit.analyze.hardware.catalog import load_catalog

    return load_catalog(args.catalog)


def _pairs(items: list[str] | None, flag: str) -> dict[str, float]:
    """``["A=1.5", "B=2"]`` -> ``{"A": 1.5, "B": 2.0}`` (a repeated ``NAME=NUMBER`` flag)."""
    from perfkit.analyze.hardware.options import parse_overrides

    return parse_overrides(items, flag, separators="=")


def _print(frame: "pd.DataFrame", as_json: bool) -> None:
    import pandas as pd

    if as_json:
        print(frame.reset_index().to_json(orient="records", double_precision=15))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 40,
                               "display.max_colwidth", 40):
            print(frame.to_string())


def _cmd_hardware(args: argparse.Namespace) -> int:
    from perfkit.analyze import hardware as hw

    catalog = _catalog(args)
    if args.validate:
        print(f"{catalog.attrs['path']}: ok, {len(catalog)} devices")
        return 0
    if not args.compare:
        _print(hw.catalog_view(catalog), args.json)
        return 0
    prices = _pairs(args.price, "--price")
    if args.compare == "catalog":
        metrics = hw.catalog_metrics(catalog, args.precision, prices)
    elif args.compare == "runs":
        from perfkit import store

        if args.slo_p99_ms is None or args.load_rps is None:
            raise UsageError("--compare runs needs --slo-p99-ms and --load-rps")
        with store.connect(args.db, read_only=True) as con:
            runs = hw.measured_runs(con, args.label_key)
        if runs.empty:
            raise UsageError(f"no runs labelled {args.label_key}=NAME in the database "
                             f"(run `perfkit bench ... --label {args.label_key}=NAME`)")
        metrics = hw.measured_metrics(runs, catalog, args.slo_p99_ms, args.load_rps, prices,
                                      conservative=args.conservative, require_valid=args.require_valid)
    else:
        if not args.mlperf or not args.model:
            raise UsageError("--compare mlperf needs --mlperf PATH (repeatable) and --model NAME")
        results = hw.load_mlperf_files(args.mlperf)
        metrics = hw.mlperf_metrics(results, catalog, args.model, prices)
        if metrics.empty:
            raise UsageError(f"{', '.join(args.mlperf)}: no result for model {args.model!r} on a catalog device "
                             f"(models: {', '.join(sorted(results['model'].dropna().unique()))})")
    table = hw.comparison_table(metrics)
    _print(hw.summary_view(table) if not args.json else table, args.json)
    return 0


def _cmd_tco(args: argparse.Namespace) -> int:
    from perfkit.analyze import hardware as hw

    catalog = _catalog(args)
    names = args.hardware or list(catalog["name"])
    overrides = {column: _pairs(items, flag) for column, items, flag in (
        ("price_hour_usd", args.price, "--price"), ("price_purchase_usd", args.purchase, "--purchase"),
        ("mean_power_w", args.power_w, "--power-w"), ("qps_at_slo", args.qps, "--qps"),
        ("output_tokens_per_s", args.tokens_per_s, "--tokens-per-s"))}
    throughput = None
    if args.slo_p99_ms is not None:
        capacity = hw.capacity_from_store(args.db, args.slo_p99_ms, args.label_key)
        if capacity is None:
            raise UsageError(f"no runs labelled {args.label_key}=NAME in the database for --slo-p99-ms")
        throughput = hw.throughput_for_tco(catalog, names, capacity, append_measured=False)
    devices = hw.devices_frame(catalog, names, overrides, throughput, strict=True)
    params = hw.CostParams(mode=args.mode, utilization=args.utilization, pue=args.pue,
                           price_per_kwh_usd=args.kwh_price, life_years=args.life_years,
                           power_fraction_of_tdp=args.power_fraction)
    try:
        table = hw.tco_table(devices, params, hours=args.hours)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _print(hw.tco_view(table) if not args.json else table.set_index("name"), args.json)
    return 0


_CLASS_RE = re.compile(r"^(?P<name>[^=]+)=(?P<a>[0-9.eE+]+)@(?P<b>[0-9.eE+]+)$")
_CAPACITY_RE = re.compile(r"^(?P<hw>[^:]+):(?P<cls>[^=]+)=(?P<rps>[0-9.eE+]+)$")


def _classes(args: argparse.Namespace) -> list["WorkloadClass"]:
    """``--realtime NAME=RPS@P99MS`` and ``--offline NAME=ITEMS_PER_DAY@HOURS`` as workload classes."""
    from perfkit.analyze.hardware.fleet import WorkloadClass

    classes = []
    for spec in args.realtime or []:
        m = _CLASS_RE.match(spec)
        if not m:
            raise UsageError(f"--realtime: expected NAME=RPS@P99MS, got {spec!r}")
        classes.append(WorkloadClass.realtime(m["name"], float(m["a"]), float(m["b"]), args.target_utilization))
    for spec in args.offline or []:
        m = _CLASS_RE.match(spec)
        if not m:
            raise UsageError(f"--offline: expected NAME=ITEMS_PER_DAY@WINDOW_HOURS, got {spec!r}")
        try:
            classes.append(WorkloadClass.offline(m["name"], float(m["a"]), float(m["b"]), args.target_utilization))
        except ValueError as exc:
            raise UsageError(f"--offline {spec!r}: {exc}") from None
    if not classes:
        raise UsageError("give at least one --realtime or --offline class")
    return classes


def _reference_capacity(items: list[str] | None,
                        classes: list["WorkloadClass"]) -> tuple[dict[str, float], dict[str, float]]:
    """``--ref-capacity CLASS=RPS[@P99MS]`` as (capacity, P99) per class; every class needs one."""
    caps, p99s = {}, {}
    for item in items or []:
        key, _, value = item.partition("=")
        rate, _, p99 = value.partition("@")
        try:
            caps[key] = float(rate)
            p99s[key] = float(p99) if p99 else math.nan
        except ValueError:
            raise UsageError(f"--ref-capacity: expected CLASS=RPS[@P99MS], got {item!r}") from None
    missing = [c.name for c in classes if c.name not in caps]
    missing += [c.name for c in classes if c.kind == "realtime" and not math.isfinite(p99s.get(c.name, math.nan))]
    if missing:
        raise UsageError("--ref-capacity needs CLASS=RPS (and @P99MS for real-time) for: "
                         + ", ".join(sorted(set(missing))))
    return caps, p99s


def _measured_capacity(items: list[str] | None, catalog: "pd.DataFrame", names: list[str],
                       classes: list["WorkloadClass"]) -> "pd.DataFrame":
    """``--capacity HW:CLASS=RPS`` as a capacity frame (hardware among ``names``, class defined)."""
    from perfkit.analyze.hardware.catalog import catalog_row
    from perfkit.analyze.hardware.fleet import capacity_frame

    measured: dict[tuple[str, str], float] = {}
    for item in items or []:
        m = _CAPACITY_RE.match(item)
        if not m:
            raise UsageError(f"--capacity: expected HW:CLASS=RPS, got {item!r}")
        hw_name = str(catalog_row(catalog, m["hw"])["name"])
        if hw_name not in names or m["cls"] not in [c.name for c in classes]:
            raise UsageError(f"--capacity {item!r}: hardware must be among --hardware and the class defined")
        measured[hw_name, m["cls"]] = float(m["rps"])
    capacity = capacity_frame(names, classes, measured)
    if not (capacity.to_numpy() > 0).any():
        raise UsageError("give --capacity HW:CLASS=RPS for some hardware, or --reference with --ref-capacity")
    return capacity


def _cmd_fleet(args: argparse.Namespace) -> int:
    from perfkit.analyze import hardware as hw

    catalog = _catalog(args)
    classes = _classes(args)
    names = [str(hw.catalog_row(catalog, n)["name"]) for n in (args.hardware or catalog["name"])]
    if args.reference:
        if not args.use_estimates:
            raise UsageError("--reference scales capacities by datasheet TFLOPS, an estimate: "
                             "add --use-estimates to plan on it, or give measured --capacity HW:CLASS=RPS")
        caps, p99s = _reference_capacity(args.ref_capacity, classes)
        reference = str(hw.catalog_row(catalog, args.reference)["name"])
        capacity = hw.scaled_capacities(catalog, names, classes, reference, caps, p99s, args.precision)
        basis = f"{hw.ESTIMATE_BASIS} from {reference}, opted in with --use-estimates"
    else:
        capacity = _measured_capacity(args.capacity, catalog, names, classes)
        basis = "given (--capacity, measured)"
    if not (0 < args.target_utilization <= 1):
        raise UsageError(f"--target-utilization must be in (0, 1], got {args.target_utilization}")
    params = hw.CostParams(mode=args.mode, pue=args.pue, price_per_kwh_usd=args.kwh_price,
                           life_years=args.life_years)
    devices = hw.devices_frame(catalog, names, {"price_hour_usd": _pairs(args.price, "--price")})
    try:
        result = hw.plan_fleet(devices, capacity, classes, params, split=not args.no_split,
                               window_rent=args.window_rent)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"capacity per device (req/s); basis: {basis}:")
    print(capacity.to_string())
    print(f"\nmixed fleet:  {result.mixed.describe()}")
    if result.mixed.feasible:
        print(hw.fleet_table(result.mixed, result.costs).to_string(index=False))
    print(f"\ncheapest single type: {result.single_name or 'none'}: {result.single.describe()}")
    if math.isfinite(result.saving_percent):
        print(f"saving of the mix over the cheapest single type: {result.saving_percent:.1f} % (basis: {basis})")
    return 0 if result.mixed.feasible else 1


def _cmd_reference(args: argparse.Namespace) -> int:
    import sys

    from perfkit.analyze.hardware.reference import build_reference, write_reference

    frame, problems = build_reference(args.tree, args.round)
    for problem in problems:
        print(problem, file=sys.stderr)
    if frame.empty:
        raise UsageError(f"{args.tree}: no MLPerf performance run found")
    write_reference(frame, args.out)
    print(f"{args.out}: {len(frame)} runs ({len(problems)} skipped)")
    return 1 if problems else 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", metavar="CSV", default=None,
                        help="hardware catalog (default: $PERFKIT_HARDWARE_CSV or data/hardware.csv)")
    parser.add_argument("--json", action="store_true", help="print JSON records instead of a table")


def _cost_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("rent", "own"), default="rent",
                        help="rent: price_hour_usd; own: amortized purchase + energy (default rent)")
    parser.add_argument("--pue", type=float, default=1.4, help="facility PUE for --mode own (default 1.4)")
    parser.add_argument("--kwh-price", type=float, default=0.12, help="USD per kWh (default 0.12)")
    parser.add_argument("--life-years", type=float, default=4.0, help="amortization life (default 4)")
    parser.add_argument("--price", action="append", metavar="HW=USD_PER_H",
                        help="override a device's hourly price (repeatable)")


def _cost_command(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", name: str, summary: str,
                  description: str, *repeatable: tuple[str, str, str]) -> argparse.ArgumentParser:
    """A costing command (``tco``, ``fleet``): the shared flags, then its repeatable
    (flag, metavar, help) ones."""
    parser = sub.add_parser(name, help=summary, description=description,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(parser)
    _cost_flags(parser)
    for flag, metavar, text in repeatable:
        parser.add_argument(flag, action="append", metavar=metavar, help=text)
    return parser


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``hardware``, ``tco``, ``fleet`` and ``reference`` to `perfkit`."""
    from perfkit.names import LABEL_HARDWARE  # constants only: registering stays light

    p = sub.add_parser("hardware", help="list/validate the hardware catalog; compare and rate hardware",
                       description=_HARDWARE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    add_db_argument(p)
    p.add_argument("--validate", action="store_true", help="only check the catalog (exit 2 on a bad row)")
    p.add_argument("--compare", choices=("catalog", "runs", "mlperf"), help="compare and rate (see above)")
    p.add_argument("--precision", choices=("fp16", "int8"), default="fp16", help="datasheet rate for --compare catalog")
    p.add_argument("--slo-p99-ms", type=float, help="latency SLO for --compare runs")
    p.add_argument("--load-rps", type=float, help="fixed load at which P99 is compared (--compare runs)")
    p.add_argument("--conservative", action="store_true",
                   help="a run meets the SLO only if the upper end of its P99 95%% interval does")
    p.add_argument("--require-valid", action="store_true",
                   help="ignore runs the engine marked valid: false (too short, generator behind)")
    p.add_argument("--label-key", default=LABEL_HARDWARE,
                   help=f"run label key naming the hardware (default {LABEL_HARDWARE})")
    p.add_argument("--mlperf", metavar="PATH", action="append",
                   help="MLPerf summary_results.json or summary.csv (repeatable)")
    p.add_argument("--model", help="MLPerf model to compare, e.g. llama2-70b-99")
    p.add_argument("--price", action="append", metavar="HW=USD_PER_H", help="override an hourly price")
    p.set_defaults(func=_cmd_hardware)

    t = _cost_command(sub, "tco", "cost per query / 1k queries / 1M tokens, energy, FLOPS per W", _TCO_HELP,
                      ("--hardware", "NAME", "devices to cost (default: all)"),
                      ("--qps", "HW=RPS", "throughput within the SLO ('*=RPS' for all)"),
                      ("--tokens-per-s", "HW=TOK_S", "output tokens/s within the SLO"),
                      ("--power-w", "HW=W", "measured mean power"),
                      ("--purchase", "HW=USD", "override a purchase price"))
    add_db_argument(t)
    t.add_argument("--slo-p99-ms", type=float,
                   help="take qps_at_slo, tokens/s and power from runs labelled hardware=NAME in --db")
    t.add_argument("--label-key", default=LABEL_HARDWARE, help="run label key naming the hardware")
    t.add_argument("--utilization", type=float, default=1.0, help="fraction of paid hours serving (default 1.0)")
    t.add_argument("--power-fraction", type=float, default=1.0, help="mean power / TDP when not measured (default 1.0)")
    t.add_argument("--hours", type=float, default=24 * 30, help="period for totals (default 720 h)")
    t.set_defaults(func=_cmd_tco)

    f = _cost_command(sub, "fleet", "cheapest mixed fleet for real-time and offline classes (MILP)", _FLEET_HELP,
                      ("--realtime", "NAME=RPS@P99MS", "a real-time class"),
                      ("--offline", "NAME=ITEMS_PER_DAY@HOURS", "an offline class"),
                      ("--hardware", "NAME", "candidate devices (default: all)"),
                      ("--capacity", "HW:CLASS=RPS", "measured capacity per device"))
    f.add_argument("--reference", metavar="HW", help="scale capacities from this device by peak TFLOPS")
    f.add_argument("--ref-capacity", action="append", metavar="CLASS=RPS[@P99MS]",
                   help="the reference device's capacity (and P99 there) per class")
    f.add_argument("--precision", choices=("fp16", "int8"), default="fp16", help="rate used for scaling")
    f.add_argument("--use-estimates", action="store_true",
                   help="allow --reference: plan on capacities scaled by datasheet TFLOPS (an estimate, said so)")
    f.add_argument("--target-utilization", type=float, default=1.0,
                   help="usable fraction of each device's capacity (headroom), default 1.0")
    f.add_argument("--no-split", action="store_true", help="each device serves one class only")
    f.add_argument("--window-rent", action="store_true",
                   help="also allow devices rented only for the offline window (cost x window/24)")
    f.set_defaults(func=_cmd_fleet)

    r = sub.add_parser("reference", help="rebuild a reference table from published results",
                       description="Rebuild the MLPerf reference table (one row per performance run) "
                                   "from a results tree laid out as MLCommons publishes it.")
    rsub = r.add_subparsers(dest="source", required=True, metavar="SOURCE")
    m = rsub.add_parser("mlperf", help="an MLPerf Inference results tree",
                        description="Read every performance run of TREE (see `perfkit ingest mlperf-results`) "
                                    "and write one row per run to --out (CSV or Parquet by its extension).")
    m.add_argument("tree", metavar="TREE", help="results tree: <division>/<submitter>/results/...")
    m.add_argument("--out", required=True, metavar="PATH", help="output file, .csv or .parquet")
    m.add_argument("--round", default=None, help="round name (default: the vN.M in TREE's path)")
    m.set_defaults(func=_cmd_reference)
