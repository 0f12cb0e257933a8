"""The run summary: the typed contract between the writer (``perfkit bench``) and its readers.

A run summary is one JSON object, stored in ``runs.summary`` and written by
``--summary-json``; :class:`RunSummary` spells out its fields and
``summary.schema.json`` (next to this module) is the same contract as a JSON
Schema. The writer calls :func:`validate` before storing; a reader calls
:func:`load` and gets a :class:`RunSummary` it may index without ``.get`` chains.

Versioning: ``format_version`` is 1. Fields are only ever added (new ones are
``NotRequired``, so older stored summaries still load); the version changes only
when an existing field changes meaning. SQL readers may rely on the JSON paths
(``$.requests``, ``$.latency_ms.p99``, ``$.latency_ci_ms.p99[0]``, ...).

All times are milliseconds unless the name says otherwise; percentiles use the
definition in ``percentile_definition`` (:data:`perfkit.quantiles.PERCENTILE_DEFINITION`);
the other definitions (TTFT, TPOT, ITL, connect time, never sent) are in
``definitions``. This module imports only the standard library (``fastjsonschema``
is imported when :func:`validate` runs), so the command line can use it cheaply.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Mapping, NotRequired, TypedDict, cast

FORMAT_VERSION = 1
SCHEMA_FILE = "summary.schema.json"


class Percentiles(TypedDict):
    """Exact percentiles of one quantity (``None`` when no value was observed)."""

    n: int
    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    p999: float | None
    max: float | None


class DefinedPercentiles(Percentiles):
    """Percentiles that carry the definition of what was measured."""

    definition: str


class LagStats(TypedDict):
    """Schedule lag (actual minus intended send) and the share of requests late."""

    n: int
    mean: float | None
    p50: float | None
    p99: float | None
    max: float | None
    late_fraction: float | None
    late_threshold_ms: float


class LatencyCI(TypedDict):
    """Distribution-free confidence intervals ``[low, high]`` of latency percentiles;
    an end the data cannot support is ``None``, and so is the whole interval with < 2 values."""

    confidence: float
    method: str
    p50: list[float | None] | None
    p99: list[float | None] | None
    p999: list[float | None] | None


class EarlyStopping(TypedDict):
    """MLPerf LoadGen's early-stopping estimate of a percentile."""

    percentile: float
    confidence: float
    n: int
    min_queries: int
    met: bool
    discarded: int | None
    bound: float | None


class SloEarlyStopping(TypedDict):
    """LoadGen's server test: does the run show the percentile within the SLO?"""

    percentile: float
    slo: float
    confidence: float
    n: int
    over_slo: int
    queries_needed: int
    met: bool


class Validity(TypedDict):
    """Why a run is, or is not, valid (``valid`` is the AND of the ``*_met`` flags)."""

    min_duration_s: float
    min_duration_met: bool
    min_queries: int
    min_queries_met: bool
    early_stopping: EarlyStopping
    early_stopping_met: bool
    early_stopping_p99_ms: float | None
    early_stopping_rule: str
    generator_kept_up: bool
    generator_rule: str
    status_completed: bool


class P99Slo(TypedDict):
    """``--slo-p99-ms``: the limit, what was observed, and LoadGen's test of it."""

    limit: float
    observed: float | None
    met: bool
    early_stopping: SloEarlyStopping


class Goodput(TypedDict):
    """Requests that succeeded and met every per-request bound in ``slo`` (``--slo``)."""

    slo: dict[str, float]
    good: int
    n: int
    fraction: float | None
    rps: float | None


class Slo(TypedDict, total=False):
    """The SLOs that were asked for, and how the run did against them."""

    p99_ms: P99Slo
    goodput: Goodput


class ErrorBody(TypedDict):
    """A body that failed answers gave (first 200 characters, redacted), and how often."""

    kind: str                        # error kind (http_4xx, http_5xx, ...)
    status: int | None               # HTTP status
    body: str
    count: int


class PhaseSummary(TypedDict):
    """``--warmup-s`` / ``--cooldown-s``: the phase windows in seconds from t0 and the rows stored
    in each phase (``warmup``, ``measure``, ``cooldown``); only ``measure`` rows are in the statistics."""

    warmup_s: float
    cooldown_s: float
    schedule_s: float
    measure_start_s: float
    measure_end_s: float
    requests: dict[str, int]
    definition: str


