"""One metric vocabulary: each inference server's metric names and units mapped onto canonical signals.

The root-cause rules read canonical signals (``perfkit.names.SIGNAL_*``: queue
depth, queue time, compute time, server time, requests in flight, executions
and inferences, KV-cache usage, preemptions, model loads, requests, errors,
TTFT/TPOT/ITL), never a server's own names. Each :class:`Term` here says which
exposed sample feeds which signal, as which part, in which unit:

* ``gauge``: a level read at each scrape (queue depth, requests in flight);
* ``total``: a counter whose increase is the signal (executions, errors);
* ``sum`` / ``count``: the two counters of a histogram or summary (queue time
  and the number of requests it covers), so a mean is ``Δsum / Δcount``. Where
  a server counts the time of several signals against one request counter
  (Triton), that counter is the ``count`` of each.

Values are turned into the canonical unit of their signal (:data:`UNITS`:
microseconds and milliseconds to seconds, percent to a ratio) by
:meth:`Term.canonical`. The server kind is detected from the names a scrape
holds (:func:`detect`) or given by the caller (``perfkit diagnose --server-kind``).

Every kind except KServe is tested on a real exposition written by that
server (``tests/data/server-metrics/``, origins in its README). KServe's model
server names come from its documentation and are untested on a recorded file;
KServe deployments of MLServer or Triton are matched as those servers.

Standard library only: ``perfkit diagnose --help`` lists :data:`SERVER_KINDS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from perfkit import names as n

GAUGE, TOTAL, SUM, COUNT = "gauge", "total", "sum", "count"

#: The canonical unit of each signal.
UNITS = {
    n.SIGNAL_QUEUE_DEPTH: "requests", n.SIGNAL_QUEUE_TIME: "seconds", n.SIGNAL_COMPUTE_TIME: "seconds",
    n.SIGNAL_SERVER_TIME: "seconds", n.SIGNAL_IN_FLIGHT: "requests", n.SIGNAL_EXECUTIONS: "executions",
    n.SIGNAL_INFERENCES: "inferences", n.SIGNAL_BATCH_ROWS: "rows", n.SIGNAL_PADDING_ROWS: "rows",
    n.SIGNAL_KV_CACHE_USAGE: "ratio", n.SIGNAL_PREEMPTIONS: "preemptions", n.SIGNAL_MODEL_LOADS: "loads",
    n.SIGNAL_MODEL_LOAD_TIME: "seconds", n.SIGNAL_REQUESTS: "requests", n.SIGNAL_ERRORS: "requests",
    n.SIGNAL_TTFT: "seconds", n.SIGNAL_TPOT: "seconds", n.SIGNAL_ITL: "seconds",
}
#: Signals that are levels (averaged over readings), the others are amounts (summed increases).
LEVELS = frozenset({n.SIGNAL_QUEUE_DEPTH, n.SIGNAL_IN_FLIGHT, n.SIGNAL_KV_CACHE_USAGE, n.SIGNAL_MODEL_LOAD_TIME})
# a server's unit -> factor to the canonical one
_SCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "percent": 0.01, "ratio": 1.0, "count": 1.0}

#: The demo server's endpoints that are not the workload (its scrape, health checks, config).
NON_WORKLOAD_ENDPOINTS = ("/metrics", "/health", "/demo/config", "unmatched")


@dataclass(frozen=True)
class Term:
    """One exposed sample name feeding one canonical signal."""

    metric: str                 # the sample name as exposed and stored (``vllm:num_requests_waiting``)
    signal: str                 # a ``perfkit.names.SIGNAL_*``
    part: str                   # gauge | total | sum | count
    unit: str = "count"         # the server's unit: s, ms, us, percent, ratio, count
    only: tuple[tuple[str, str], ...] = ()      # label pairs a series must carry to count
    exclude: tuple[tuple[str, str], ...] = ()   # label pairs that keep a series out
    offset: float = 0.0         # added to each canonical reading (a gauge that counts its own scrape: -1)

    @property
    def key(self) -> str:
        """The evidence column it feeds: the signal, with ``_sum``/``_count`` for a histogram's parts."""
        return f"{self.signal}_{self.part}" if self.part in (SUM, COUNT) else self.signal

    def accepts(self, labels: Mapping[str, str]) -> bool:
        """Does a series with these labels count for this term?"""
        return (all(labels.get(k) == v for k, v in self.only)
                and not any(labels.get(k) == v for k, v in self.exclude))

    def canonical(self, value: float) -> float:
        """A reading in the signal's canonical unit (a ``count`` keeps its value)."""
        scale = 1.0 if self.part == COUNT else _SCALE[self.unit]
        return value * scale + self.offset


