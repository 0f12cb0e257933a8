"""MLPerf Inference LoadGen logs -> a run row (tool=mlperf) plus its results as series.

Reads ``mlperf_log_summary.txt`` (``Key : value`` lines) and/or
``mlperf_log_detail.txt`` (``:::MLLOG {json}`` lines; the detail log wins where
both say the same thing). Files in one directory are one run. Latencies are
nanoseconds in the logs and milliseconds in perfkit. The pattern recorded
follows the LoadGen scenario: Server issues queries as a Poisson process
(``poisson``), SingleStream/MultiStream wait for each answer (``closed``),
Offline sends everything at once (``scenario``).
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

from perfkit.errors import InputError
from perfkit.ingest.frames import Telemetry, from_rows, labels_json

NAMES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
PATTERNS = {"Server": "poisson", "Offline": "scenario", "SingleStream": "closed",
            "MultiStream": "closed", "ConstantStream": "constant"}
_SUMMARY_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")
_PCT_SUMMARY = re.compile(r"^(\d+(?:\.\d+)?) percentile latency \(ns\)$")
_PCT_DETAIL = re.compile(r"^result_(\d+(?:\.\d+)?)_percentile_latency_ns$")


def group(paths: list[str]) -> list[list[str]]:
    """One run per directory."""
    groups: dict[str, list[str]] = {}
    for p in paths:
        if Path(p).name not in NAMES:
            raise InputError(p, None, "not an MLPerf LoadGen log (expected mlperf_log_summary.txt "
                                      "or mlperf_log_detail.txt)")
        groups.setdefault(str(Path(p).parent), []).append(p)
    return [sorted(v) for v in groups.values()]


def parse_summary(text: str, path: str) -> dict[str, str]:
    """``Key : value`` pairs of mlperf_log_summary.txt (first occurrence wins)."""
    out: dict[str, str] = {}
    if "MLPerf Results Summary" not in text:
        raise InputError(path, 1, "not an MLPerf results summary (no 'MLPerf Results Summary' banner)")
    for line in text.splitlines():
        m = _SUMMARY_LINE.match(line)
        if m and not line.lstrip().startswith("*"):
            out.setdefault(m.group(1), m.group(2))
    return out


def parse_detail(text: str, path: str) -> dict[str, object]:
    """``key -> value`` of the ``:::MLLOG`` records (the last of a key wins)."""
    out: dict[str, object] = {}
    seen = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.startswith(":::MLLOG"):
            if line.strip():
                raise InputError(path, lineno, "expected a ':::MLLOG {json}' record")
            continue
        try:
            rec = json.loads(line[len(":::MLLOG"):])
            out[rec["key"]] = rec.get("value")
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(path, lineno, f"bad MLLOG record: {exc}") from None
        seen = True
    if not seen:
        raise InputError(path, 1, "no ':::MLLOG' records")
    return out


def _float(value: object) -> float | None:
    """A log value as a number (numbers and numeric text), None for anything else."""
    if not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


_FIGURES = (  # summary key -> figure; "ns" keys are read in ms
    ("Samples per second", "samples_per_s"), ("Completed samples per second", "completed_samples_per_s"),
    ("Scheduled samples per second", "scheduled_samples_per_s"), ("Tokens per second", "tokens_per_s"),
    ("Tokens per second (inferred)", "tokens_per_s_inferred"),
    ("Completed tokens per second", "completed_tokens_per_s"),
    ("Completed tokens per second (inferred)", "completed_tokens_per_s_inferred"),
    ("target_qps", "target_qps"), ("QPS w/o loadgen overhead", "qps_without_overhead"),
    ("90th percentile latency (ns)", "p90_latency_ms"), ("99th percentile latency (ns)", "p99_latency_ms"),
    ("target_latency (ns)", "latency_bound_ms"), ("ttft_latency (ns)", "ttft_bound_ms"),
    ("tpot_latency (ns)", "tpot_bound_ms"), ("samples_per_query", "samples_per_query"),
)
_TOKEN_PCT = re.compile(r"^(\d+(?:\.\d+)?) percentile (first token latency|time to output token) \(ns\)$")
_EARLY = re.compile(r"^\s*\*\s*Early stopping (\d+)th percentile estimate\s*:\s*(\S+)", re.MULTILINE)


def summary_figures(text: str, summary: dict[str, str]) -> dict[str, object]:
    """Every figure of a LoadGen summary that :func:`read` leaves out, by name.

    ``text`` is the summary file, ``summary`` its :func:`parse_summary`. Rates are
    per second, latencies in ms; ``ttft_ms``/``tpot_ms`` map a percentile key
    (``p99``) to ms. Conventions: LoadGen's "first token latency" runs from the query's
    issue to the first token, and its "time to output token" is per sample
    (latency - first token latency) / (tokens - 1), i.e. TPOT excluding TTFT, the
    convention of perfkit bench's ``tpot_ms`` (not ``tpot_incl_ttft_ms``); ``early_stopping_ms`` maps ``p90``/``p99`` to LoadGen's
    early-stopping estimate (the first one printed: the latency one).
    """
    out: dict[str, object] = {}
    for key, name in _FIGURES:
        value = _float(summary.get(key))
        if value is not None:
            out[name] = value / 1e6 if key.endswith("(ns)") else value
    tokens: dict[str, dict[str, float]] = {"first token latency": {}, "time to output token": {}}
    for key, text_value in summary.items():
        m, v = _TOKEN_PCT.match(key), _float(text_value)
        if m and v is not None:
            tokens[m.group(2)][f"p{float(m.group(1)):g}".replace(".", "")] = v / 1e6
    if tokens["first token latency"]:
        out["ttft_ms"] = tokens["first token latency"]
        out["tpot_ms"] = tokens["time to output token"]
    early: dict[str, float] = {}
    for pct, value in _EARLY.findall(text):
        number = _float(value)
        if number is not None:
            early.setdefault(f"p{pct}", number / 1e6)
    if early:
        out["early_stopping_ms"] = early
    return out


def read(files: dict[str, str]) -> Telemetry:
    """One LoadGen run from its summary and/or detail log."""
    summary_path = next((p for p in files if p.endswith(NAMES[0])), None)
    detail_path = next((p for p in files if p.endswith(NAMES[1])), None)
    s = parse_summary(files[summary_path], summary_path) if summary_path else {}
    d = parse_detail(files[detail_path], detail_path) if detail_path else {}
    return read_parsed(files, s, d)


def read_parsed(files: dict[str, str], s: dict[str, str], d: dict[str, object]) -> Telemetry:
    """:func:`read` once the summary (``s``) and detail log (``d``) are parsed."""
    summary_path = next((p for p in files if p.endswith(NAMES[0])), None)
    detail_path = next((p for p in files if p.endswith(NAMES[1])), None)
    first = str(summary_path or detail_path)  # group() gives at least one of them
    scenario = d.get("effective_scenario") or s.get("Scenario")
    if not scenario:
        raise InputError(first, None, "no scenario found")
    mode = d.get("effective_test_mode") or s.get("Mode")
    validity = d.get("result_validity") or s.get("Result is")
    qps = (_float(d.get("result_completed_samples_per_sec"))
           or _float(d.get("result_samples_per_second"))
           or _float(s.get("Completed samples per second")) or _float(s.get("Samples per second")))
    latency_ns: dict[str, float] = {}
    for key, value in d.items():
        m, v = _PCT_DETAIL.match(key), _float(value)
        if m and v is not None:
            latency_ns[m.group(1)] = v
    for key, text in s.items():
        m, v = _PCT_SUMMARY.match(key), _float(text)
        if m and v is not None:
            latency_ns.setdefault(m.group(1), v)

    def pick(dkey: str, skey: str) -> float | None:
        return _float(d.get(dkey)) if d.get(dkey) is not None else _float(s.get(skey))

    lat_min, lat_max, lat_mean = (pick("result_min_latency_ns", "Min latency (ns)"),
                                  pick("result_max_latency_ns", "Max latency (ns)"),
                                  pick("result_mean_latency_ns", "Mean latency (ns)"))
    started = None
    stamp = d.get("test_datetime")
    if isinstance(stamp, str):
        started = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    duration_s = (_float(d.get("generated_query_duration")) or 0.0) / 1e9 or None
    t0 = started.timestamp() if started else datetime.now(timezone.utc).timestamp()
    t_end = t0 + (duration_s or 0.0)

    def ms(ns: float | None) -> float | None:
        return None if ns is None else ns / 1e6

    labels = labels_json({"scenario": str(scenario), "mode": str(mode)})
    long: list[tuple] = []
    if qps is not None:
        long.append(("mlperf_samples_per_s", labels, "samples/s", "gauge", t_end, qps))
    for q, ns in sorted(latency_ns.items(), key=lambda kv: float(kv[0])):
        long.append(("mlperf_latency_ms", labels_json({"scenario": str(scenario), "mode": str(mode),
                                                       "quantile": repr(float(q) / 100)}),
                     "ms", "summary", t_end, ns / 1e6))
    for name, value in (("mlperf_latency_min_ms", ms(lat_min)), ("mlperf_latency_max_ms", ms(lat_max)),
                        ("mlperf_latency_mean_ms", ms(lat_mean))):
        if value is not None:
            long.append((name, labels, "ms", "gauge", t_end, value))
    queries = _float(d.get("result_query_count")) or _float(d.get("generated_query_count"))
    if queries is not None:
        long.append(("mlperf_queries_total", labels, "count", "counter", t_end, queries))
    if validity:
        long.append(("mlperf_valid", labels, "bool", "gauge", t_end,
                     1.0 if str(validity).upper() == "VALID" else 0.0))
    tel = from_rows(long)

    def flag(dkey: str, skey: str) -> bool | None:
        if dkey in d:
            return bool(d[dkey])
        if skey in s:
            return s[skey].strip().lower() == "yes"
        return None

    validity_flags = {
        "min_duration_met": flag("result_min_duration_met", "Min duration satisfied"),
        "min_queries_met": flag("result_min_queries_met", "Min queries satisfied"),
        "perf_constraints_met": flag("result_perf_constraints_met", "Performance constraints satisfied"),
        "early_stopping_met": flag("early_stopping_met", "Early stopping satisfied"),
    }
    pct = {f"p{float(q):g}".replace(".", ""): ms(v) for q, v in latency_ns.items()}
    content = "".join(files[p] for p in sorted(files))
    digest = hashlib.sha256(content.encode()).hexdigest()[:6]
    stamp = started.strftime("%Y%m%dT%H%M%SZ") if started else "undated"
    target_qps = _float(d.get("effective_target_qps")) if scenario == "Server" else None
    tel.run = {
        "run_id": f"mlperf-{scenario}-{stamp}-{digest}",
        "label": f"mlperf {scenario} {d.get('sut_name') or s.get('SUT name') or ''}".strip(),
        "labels": {"scenario": scenario},
        "target": None,
        "protocol": "mlperf",
        "pattern": PATTERNS.get(str(scenario), "scenario"),
        "scenario": {"mlperf_scenario": scenario, "mode": mode,
                     "settings": {k[len("effective_"):]: v for k, v in d.items()
                                  if k.startswith("effective_")},
                     "files": sorted(Path(p).name for p in files)},
        "started_at": started,
        "ended_at": datetime.fromtimestamp(t_end, timezone.utc) if started else None,
        "t0_unix_s": t0 if started else None,
        "status": "completed",
        "status_reason": str(d.get("result_invalid_reason") or "") or None,
        "intended_rate_rps": target_qps,
        "duration_s": duration_s,
        "tool": "mlperf",
        "tool_version": str(d["loadgen_version"]) if d.get("loadgen_version") else None,
        "machine": {"note": "imported from MLPerf LoadGen logs; the SUT's machine is unknown"},
        "summary": {
            "format_version": 1, "status": "completed",
            "requests": int(queries) if queries is not None else None,
            "achieved_rate_rps": qps, "intended_rate_rps": target_qps,
            "duration_s": duration_s,
            "latency_ms": {"mean": ms(lat_mean), **pct, "max": ms(lat_max)},
            "valid": str(validity).upper() == "VALID" if validity else None,
            "validity": validity_flags,
            "mlperf_scenario": scenario,
            **(summary_figures(files[summary_path], s) if summary_path else {}),
        },
    }
    figures = tel.run["summary"]
    tokens = figures.get("completed_tokens_per_s") or figures.get("tokens_per_s")
    if tokens is not None:
        figures["output_tokens_per_s"] = tokens
    return tel