class RunSummary(TypedDict):
    """One benchmark run's summary (``format_version`` 1)."""

    format_version: int
    run_id: str
    status: str                      # completed | interrupted | failed
    status_reason: str | None
    label: str | None
    target: str | None               # redacted (perfkit.redact)
    protocol: str | None
    pattern: str | None
    workers: int | None
    scheduled: int | None            # sends in the schedule (None: closed loop)
    requests: int                    # rows stored (requests sent and answered or failed)
    ok: int
    errors: dict[str, int]           # error kind -> count
    intended_rate_rps: float | None
    achieved_rate_rps: float | None
    duration_s: float
    latency_ms: Percentiles          # from the intended send, successful requests
    service_ms: Percentiles          # from the actual send, successful requests
    percentile_definition: str
    latency_ci_ms: LatencyCI
    schedule_lag_ms: LagStats
    validity: Validity
    valid: bool
    never_sent: NotRequired[int | None]          # scheduled - requests (None: closed loop)
    connect_ms: NotRequired[Percentiles]         # connection set-up, requests that opened one
    definitions: NotRequired[dict[str, str]]     # what each timing means
    payload_classes: NotRequired[dict[str, int]]
    slo: NotRequired[Slo]
    goodput: NotRequired[Goodput]
    ttft_ms: NotRequired[Percentiles]            # openai: first token - actual send
    ttft_intended_ms: NotRequired[Percentiles]   # openai: first token - intended send
    tpot_ms: NotRequired[Percentiles]            # openai: TPOT excl. TTFT, (done - first token) / (tokens - 1)
    tpot_incl_ttft_ms: NotRequired[DefinedPercentiles]    # openai: TPOT incl. TTFT, (done - intended send) / tokens
    itl_ms: NotRequired[DefinedPercentiles]      # openai: ITL pooled over every gap of every request
    itl_request_mean_ms: NotRequired[DefinedPercentiles]  # openai: ITL, each request's mean gap
    itl_max_ms: NotRequired[DefinedPercentiles]  # openai: ITL, each request's largest gap
    e2e_ms: NotRequired[Percentiles]
    output_tokens: NotRequired[int]
    output_tokens_per_s: NotRequired[float | None]
    started_at: NotRequired[str | None]          # ISO 8601, UTC (set when the run is finalized)
    ended_at: NotRequired[str]
    signal: NotRequired[str]                     # SIGINT | SIGTERM when interrupted
    error_bodies: NotRequired[list[ErrorBody]]   # most common failed-answer bodies, <= 5 per kind
    phases: NotRequired[PhaseSummary]            # warm-up / cool-down windows (excluded from the statistics)


class SummaryError(ValueError):
    """A summary that does not follow the contract (or a newer ``format_version``)."""


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of :class:`RunSummary` (``perfkit/summary.schema.json``)."""
    text = resources.files("perfkit").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return cast(dict[str, Any], json.loads(text))


@lru_cache(maxsize=1)
def _validator() -> Callable[[Any], Any]:
    # fastjsonschema compiles the schema once into plain Python (milliseconds to import);
    # the jsonschema package takes seconds to import here (its format checkers).
    import fastjsonschema

    return cast(Callable[[Any], Any], fastjsonschema.compile(schema()))


def _check(obj: Any) -> None:
    import fastjsonschema

    if isinstance(obj, Mapping) and obj.get("format_version") not in (None, FORMAT_VERSION):
        raise SummaryError(f"summary format_version {obj.get('format_version')!r} is not {FORMAT_VERSION}; "
                           "upgrade perfkit to read it")
    try:
        _validator()(obj)
    except fastjsonschema.JsonSchemaValueException as e:
        where = (e.name or "data").replace("data.", "", 1).replace(".", "/")
        raise SummaryError(f"run summary invalid at {where}: {e.message}") from None


def validate(summary: Mapping[str, Any]) -> RunSummary:
    """Check a summary before it is stored: the schema, and no field the contract does not
    declare (a new field goes into :class:`RunSummary` and the schema first). Returns it typed."""
    _check(summary)
    unknown = sorted(set(summary) - set(RunSummary.__annotations__))
    if unknown:
        raise SummaryError(f"run summary has undeclared field(s) {', '.join(unknown)}")
    return cast(RunSummary, summary)


def load(obj: str | bytes | Mapping[str, Any]) -> RunSummary:
    """A stored summary (JSON text or an already decoded object), checked, for reading.

    Fields added by a later perfkit at the same ``format_version`` are let through.
    """
    data = json.loads(obj) if isinstance(obj, (str, bytes)) else obj
    _check(data)
    return cast(RunSummary, data)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f} ms"


def invalid_reasons(s: RunSummary) -> list[str]:
    """Why a run is not valid, one line per failed check of its ``validity`` block, with numbers
    (the console and the 01 report's conclusion say the same)."""
    v, out = s["validity"], []
    counted = v["early_stopping"]["n"]  # the successful requests the checks counted
    if not v["status_completed"]:
        out.append(f"the run did not complete (status {s['status']}: {s['status_reason']})")
    if not v["min_duration_met"]:
        what = "the measured window (warm-up and cool-down excluded)" if s.get("phases") else "run"
        out.append(f"{what} lasted {s['duration_s']:.1f} s < --min-duration-s {v['min_duration_s']:g}")
    if not v["min_queries_met"]:
        out.append(f"needs ≥ {v['min_queries']:,} successful requests (--min-queries); got {counted:,}")
    if not v["early_stopping_met"]:
        slo = s.get("slo", {}).get("p99_ms")
        if slo:
            ses = slo["early_stopping"]
            out.append(f"needs ≥ {ses['queries_needed']:,} successful requests to show P99 ≤ {ses['slo']:g} ms "
                       f"with {ses['over_slo']:,} over it (early stopping); got {ses['n']:,}")
        else:
            out.append(f"needs ≥ {v['early_stopping']['min_queries']:,} successful requests for P99 early "
                       f"stopping; got {counted:,}")
    if not v["generator_kept_up"]:
        lag = s["schedule_lag_ms"]
        out.append(f"the load generator fell behind: schedule-lag p99 {_ms(lag['p99'])}, "
                   f"{100 * (lag['late_fraction'] or 0):.1f}% of requests > {lag['late_threshold_ms']:g} ms late "
                   f"({v['generator_rule']})")
    return out


__all__ = ["FORMAT_VERSION", "DefinedPercentiles", "EarlyStopping", "ErrorBody", "Goodput", "LagStats", "LatencyCI",
           "P99Slo", "Percentiles", "PhaseSummary", "RunSummary", "Slo", "SloEarlyStopping", "SummaryError",
           "Validity", "invalid_reasons", "load", "schema", "validate"]
