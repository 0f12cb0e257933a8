"""OpenAI endpoint modes: completions and chat bodies, streaming and not, options applied to
every body (file payloads included) or refused, and what the console says."""
from __future__ import annotations

import json

import pytest

from perfkit.bench.payload import PayloadSpec, apply_overrides, generate, is_completions_path
from perfkit.errors import UsageError


@pytest.mark.parametrize("path,completions", [("/v1/completions", True), ("/v1/chat/completions", False),
                                              ("/v1/completions/?x=1", True), ("/api/v1/infer", False)])
def test_the_body_follows_the_path(path, completions):
    assert is_completions_path(path) is completions
    [body], _ = generate(PayloadSpec("fixed", mean=3), 1, "openai", "m", 8, path=path)
    obj = json.loads(body)
    assert ("prompt" in obj, "messages" in obj) == (completions, not completions)
    assert obj["max_tokens"] == 8 and obj["stream"] is True and obj["stream_options"] == {"include_usage": True}


def test_overrides_set_what_was_given_and_leave_the_rest():
    body = {"model": "m", "messages": [], "max_completion_tokens": 64, "stream": True,
            "stream_options": {"include_usage": False, "x": 1}, "temperature": 0.7}
    assert apply_overrides(body) == body
    plain = apply_overrides(body, max_tokens=8, top_p=0.5, stream=False)
    assert plain == {"model": "m", "messages": [], "max_completion_tokens": 8, "stream": False,
                     "temperature": 0.7, "top_p": 0.5}
    streamed = apply_overrides({"prompt": "x"}, max_tokens=3, temperature=0.0, stream=True)
    assert streamed == {"prompt": "x", "max_tokens": 3, "temperature": 0.0, "stream": True,
                        "stream_options": {"include_usage": True}}
    assert apply_overrides(body, stream=True)["stream_options"] == {"include_usage": True, "x": 1}
    assert body["max_completion_tokens"] == 64  # the input is not changed
    with pytest.raises(UsageError, match="JSON-object bodies"):
        apply_overrides([1, 2], max_tokens=3)


def test_overrides_apply_to_file_payloads(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"model": "m", "prompt": "a", "max_tokens": 64}\n'
                 '{"model": "m", "messages": [], "max_tokens": 64, "max_completion_tokens": 64}\n')
    bodies, classes = generate(PayloadSpec(str(f)), 2, "openai", overrides={"max_tokens": 8, "temperature": 0.0})
    assert [json.loads(b) for b in bodies] == [
        {"model": "m", "prompt": "a", "max_tokens": 8, "temperature": 0.0},
        {"model": "m", "messages": [], "max_tokens": 8, "max_completion_tokens": 8, "temperature": 0.0}]
    assert classes == ["file", "file"]
    assert generate(PayloadSpec(str(f)), 2, "openai")[0][0] == b'{"model":"m","prompt":"a","max_tokens":64}'


def _args(*argv: str):
    import argparse

    from perfkit.bench.cli import add_load_arguments, config_from_args

    p = argparse.ArgumentParser()
    add_load_arguments(p)
    return config_from_args(p.parse_args(["--rate", "1", "--duration", "1", *argv]))


def test_flags_reach_the_config_or_are_refused_with_one_line():
    cfg = _args("--target", "http://h:1/v1/completions", "--protocol", "openai", "--no-stream", "--max-tokens",
                "8", "--temperature", "0", "--top-p", "0.9")
    cfg.validate()
    assert cfg.body_overrides() == {"max_tokens": 8, "temperature": 0.0, "top_p": 0.9, "stream": False}
    assert not cfg.streams and _args("--protocol", "openai").streams and not _args().streams
    assert _args("--protocol", "openai").body_overrides() == {}
    with pytest.raises(UsageError, match=r"^--max-tokens, --stream/--no-stream apply to --protocol openai only"):
        _args("--target", "http://h:1", "--max-tokens", "8", "--stream").validate()
    for bad, match in ((["--max-tokens", "0"], "--max-tokens must be >= 1"),
                       (["--temperature", "-1"], "--temperature must be"), (["--top-p", "0"], "--top-p must be")):
        with pytest.raises(UsageError, match=match):
            _args("--target", "http://h:1", "--protocol", "openai", *bad).validate()


