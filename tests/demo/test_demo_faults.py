"""Fault knobs and metrics of the demo server: stall, error rate, load shedding, /metrics."""
from __future__ import annotations

import math
import time

import pytest

from demo_http import http, post_concurrently, scrape
from perfkit.demo.launch import DemoServer
from perfkit.demo.model import digits_sample

pytestmark = pytest.mark.slow


def test_metrics_count_what_was_sent():
    with DemoServer(batching="dynamic", max_batch=4, llm_hidden=256) as server:
        bodies = [{"input_data": digits_sample(2, seed=i)} for i in range(10)]
        assert all(s == 200 for s, _ in post_concurrently(server.url + "/api/v1/infer", bodies))
        for _ in range(3):
            assert http("POST", server.url + "/api/v1/infer", raw=b"{")[0] == 400
        http("POST", server.url + "/v1/completions", {"prompt": "hi", "max_tokens": 7})
        m = scrape(server.url)
    ep = ("endpoint", "/api/v1/infer")
    assert m[("perfkit_demo_requests_total", (ep, ("status", "200")))] == 10
    assert m[("perfkit_demo_requests_total", (ep, ("status", "400")))] == 3
    assert m[("perfkit_demo_errors_total", (ep, ("kind", "bad_request")))] == 3
    assert m[("perfkit_demo_request_duration_seconds_count", (ep, ("status", "200")))] == 10
    assert m[("perfkit_demo_batch_rows_total", ())] == 20
    assert m[("perfkit_demo_batch_padding_rows_total", ())] == 0
    batches = m[("perfkit_demo_batch_size_count", ())]
    assert m[("perfkit_demo_batch_size_sum", ())] == 10 and 3 <= batches <= 10
    assert m[("perfkit_demo_batch_size_bucket", (("le", "4.0"),))] == batches
    assert m[("perfkit_demo_inference_duration_seconds_count", ())] == batches
    assert m[("perfkit_demo_queue_wait_seconds_count", ())] == 10
    assert m[("perfkit_demo_queue_depth", ())] == 0
    assert m[("perfkit_demo_in_flight_requests", ())] == 1  # the scrape itself
    assert m[("perfkit_demo_llm_tokens_generated_total", ())] == 7
    assert m[("perfkit_demo_llm_prompt_tokens_total", ())] == 2
    assert m[("perfkit_demo_llm_time_to_first_token_seconds_count", ())] == 1
    assert m[("perfkit_demo_llm_running_sequences", ())] == 0


def test_stall_delays_a_request_until_the_stall_ends():
    every_s, for_s = 3.0, 1.2
    with DemoServer(stall=f"{every_s}:{for_s}", llm_hidden=256) as server:
        config = server.config()
        epoch = config["stall_epoch_unix_s"]
        assert config["options"]["stall"] == {"every_s": every_s, "for_s": for_s}
        body = {"input_data": digits_sample(1)}
        k = math.floor((time.time() - epoch) / every_s) + 1  # the next stall
        stall_start = epoch + k * every_s
        if stall_start - time.time() < 0.5:
            stall_start += every_s
        time.sleep(max(0.0, stall_start - 0.6 - time.time()))
        started = time.time()  # before the stall: answered at once
        assert http("POST", server.url + "/api/v1/infer", body)[0] == 200
        assert time.time() - started < 0.4
        time.sleep(max(0.0, stall_start + 0.4 - time.time()))
        started = time.time()  # 0.4 s into the stall: waits for the remaining ~0.8 s
        status, reply = http("POST", server.url + "/api/v1/infer", body)
        waited = time.time() - started
        assert status == 200
        expected = stall_start + for_s - started
        assert expected - 0.05 <= waited <= expected + 0.5
        m = scrape(server.url)
        assert m[("perfkit_demo_stalls_total", ())] >= 1


def test_error_rate_is_binomial_and_answers_json():
    p, n = 0.25, 240
    with DemoServer(error_rate=p, seed=3, llm_hidden=256) as server:
        results = post_concurrently(server.url + "/api/v1/infer",
                                    [{"input_data": [1.0] * 64}] * n)
        failed = [body for status, body in results if status == 500]
        assert all(status in (200, 500) for status, _ in results)
        sd = math.sqrt(n * p * (1 - p))
        assert abs(len(failed) - n * p) < 4.5 * sd
        assert "injected fault" in failed[0]["error"]
        assert http("GET", server.url + "/health") == (200, {"status": "ok"})  # never injected
        m = scrape(server.url)
        assert m[("perfkit_demo_errors_total", (("endpoint", "/api/v1/infer"),
                                                 ("kind", "injected")))] == len(failed)


def test_full_queue_sheds_with_503():
    # fixed batching holds requests for up to 1.5 s: the 4th to 8th find the queue full
    with DemoServer(batching="fixed", max_batch=16, fixed_wait_ms=1500, max_queue=3,
                    llm_hidden=256) as server:
        results = post_concurrently(server.url + "/api/v1/infer",
                                    [{"input_data": [1.0] * 64}] * 8)
        statuses = sorted(status for status, _ in results)
        assert statuses == [200] * 3 + [503] * 5
        assert {body["batch_size"] for status, body in results if status == 200} == {3}
        shed = next(body for status, body in results if status == 503)
        assert "queue full" in shed["error"]
        m = scrape(server.url)
        assert m[("perfkit_demo_errors_total", (("endpoint", "/api/v1/infer"),
                                                 ("kind", "overload")))] == 5
