"""The metric vocabulary on real expositions: each server's names and units read as canonical signals.

Each file in tests/data/server-metrics/ was written by the server it names
(origins in its README); it is parsed by perfkit's own Prometheus text parser.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from perfkit import names
from perfkit.analyze import vocabulary
from perfkit.ingest import promtext

DATA = Path(__file__).resolve().parents[1] / "data" / "server-metrics"


def _read(file: str) -> list[tuple[str, dict[str, str], float]]:
    expo = promtext.parse((DATA / file).read_bytes(), file)
    return [(name, labels, value) for name, labels, value, _ in expo.as_records()]


# file -> (kind, canonical columns expected with their values in canonical units)
CASES = {
    "triton_datadog_fixture.prom": ("triton", {
        # densenet_onnx: queue 145 us, compute 1,326,831 us, request 1,327,965 us, 3 requests in 3 executions
        "queue_time_sum": 145e-6, "compute_time_sum": 1.326831, "server_time_sum": 1.327965,
        "queue_time_count": 3, "inferences": 3, "executions": 3, "queue_depth": 0, "errors": 0}),
    "triton_openshift_ibmz.prom": ("triton", {
        "inferences": 0, "executions": 0, "queue_time_sum": 0, "compute_time_sum": 0, "queue_depth": 0}),
    "vllm_datadog_v0.5_opt125m.prom": ("vllm", {
        "queue_depth": 0, "in_flight": 0, "kv_cache_usage": 0, "preemptions": 0, "requests": 1,
        # one request of 7 tokens: 6 inter-token gaps (vLLM's "time per output token" counts each gap)
        "ttft_count": 1, "ttft_sum": 0.31326723098754883, "itl_count": 6, "server_time_count": 1}),
    "tgi_datadog_fixture_PARTIAL.prom": ("tgi", {
        # 1,509 decode + 16 prefill forward passes; the queue and request duration families are cut off
        "queue_depth": 0, "in_flight": 0, "executions": 1525, "requests": 109, "errors": 2,
        "compute_time_sum": 245.91743839099996, "compute_time_count": 109}),
    "torchserve_datadog_fixture.prom": ("torchserve", {
        # 5 models x 11 requests; microsecond counters; Requests4XX 59 + Requests5XX 60
        "queue_time_count": 55, "requests": 55, "errors": 119}),
    "sglang_datadog_fixture.prom": ("sglang", {
        "queue_depth": 0, "in_flight": 0, "kv_cache_usage": 0.25, "queue_time_count": 1, "queue_time_sum": 0,
        "server_time_sum": 0.07, "model_load_time": 1.4, "ttft_sum": 0.02, "requests": 1, "itl_count": 31}),
    "mlserver-1.7.1_after_load.prom": ("mlserver", {
        # the worker queue's size observed 8,414 times (mean ~728); 8,412 + 61 model calls; 61 + 61 failures
        "queue_depth_sum": 6.122308e6, "queue_depth_count": 8414, "in_flight": 0,
        "server_time_count": 8473, "requests": 8351, "errors": 122}),
    "kserve-0.21.0_python_modelserver.prom": ("kserve", {
        # 205 predict calls of a custom kserve.Model: predict is the model's own compute
        "compute_time_count": 205, "compute_time_sum": 0.0021136840032340842}),
}


@pytest.mark.parametrize("file", list(CASES))
def test_each_server_kind_is_detected_and_read_in_canonical_units(file):
    kind, expected = CASES[file]
    records = _read(file)
    assert vocabulary.detect(name for name, _, _ in records) == kind
    got = vocabulary.canonical_totals(records, kind)
    for key, value in expected.items():
        assert got.get(key) == pytest.approx(value, rel=1e-9), key
    assert set(got) <= {t.key for t in vocabulary.terms(kind)}


def test_units_become_seconds_and_ratios():
    triton = {t.metric: t for t in vocabulary.terms("triton") if t.part != vocabulary.COUNT}
    assert triton["nv_inference_queue_duration_us"].canonical(2_500_000) == pytest.approx(2.5)
    torchserve = {t.metric: t for t in vocabulary.terms("torchserve")}
    assert torchserve["WorkerLoadTime"].canonical(1500) == pytest.approx(1.5)
    assert vocabulary.UNITS[names.SIGNAL_QUEUE_TIME] == "seconds"
    assert vocabulary.UNITS[names.SIGNAL_KV_CACHE_USAGE] == "ratio"
    # TorchServe's per-model series end their label sets with "," and still count
    records = _read("torchserve_datadog_fixture.prom")
    per_model = [v for name, labels, v in records if name == "ts_queue_latency_microseconds"]
    assert len(per_model) == 5
    total = vocabulary.canonical_totals(records, "torchserve")["queue_time_sum"]
    assert total == pytest.approx(sum(per_model) * 1e-6)


def test_label_filters_keep_the_workload_only():
    # MLServer: the in-progress gauge of POST (inference), not of GET (model metadata, readiness)
    inflight = vocabulary.canonical_totals(
        [("rest_server_requests_in_progress", {"method": "POST"}, 3.0),
         ("rest_server_requests_in_progress", {"method": "GET"}, 1.0)], "mlserver")
    assert inflight == {"in_flight": 3.0}
    # the demo: its /metrics and /health requests are not the workload
    demo = vocabulary.canonical_totals(
        [(names.DEMO_REQUEST_DURATION + "_count", {"endpoint": "/metrics"}, 9.0),
         (names.DEMO_REQUEST_DURATION + "_count", {"endpoint": "/api/v1/infer"}, 4.0)], "demo")
    assert demo == {"server_time_count": 4.0}


def test_detection_needs_a_known_name_and_a_clear_winner():
    assert vocabulary.detect(["up", "process_cpu_seconds_total"]) is None
    assert vocabulary.detect([names.DEMO_QUEUE_DEPTH, names.DEMO_IN_FLIGHT]) == "demo"
    with pytest.raises(ValueError, match="unknown server kind"):
        vocabulary.terms("nope")
    assert "vllm:num_preemptions_total" in vocabulary.metrics_for(names.SIGNAL_PREEMPTIONS)
