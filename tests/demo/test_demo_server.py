"""The demo server, started for real with DemoServer: classifier endpoints, batching, CLI."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from demo_http import http, post_concurrently
from perfkit.demo.launch import DemoServer, DemoServerError, free_port, option_flags
from perfkit.demo.model import digits_sample

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dynamic_server():
    with DemoServer(batching="dynamic", max_batch=8, batch_timeout_ms=20,
                    llm_hidden=256) as server:
        yield server


def test_infer_single_request(dynamic_server):
    rows = digits_sample(3, seed=1)
    status, body = http("POST", dynamic_server.url + "/api/v1/infer",
                        {"input_data": rows, "model_id": "production_v2.1"})
    assert status == 200, body
    assert body["model_id"] == "production_v2.1"
    assert len(body["predictions"]) == 3 and body["rows"] == 3
    assert all(0 <= p <= 9 for p in body["predictions"])
    assert body["batch_size"] == 1 and body["padding_rows"] == 0
    assert set(body["timings_ms"]) == {"queue_wait_ms", "inference_ms", "server_ms"}


def test_infer_predicts_the_real_digits(dynamic_server):
    from sklearn.datasets import load_digits

    digits = load_digits()
    status, body = http("POST", dynamic_server.url + "/api/v1/infer",
                        {"input_data": digits.data[:200].tolist()})
    assert status == 200, body
    accuracy = sum(int(p == t) for p, t in zip(body["predictions"], digits.target[:200])) / 200
    assert accuracy > 0.95  # trained on these: a real model fits them


def test_flat_input_is_chopped_into_rows(dynamic_server):
    status, body = http("POST", dynamic_server.url + "/api/v1/infer",
                        {"input_data": [1.0] * 130})
    assert status == 200, body
    assert body["rows"] == 3  # 64 + 64 + 2 (zero-padded)


@pytest.mark.parametrize("raw, needle", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"model_id": "x"}', "missing field 'input_data'"),
    (b'{"input_data": []}', "non-empty list"),
    (b'{"input_data": [1, "a"]}', "input_data[1] is str"),
    (b'{"input_data": [[1, 2], [3, null]]}', "input_data[1][1] is NoneType"),
    (b'{"input_data": [' + b",".join([b"1"] * 65) + b"]]", "not valid JSON"),
])
def test_malformed_input_is_400_with_a_reason(dynamic_server, raw, needle):
    status, body = http("POST", dynamic_server.url + "/api/v1/infer", raw=raw)
    assert status == 400
    assert needle in body["error"]


def test_dynamic_batching_batches_concurrent_requests(dynamic_server):
    bodies = [{"input_data": digits_sample(1, seed=i)} for i in range(32)]
    results = post_concurrently(dynamic_server.url + "/api/v1/infer", bodies)
    assert all(status == 200 for status, _ in results)
    sizes = [body["batch_size"] for _, body in results]
    assert max(sizes) > 1 and max(sizes) <= 8
    assert all(body["padding_rows"] == 0 for _, body in results)


def test_fixed_batching_fills_to_max_and_pads():
    with DemoServer(batching="fixed", max_batch=4, batch_timeout_ms=5,
                    fixed_wait_ms=400, llm_hidden=256) as server:
        url = server.url + "/api/v1/infer"
        bodies = [{"input_data": digits_sample(1 + i % 2, seed=i)} for i in range(8)]
        results = post_concurrently(url, bodies)
        assert all(status == 200 for status, _ in results)
        assert [body["batch_size"] for _, body in results] == [4] * 8
        # slots padded to the longest request (2 rows): 4 slots x 2 rows - 6 real rows
        assert {body["padding_rows"] for _, body in results} == {2}
        # alone, a request waits for the safety timeout and runs padded to max_batch
        status, body = http("POST", url, {"input_data": digits_sample(1)})
        assert status == 200
        assert body["batch_size"] == 1 and body["padding_rows"] == 3
        assert body["timings_ms"]["queue_wait_ms"] >= 350


def test_no_batching_runs_requests_alone():
    with DemoServer(batching="none", llm_hidden=256) as server:
        bodies = [{"input_data": digits_sample(1, seed=i)} for i in range(12)]
        results = post_concurrently(server.url + "/api/v1/infer", bodies)
        assert [body["batch_size"] for _, body in results] == [1] * 12


def test_option_flags():
    assert option_flags({"max_batch": 8, "allow_remote": True, "stall": None,
                         "model_hidden": (64, 32), "x": False}) == [
        "--max-batch", "8", "--allow-remote", "--model-hidden", "64,32"]
    assert option_flags({"stall": (10, 0.5)}) == ["--stall", "10:0.5"]
    assert option_flags({"stall": "10:0.5"}) == ["--stall", "10:0.5"]


def test_launcher_reports_a_failed_start_with_stderr():
    with pytest.raises(DemoServerError, match="--max-batch 0: must be at least 1"):
        DemoServer(max_batch=0).start()


def test_launcher_stops_the_process_quickly():
    server = DemoServer(llm_hidden=256).start()
    port = server.port
    assert server.stop() == 0  # clean exit on SIGTERM
    with socket.socket() as sock:  # nobody listens there any more (TIME_WAIT is fine)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


@pytest.mark.parametrize("flags, needle", [
    (["--stall", "5"], "--stall '5': expected EVERY_S:FOR_S"),
    (["--stall", "1:2"], "FOR_S must be shorter"),
    (["--error-rate", "-0.1"], "--error-rate -0.1"),
    (["--error-rate", "1.5"], "--error-rate 1.5"),
    (["--host", "0.0.0.0"], "not a loopback address"),
    (["--batching", "greedy"], "invalid choice"),
    (["--max-batch", "x"], "invalid int value"),
    (["--model-hidden", "0,3"], "layer widths must be positive"),
])
def test_bad_flags_exit_2_with_one_line(flags, needle, capsys):
    from perfkit.cli import main

    try:
        code = main(["serve-demo", "--port", str(free_port()), *flags])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and needle in err


def test_bad_flag_in_a_real_process_exits_2():
    proc = subprocess.run([sys.executable, "-m", "perfkit", "serve-demo", "--stall", "5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == ("perfkit serve-demo: --stall '5': expected EVERY_S:FOR_S, "
                           "e.g. 10:0.5\n")


def test_kserve_v2_round_trip_matches_the_native_endpoint(dynamic_server):
    url = dynamic_server.url
    assert http("GET", url + "/v2/health/ready")[0] == 200
    assert http("GET", url + "/v2/health/live")[0] == 200
    status, meta = http("GET", url + "/v2/models/digits")
    assert status == 200 and meta["name"] == "digits"
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 64]}]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"}
    assert http("GET", url + "/v2/models/digits/ready")[1]["ready"] is True
    rows = digits_sample(2, seed=9)
    request = {"id": "r-1", "inputs": [{"name": "X", "shape": [2, 64], "datatype": "FP32",
                                        "data": [v for row in rows for v in row]}]}
    status, body = http("POST", url + "/v2/models/digits/infer", request)
    assert status == 200, body
    assert body["model_name"] == "digits" and body["id"] == "r-1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"]["shape"] == [2] and outputs["label"]["datatype"] == "INT64"
    assert outputs["probabilities"]["shape"] == [2, 10]
    assert len(outputs["probabilities"]["data"]) == 20
    assert sum(outputs["probabilities"]["data"][:10]) == pytest.approx(1.0, abs=1e-4)
    native = http("POST", url + "/api/v1/infer", {"input_data": rows})[1]
    assert outputs["label"]["data"] == native["predictions"]
    # nested row-major data and a requested output subset
    request["inputs"][0]["data"] = rows
    request["outputs"] = [{"name": "label"}]
    status, body = http("POST", url + "/v2/models/digits/infer", request)
    assert status == 200 and [o["name"] for o in body["outputs"]] == ["label"]
    status, body = http("POST", url + "/v2/models/digits/versions/1/infer", request)
    assert status == 200 and body["outputs"][0]["data"] == native["predictions"]


@pytest.mark.parametrize("path, request_body, status, needle", [
    ("/v2/models/resnet/infer", {"inputs": []}, 404, "not found"),
    ("/v2/models/digits/infer", {"inputs": []}, 400, "exactly one input"),
    ("/v2/models/digits/infer", {"inputs": [{"name": "X", "shape": [1, 63], "datatype": "FP32",
                                            "data": [0] * 63}]}, 400, "expected [N, 64]"),
    ("/v2/models/digits/infer", {"inputs": [{"name": "X", "shape": [2, 64], "datatype": "FP32",
                                            "data": [0] * 64}]}, 400, "needs 128"),
    ("/v2/models/digits/infer", {"inputs": [{"name": "X", "shape": [1, 64], "datatype": "BYTES",
                                            "data": ["a"]}]}, 400, "not numeric"),
])
def test_kserve_v2_errors(dynamic_server, path, request_body, status, needle):
    got, body = http("POST", dynamic_server.url + path, request_body)
    assert got == status and needle in body["error"]


def test_health_and_unknown_routes(dynamic_server):
    assert http("GET", dynamic_server.url + "/health") == (200, {"status": "ok"})
    status, body = http("GET", dynamic_server.url + "/nope")
    assert status == 404 and "error" in body


def test_launcher_retries_when_its_port_is_taken():
    server = DemoServer(llm_hidden=256)
    taken = server.port
    with socket.socket() as blocker:  # someone else binds the port first
        blocker.bind(("127.0.0.1", taken))
        blocker.listen()
        with server:
            assert server.port != taken
            assert http("GET", server.url + "/health")[0] == 200
    with socket.socket() as blocker, pytest.raises(DemoServerError, match="already in use"):
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        DemoServer(port=blocker.getsockname()[1], llm_hidden=256).start()  # explicit: no retry