def test_help_text_defaults_are_the_real_defaults():
    import re

    from perfkit.bench.cli import _field_flags
    from perfkit.bench.config import DEFAULT_MODELS, BenchConfig
    from perfkit.bench.payload import DEFAULT_MAX_TOKENS
    from perfkit.bench.schedule import Stage

    objects = {"config": BenchConfig(), "stage": Stage(), "payload": PayloadSpec()}
    checked = 0
    for flag, where, name, kw in _field_flags():
        m = re.search(r"default ([^\s:;)]+)\)", kw["help"])
        if m and where in objects:
            value = getattr(objects[where], name)
            assert m.group(1) == (f"{value:g}" if isinstance(value, float) else str(value)), flag
            checked += 1
        if flag == "--model":
            assert all(f"{model} for {protocol}" in kw["help"] for protocol, model in DEFAULT_MODELS.items())
        if flag == "--max-tokens":
            assert f"default {DEFAULT_MAX_TOKENS} in drawn bodies" in kw["help"]
    assert checked >= 20


def test_invalid_runs_say_why_with_numbers():
    import io

    from test_summary_contract import built

    from perfkit.bench.cli import print_summary

    s = built("http-json", n=80)  # 80 requests over 1.79 s, with --slo-p99-ms 50
    assert not s["valid"]
    out = io.StringIO()
    print_summary(s, out)
    lines = [ln.strip() for ln in out.getvalue().splitlines() if ln.strip().startswith("valid:")]
    assert lines[:2] == ["valid: no — run lasted 1.8 s < --min-duration-s 10",
                         "valid: no — needs ≥ 100 successful requests (--min-queries); got 80"]
    es = s["slo"]["p99_ms"]["early_stopping"]
    assert lines[2:] == [f"valid: no — needs ≥ {es['queries_needed']} successful requests to show P99 ≤ 50 ms "
                         f"with {es['over_slo']} over it (early stopping); got 80"]
    del s["slo"]
    out = io.StringIO()
    print_summary(s, out)
    assert "valid: no — needs ≥ 662 successful requests for P99 early stopping; got 80\n" in out.getvalue()
    s = built("http-json", n=800)
    s["validity"].update(min_duration_met=True, early_stopping_met=True)
    s["valid"] = True
    out = io.StringIO()
    print_summary(s, out)
    assert out.getvalue().endswith("  valid: yes\n")


def test_no_gpu_is_a_debug_line_not_a_console_warning(monkeypatch, capfd, caplog):
    import logging

    from perfkit.ingest import live, nvml

    def unavailable() -> None:
        raise nvml.NvmlUnavailable("libnvidia-ml.so.1 not found")

    monkeypatch.setattr(nvml, "NvmlReader", unavailable)
    with caplog.at_level(logging.DEBUG, logger="perfkit.ingest.live"):
        assert live._NvmlCollector("nvml", 1.0, lambda frame: None).open() is False
    assert capfd.readouterr().err == ""
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "NVML unavailable (libnvidia-ml.so.1 not found)" in caplog.records[0].getMessage()


def _run(demo, tmp_path, path: str, **kw):
    from perfkit.bench import BenchConfig, Stage, run

    db = tmp_path / f"{len(list(tmp_path.iterdir()))}.duckdb"
    kw.setdefault("payload", PayloadSpec("fixed", mean=4))
    kw.setdefault("collect", False)
    s = run(BenchConfig(target=demo.url + path, protocol="openai", db=str(db), quiet=True,
                        stages=[Stage("constant", duration_s=2.0, rate_rps=3.0)], **kw))
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT output_tokens, prompt_tokens, ttft_ms, error_body FROM requests "
                           "ORDER BY seq").fetchall()
    return s, rows


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_every_endpoint_mode_runs_clean_against_the_demo(demo, tmp_path, capfd, path, stream):
    s, rows = _run(demo, tmp_path, path, max_tokens=5, stream=stream, collect=True)  # telemetry on: no GPU here
    assert s["errors"] == {} and s["ok"] == s["requests"] == 6
    assert [r[0] for r in rows] == [5] * 6 and s["output_tokens"] == 30  # usage tokens, streamed or not
    assert all(r[1] > 0 for r in rows)
    # per-token timings come from a stream only: a plain answer has none
    assert all((r[2] is not None) is stream for r in rows)
    assert s["ttft_ms"]["n"] == (6 if stream else 0)
    assert "NVML" not in capfd.readouterr().err  # a CPU-only machine: no warning (debug log only)


