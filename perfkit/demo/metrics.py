"""Prometheus metrics of the demo server, in a dedicated CollectorRegistry.

Every name starts with ``perfkit_demo_``; times are seconds (Prometheus base unit).

Serving (all endpoints):
  ``perfkit_demo_requests_total{endpoint,status}``            requests answered (status
      ``499``: the client closed a stream before its end, as nginx logs it)
  ``perfkit_demo_errors_total{endpoint,kind}``                 errors by kind: ``injected``
      (``--error-rate``), ``overload`` (``--max-queue`` 503), ``bad_request`` (400),
      ``not_found`` (an unknown KServe model name), ``unauthorized`` (401, without the
      ``--require-token-env`` token), ``internal`` (an unexpected exception)
  ``perfkit_demo_request_duration_seconds{endpoint,status}``   histogram, arrival to
      response (includes stalls and queue wait)
  ``perfkit_demo_in_flight_requests``                          gauge
  ``perfkit_demo_stalls_total`` / ``perfkit_demo_stall_seconds_total``  stalls begun and
      their configured length (``--stall``)

Batched classifier (``/api/v1/infer`` and KServe v2):
  ``perfkit_demo_queue_depth``                   gauge, requests waiting for a batch
  ``perfkit_demo_queue_wait_seconds``            histogram, enqueue to batch start
  ``perfkit_demo_batch_size``                    histogram of requests per batch
      (buckets 1, 2, 4, ... up to ``--max-batch``)
  ``perfkit_demo_batch_rows_total``              real rows computed
  ``perfkit_demo_batch_padding_rows_total``      padding rows computed for nothing
      (fixed batching pads to ``--max-batch``); batch efficiency =
      rows / (rows + padding_rows)
  ``perfkit_demo_inference_duration_seconds``    histogram of one onnxruntime call

LLM (``/v1/completions``, ``/v1/chat/completions``):
  ``perfkit_demo_llm_prompt_tokens_total`` / ``perfkit_demo_llm_tokens_generated_total``
  ``perfkit_demo_llm_running_sequences`` / ``perfkit_demo_llm_waiting_sequences`` gauges
  ``perfkit_demo_llm_time_to_first_token_seconds``   histogram, arrival to first token
  ``perfkit_demo_llm_time_per_output_token_seconds`` histogram, per sequence after the
      first token: (finish - first token) / (tokens - 1)
  ``perfkit_demo_llm_step_duration_seconds``  histogram of one batched decode step
  ``perfkit_demo_llm_step_batch_size``        histogram of sequences per decode step
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from perfkit import names as N

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
                     0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0)
COMPUTE_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                     0.1, 0.25, 0.5, 1.0)


def power_of_two_buckets(maximum: int) -> tuple[float, ...]:
    """1, 2, 4, ... up to and including ``maximum`` (which need not be a power of two)."""
    buckets: list[float] = []
    value = 1
    while value < maximum:
        buckets.append(float(value))
        value *= 2
    buckets.append(float(maximum))
    return tuple(buckets)


class DemoMetrics:
    """All collectors of one server, registered in their own registry (names: :mod:`perfkit.names`)."""

    def __init__(self, max_batch: int, llm_max_batch: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        counter, gauge, histogram = self._counter, self._gauge, self._histogram
        served = ("endpoint", "status")
        latency, compute = LATENCY_BUCKETS_S, COMPUTE_BUCKETS_S
        # serving
        self.requests = counter(N.DEMO_REQUESTS, "Requests answered.", served)
        self.errors = counter(N.DEMO_ERRORS, "Error responses by kind.", ("endpoint", "kind"))
        self.request_duration = histogram(N.DEMO_REQUEST_DURATION,
                                          "Arrival to response, seconds.", latency, served)
        self.in_flight = gauge(N.DEMO_IN_FLIGHT, "Requests being served now.")
        self.stalls = counter(N.DEMO_STALLS, "Injected stalls begun.")
        self.stall_seconds = counter(N.DEMO_STALL_SECONDS, "Injected stall time, seconds.")
        # batched classifier
        self.queue_depth = gauge(N.DEMO_QUEUE_DEPTH, "Requests waiting for a batch.")
        self.queue_wait = histogram(N.DEMO_QUEUE_WAIT, "Enqueue to batch start, seconds.", latency)
        self.batch_size = histogram(N.DEMO_BATCH_SIZE, "Requests per model batch.",
                                    power_of_two_buckets(max_batch))
        self.batch_rows = counter(N.DEMO_BATCH_ROWS, "Real input rows computed.")
        self.batch_padding_rows = counter(N.DEMO_BATCH_PADDING_ROWS,
                                          "Padding rows computed (wasted).")
        self.inference_duration = histogram(N.DEMO_INFERENCE_DURATION,
                                            "One model call, seconds.", compute)
        # LLM
        self.llm_prompt_tokens = counter(N.DEMO_LLM_PROMPT_TOKENS, "Prompt tokens received.")
        self.llm_tokens = counter(N.DEMO_LLM_TOKENS_GENERATED, "Output tokens generated.")
        self.llm_running = gauge(N.DEMO_LLM_RUNNING, "Sequences in the decode batch.")
        self.llm_waiting = gauge(N.DEMO_LLM_WAITING, "Sequences waiting to join a decode batch.")
        self.llm_ttft = histogram(N.DEMO_LLM_TTFT, "Arrival to first output token, seconds.",
                                  latency)
        self.llm_tpot = histogram(N.DEMO_LLM_TPOT,
                                  "Mean time per output token after the first, seconds.",
                                  compute + (2.5,))
        self.llm_step = histogram(N.DEMO_LLM_STEP_DURATION, "One batched decode step, seconds.",
                                  compute)
        self.llm_step_batch = histogram(N.DEMO_LLM_STEP_BATCH_SIZE, "Sequences per decode step.",
                                        power_of_two_buckets(llm_max_batch))

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def _gauge(self, name: str, doc: str) -> Gauge:
        return Gauge(name, doc, registry=self.registry)

    def _histogram(self, name: str, doc: str, buckets: tuple[float, ...],
                   labels: tuple[str, ...] = ()) -> Histogram:
        return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
