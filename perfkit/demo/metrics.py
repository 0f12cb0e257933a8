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
    """All collectors of one server, registered in their own registry."""

    def __init__(self, max_batch: int, llm_max_batch: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("perfkit_demo_requests", "Requests answered.",
                                ["endpoint", "status"], registry=r)
        self.errors = Counter("perfkit_demo_errors", "Error responses by kind.",
                              ["endpoint", "kind"], registry=r)
        self.request_duration = Histogram(
            "perfkit_demo_request_duration_seconds", "Arrival to response, seconds.",
            ["endpoint", "status"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.in_flight = Gauge("perfkit_demo_in_flight_requests",
                               "Requests being served now.", registry=r)
        self.stalls = Counter("perfkit_demo_stalls", "Injected stalls begun.", registry=r)
        self.stall_seconds = Counter("perfkit_demo_stall_seconds",
                                     "Injected stall time, seconds.", registry=r)
        self.queue_depth = Gauge("perfkit_demo_queue_depth",
                                 "Requests waiting for a batch.", registry=r)
        self.queue_wait = Histogram("perfkit_demo_queue_wait_seconds",
                                    "Enqueue to batch start, seconds.",
                                    buckets=LATENCY_BUCKETS_S, registry=r)
        self.batch_size = Histogram("perfkit_demo_batch_size", "Requests per model batch.",
                                    buckets=power_of_two_buckets(max_batch), registry=r)
        self.batch_rows = Counter("perfkit_demo_batch_rows",
                                  "Real input rows computed.", registry=r)
        self.batch_padding_rows = Counter("perfkit_demo_batch_padding_rows",
                                          "Padding rows computed (wasted).", registry=r)
        self.inference_duration = Histogram("perfkit_demo_inference_duration_seconds",
                                            "One model call, seconds.",
                                            buckets=COMPUTE_BUCKETS_S, registry=r)
        self.llm_prompt_tokens = Counter("perfkit_demo_llm_prompt_tokens",
                                         "Prompt tokens received.", registry=r)
        self.llm_tokens = Counter("perfkit_demo_llm_tokens_generated",
                                  "Output tokens generated.", registry=r)
        self.llm_running = Gauge("perfkit_demo_llm_running_sequences",
                                 "Sequences in the decode batch.", registry=r)
        self.llm_waiting = Gauge("perfkit_demo_llm_waiting_sequences",
                                 "Sequences waiting to join a decode batch.", registry=r)
        self.llm_ttft = Histogram("perfkit_demo_llm_time_to_first_token_seconds",
                                  "Arrival to first output token, seconds.",
                                  buckets=LATENCY_BUCKETS_S, registry=r)
        self.llm_tpot = Histogram("perfkit_demo_llm_time_per_output_token_seconds",
                                  "Mean time per output token after the first, seconds.",
                                  buckets=COMPUTE_BUCKETS_S + (2.5,), registry=r)
        self.llm_step = Histogram("perfkit_demo_llm_step_duration_seconds",
                                  "One batched decode step, seconds.",
                                  buckets=COMPUTE_BUCKETS_S, registry=r)
        self.llm_step_batch = Histogram("perfkit_demo_llm_step_batch_size",
                                        "Sequences per decode step.",
                                        buckets=power_of_two_buckets(llm_max_batch), registry=r)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