@pytest.mark.slow
def test_max_tokens_applies_to_a_file_payload_and_plain_answers_to_a_stream_request_count(demo, tmp_path):
    # The file asks for 64 tokens and no stream; --max-tokens 3 wins, and the client (streaming by
    # default) reads the demo's plain JSON answers (Content-Type: application/json) as answers.
    f = tmp_path / "bodies.jsonl"
    f.write_text('{"model": "m", "prompt": "hello", "max_tokens": 64, "stream": false}\n'
                 '{"model": "m", "prompt": "bye", "max_tokens": 64}\n')
    s, rows = _run(demo, tmp_path, "/v1/completions", max_tokens=3, payload=PayloadSpec(str(f)))
    assert s["errors"] == {} and s["ok"] == 6
    assert [r[0] for r in rows] == [3] * 6
    s, rows = _run(demo, tmp_path, "/v1/completions", payload=PayloadSpec(str(f)))
    assert s["errors"] == {} and [r[0] for r in rows] == [64] * 6


@pytest.mark.slow
def test_a_refused_max_tokens_shows_the_servers_message(demo, tmp_path, capsys):
    from perfkit.bench.cli import report

    s, rows = _run(demo, tmp_path, "/v1/chat/completions", max_tokens=1000)
    assert s["errors"] == {"http_4xx": 6} and s["status"] == "failed"
    assert {r[3] for r in rows} == {'{"error": "max_tokens must be an integer within 1..512 (--llm-max-tokens)"}'}
    assert report(s) == 1
    out = capsys.readouterr().out
    assert "    http_4xx 400 ×6: max_tokens must be an integer within 1..512 (--llm-max-tokens)\n" in out
    assert "valid: no — the run did not complete (status failed: no request succeeded" in out


def _http(status: str, ctype: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


_ANSWER = b'{"choices": [{"text": "abc"}], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}'
_SSE = b'data: {"choices": [{"text": "a"}]}\n\ndata: {"choices": [{"text": "b"}]}\n\n'


@pytest.mark.parametrize("stream,answers,responses,outcomes", [
    # a stream request answered with plain JSON (the server ignored stream), then a real stream on
    # the same keep-alive connection, then a stream that never says [DONE]
    (True, False, [_http("200 OK", "application/json", _ANSWER),
                   _http("200 OK", "text/event-stream", _SSE + b"data: [DONE]\n\n"),
                   _http("200 OK", "text/event-stream", _SSE)],
     [("ok", 3, 5, 0), ("ok", -1, -1, 2), ("truncated_stream", -1, -1, 2)]),
    # --no-stream: plain answers are read; one that is not an OpenAI answer is a bad response
    (False, True, [_http("200 OK", "application/json", _ANSWER), _http("200 OK", "application/json", b"[1]"),
                   _http("400 Bad Request", "application/json", b'{"error": "no"}')],
     [("ok", 3, 5, 0), ("bad_response", -1, -1, 0), ("http_4xx", -1, -1, 0)]),
    # other protocols: a 200 is a success, its body never read
    (False, False, [_http("200 OK", "application/json", b"not json")], [("ok", -1, -1, 0)]),
])
def test_the_client_reads_streams_and_plain_answers(stream, answers, responses, outcomes):
    import asyncio

    from perfkit.bench.client import ERRORS, Pool, Req

    class Transport:
        def write(self, data: bytes) -> None:
            pass

    done: list[Req] = []

    async def main() -> None:
        pool = Pool("h", 1, [b"GET / HTTP/1.1\r\n\r\n"], timeout_s=1.0, on_done=done.append, stream=stream,
                    answers=answers)
        conn = pool._proto(pool)
        conn.connection_made(Transport())  # type: ignore[arg-type]
        for k, raw in enumerate(responses):
            req = Req(k, 0, 0, 0)
            pool.n_inflight += 1
            conn.send(req)
            conn.data_received(raw)
            assert req.answer is None  # a kept answer is dropped once read

    asyncio.run(main())
    assert [(ERRORS[r.err] or "ok", r.prompt_tokens, r.usage_out, r.tokens) for r in done] == outcomes
