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