def _hist(metric: str, signal: str, unit: str = "s", exclude: tuple[tuple[str, str], ...] = ()) -> tuple[Term, Term]:
    """The ``_sum`` and ``_count`` terms of a histogram or summary family."""
    return (Term(metric + "_sum", signal, SUM, unit, exclude=exclude),
            Term(metric + "_count", signal, COUNT, exclude=exclude))


_DEMO_OUT = tuple(("endpoint", e) for e in NON_WORKLOAD_ENDPOINTS)
_MLSERVER_INFER = (("method", "POST"),)
_TRITON_OK = "nv_inference_request_success"

#: Per server kind, its terms.
VOCABULARY: dict[str, tuple[Term, ...]] = {
    "demo": (
        Term(n.DEMO_BATCH_SIZE + "_sum", n.SIGNAL_INFERENCES, TOTAL, exclude=_DEMO_OUT),
        Term(n.DEMO_BATCH_SIZE + "_count", n.SIGNAL_EXECUTIONS, TOTAL, exclude=_DEMO_OUT),
        *_hist(n.DEMO_QUEUE_WAIT, n.SIGNAL_QUEUE_TIME, exclude=_DEMO_OUT),
        *_hist(n.DEMO_INFERENCE_DURATION, n.SIGNAL_COMPUTE_TIME, exclude=_DEMO_OUT),
        *_hist(n.DEMO_REQUEST_DURATION, n.SIGNAL_SERVER_TIME, exclude=_DEMO_OUT),
        Term(n.DEMO_BATCH_ROWS + "_total", n.SIGNAL_BATCH_ROWS, TOTAL, exclude=_DEMO_OUT),
        Term(n.DEMO_BATCH_PADDING_ROWS + "_total", n.SIGNAL_PADDING_ROWS, TOTAL, exclude=_DEMO_OUT),
        # the demo's in-flight gauge counts every endpoint, so the scrape reading it is one of them
        Term(n.DEMO_IN_FLIGHT, n.SIGNAL_IN_FLIGHT, GAUGE, offset=-1.0),
        Term(n.DEMO_QUEUE_DEPTH, n.SIGNAL_QUEUE_DEPTH, GAUGE),
        Term(n.DEMO_REQUESTS + "_total", n.SIGNAL_REQUESTS, TOTAL, exclude=_DEMO_OUT),
        Term(n.DEMO_ERRORS + "_total", n.SIGNAL_ERRORS, TOTAL),
        *_hist(n.DEMO_LLM_TTFT, n.SIGNAL_TTFT),
        *_hist(n.DEMO_LLM_TPOT, n.SIGNAL_TPOT),
    ),
    "triton": (  # cumulative microsecond counters, counted against successful requests
        Term("nv_inference_pending_request_count", n.SIGNAL_QUEUE_DEPTH, GAUGE),
        Term("nv_inference_queue_duration_us", n.SIGNAL_QUEUE_TIME, SUM, "us"),
        Term(_TRITON_OK, n.SIGNAL_QUEUE_TIME, COUNT),
        Term("nv_inference_compute_infer_duration_us", n.SIGNAL_COMPUTE_TIME, SUM, "us"),
        Term(_TRITON_OK, n.SIGNAL_COMPUTE_TIME, COUNT),
        Term("nv_inference_request_duration_us", n.SIGNAL_SERVER_TIME, SUM, "us"),
        Term(_TRITON_OK, n.SIGNAL_SERVER_TIME, COUNT),
        Term("nv_inference_count", n.SIGNAL_INFERENCES, TOTAL),
        Term("nv_inference_exec_count", n.SIGNAL_EXECUTIONS, TOTAL),
        Term(_TRITON_OK, n.SIGNAL_REQUESTS, TOTAL),
        Term("nv_inference_request_failure", n.SIGNAL_ERRORS, TOTAL),
    ),
    "vllm": (  # V0 and V1 names; the *_perc gauges hold a fraction (1 = full), not a percent
        Term("vllm:num_requests_waiting", n.SIGNAL_QUEUE_DEPTH, GAUGE),
        Term("vllm:num_requests_waiting", n.SIGNAL_IN_FLIGHT, GAUGE),
        Term("vllm:num_requests_running", n.SIGNAL_IN_FLIGHT, GAUGE),
        Term("vllm:gpu_cache_usage_perc", n.SIGNAL_KV_CACHE_USAGE, GAUGE, "ratio"),
        Term("vllm:kv_cache_usage_perc", n.SIGNAL_KV_CACHE_USAGE, GAUGE, "ratio"),
        Term("vllm:num_preemptions_total", n.SIGNAL_PREEMPTIONS, TOTAL),
        *_hist("vllm:request_queue_time_seconds", n.SIGNAL_QUEUE_TIME),  # V1
        *_hist("vllm:e2e_request_latency_seconds", n.SIGNAL_SERVER_TIME),
        *_hist("vllm:time_to_first_token_seconds", n.SIGNAL_TTFT),
        # vLLM observes its "time per output token" once per generated token (every inter-token gap,
        # pooled; renamed inter_token_latency_seconds in 0.11): ITL, not the per-request TPOT
        *_hist("vllm:time_per_output_token_seconds", n.SIGNAL_ITL),
        *_hist("vllm:inter_token_latency_seconds", n.SIGNAL_ITL),
        *_hist("vllm:request_time_per_output_token_seconds", n.SIGNAL_TPOT),  # one value per request
        Term("vllm:request_success_total", n.SIGNAL_REQUESTS, TOTAL),
    ),
    "tgi": (
        Term("tgi_queue_size", n.SIGNAL_QUEUE_DEPTH, GAUGE),
        Term("tgi_queue_size", n.SIGNAL_IN_FLIGHT, GAUGE),
        Term("tgi_batch_current_size", n.SIGNAL_IN_FLIGHT, GAUGE),
        *_hist("tgi_request_queue_duration", n.SIGNAL_QUEUE_TIME),
        *_hist("tgi_request_inference_duration", n.SIGNAL_COMPUTE_TIME),
        *_hist("tgi_request_duration", n.SIGNAL_SERVER_TIME),
        Term("tgi_batch_inference_count", n.SIGNAL_EXECUTIONS, TOTAL),  # forward passes (prefill, decode)
        Term("tgi_request_success", n.SIGNAL_REQUESTS, TOTAL),
        Term("tgi_request_failure", n.SIGNAL_ERRORS, TOTAL),
    ),
    "torchserve": (  # cumulative microsecond counters against the request counter
        Term("ts_queue_latency_microseconds", n.SIGNAL_QUEUE_TIME, SUM, "us"),
        Term("ts_inference_requests_total", n.SIGNAL_QUEUE_TIME, COUNT),
        Term("ts_inference_latency_microseconds", n.SIGNAL_SERVER_TIME, SUM, "us"),
        Term("ts_inference_requests_total", n.SIGNAL_SERVER_TIME, COUNT),
        Term("ts_inference_requests_total", n.SIGNAL_REQUESTS, TOTAL),
        Term("Requests4XX", n.SIGNAL_ERRORS, TOTAL),
        Term("Requests5XX", n.SIGNAL_ERRORS, TOTAL),
        Term("WorkerLoadTime", n.SIGNAL_MODEL_LOAD_TIME, GAUGE, "ms"),
    ),
    "sglang": (
        Term("sglang:num_queue_reqs", n.SIGNAL_QUEUE_DEPTH, GAUGE),
        Term("sglang:num_queue_reqs", n.SIGNAL_IN_FLIGHT, GAUGE),
        Term("sglang:num_running_reqs", n.SIGNAL_IN_FLIGHT, GAUGE),
        Term("sglang:token_usage", n.SIGNAL_KV_CACHE_USAGE, GAUGE, "ratio"),
        *_hist("sglang:queue_time_seconds", n.SIGNAL_QUEUE_TIME),
        *_hist("sglang:e2e_request_latency_seconds", n.SIGNAL_SERVER_TIME),
        *_hist("sglang:time_to_first_token_seconds", n.SIGNAL_TTFT),
        *_hist("sglang:inter_token_latency_seconds", n.SIGNAL_ITL),  # every inter-token gap, pooled
        Term("sglang:num_requests_total", n.SIGNAL_REQUESTS, TOTAL),
        Term("sglang:engine_load_weights_time", n.SIGNAL_MODEL_LOAD_TIME, GAUGE),
    ),
    "mlserver": (  # parallel_request_queue: a histogram of the worker queue's size, observed per request
        *_hist("parallel_request_queue", n.SIGNAL_QUEUE_DEPTH, "count"),
        Term("rest_server_requests_in_progress", n.SIGNAL_IN_FLIGHT, GAUGE, only=_MLSERVER_INFER),
        # measured around the model's predict in the main process: it includes the worker queue
        *_hist("model_infer_request_duration", n.SIGNAL_SERVER_TIME),
        Term("model_infer_request_success_total", n.SIGNAL_REQUESTS, TOTAL),
        Term("model_infer_request_failure_total", n.SIGNAL_ERRORS, TOTAL),
    ),
    "kserve": (  # KServe's Python ModelServer (0.21 recorded): per-stage latency histograms per model_name
        *_hist("request_predict_seconds", n.SIGNAL_COMPUTE_TIME),
    ),
}
#: The server kinds the vocabulary knows.
SERVER_KINDS = tuple(VOCABULARY)


def terms(kind: str) -> tuple[Term, ...]:
    """The terms of a server kind (ValueError for an unknown kind)."""
    if kind not in VOCABULARY:
        raise ValueError(f"unknown server kind {kind!r}; one of {', '.join(SERVER_KINDS)}")
    return VOCABULARY[kind]


def metric_names(kind: str) -> list[str]:
    """The distinct sample names a server kind's terms read."""
    return sorted({t.metric for t in terms(kind)})


def metrics_for(signal: str) -> list[str]:
    """Every server's sample names that feed ``signal``, for readers that take any server."""
    return sorted({t.metric for ts in VOCABULARY.values() for t in ts if t.signal == signal})


def detect(exposed: Iterable[str]) -> str | None:
    """The server kind whose names a set of sample names matches most (None: no known name, or a tie)."""
    present = set(exposed)
    hits = {kind: len(present.intersection(t.metric for t in ts)) for kind, ts in VOCABULARY.items()}
    best = max(hits.values())
    winners = [kind for kind, h in hits.items() if h == best]
    return winners[0] if best and len(winners) == 1 else None


def canonical_totals(records: Iterable[tuple[str, Mapping[str, str], float]], kind: str) -> dict[str, float]:
    """One exposition's readings as canonical columns: ``{term.key: summed canonical value}``.

    ``records`` are ``(name, labels, value)``; a gauge is its reading, a counter
    its value since the server started. Series that no term accepts are left out.
    """
    by_metric: dict[str, list[Term]] = {}
    for t in terms(kind):
        by_metric.setdefault(t.metric, []).append(t)
    out: dict[str, float] = {}
    for name, labels, value in records:
        for t in by_metric.get(name, ()):
            if t.accepts(labels):
                out[t.key] = out.get(t.key, 0.0) + t.canonical(value)
    return out
