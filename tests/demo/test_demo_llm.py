"""The OpenAI-compatible LLM endpoints of the demo server, against a real DemoServer."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from demo_http import http, scrape, stream, stream_events
from perfkit.demo.charlm import encode
from perfkit.demo.launch import DemoServer

pytestmark = pytest.mark.slow
HIDDEN = 256  # a small model: quick to build; the batching logic is the same


@pytest.fixture(scope="module")
def llm_server():
    with DemoServer(llm_hidden=HIDDEN, llm_max_batch=4, llm_max_tokens=2000) as server:
        yield server


def test_models_list(llm_server):
    status, body = http("GET", llm_server.url + "/v1/models")
    assert status == 200 and body["data"][0]["id"] == "perfkit-char-lm"


def test_completion_non_streaming_is_seeded(llm_server):
    request = {"prompt": "The iris data set", "max_tokens": 30, "temperature": 0.8, "seed": 5}
    status, first = http("POST", llm_server.url + "/v1/completions", request)
    assert status == 200, first
    _, second = http("POST", llm_server.url + "/v1/completions", request)
    text = first["choices"][0]["text"]
    assert len(text) == 30 and text == second["choices"][0]["text"]
    assert first["choices"][0]["finish_reason"] == "length"
    assert first["usage"] == {"prompt_tokens": 17, "completion_tokens": 30, "total_tokens": 47}


def test_greedy_decoding_is_deterministic_without_seed(llm_server):
    request = {"prompt": "Number of Instances", "max_tokens": 20, "temperature": 0}
    texts = {http("POST", llm_server.url + "/v1/completions", request)[1]["choices"][0]["text"]
             for _ in range(2)}
    assert len(texts) == 1


def test_chat_streaming_chunks_done_and_usage(llm_server):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    result = stream(llm_server.url + "/v1/chat/completions",
                    {"messages": messages, "max_tokens": 25, "stream": True,
                     "stream_options": {"include_usage": True}})
    assert result["status"] == 200 and result["done"]
    chunks = result["chunks"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    content = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert len(content) == 25 and all(len(piece) == 1 for piece in content)
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    prompt = "system: be brief\nuser: hello\nassistant:"
    assert usage == {"prompt_tokens": len(encode(prompt)), "completion_tokens": len(content),
                     "total_tokens": len(encode(prompt)) + len(content)}
    assert all(c["usage"] is None for c in chunks[:-1])


def test_completion_streaming_without_usage(llm_server):
    result = stream(llm_server.url + "/v1/completions",
                    {"prompt": "abc", "max_tokens": 10, "stream": True})
    assert result["done"]
    texts = [c["choices"][0]["text"] for c in result["chunks"]]
    assert len("".join(texts)) == 10 and result["chunks"][-1]["choices"][0]["finish_reason"]
    assert all("usage" not in c for c in result["chunks"])


@pytest.mark.parametrize("body, needle", [
    ({"messages": []}, "non-empty list"),
    ({"messages": [{"role": "user", "content": 3}]}, "content must be a string"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5000}, "1..2000"),
])
def test_bad_chat_requests_are_400(llm_server, body, needle):
    status, reply = http("POST", llm_server.url + "/v1/chat/completions", body)
    assert status == 400 and needle in reply["error"]


async def _long_then_short(url: str) -> tuple[dict, dict]:
    async with aiohttp.ClientSession() as session:
        generating = asyncio.Event()
        long_task = asyncio.create_task(stream_events(
            session, url, {"prompt": "a", "max_tokens": 1500, "stream": True}, generating))
        await asyncio.wait_for(generating.wait(), 30)  # the long one is generating now
        short = await stream_events(session, url, {"prompt": "b", "max_tokens": 5,
                                                   "stream": True})
        return await long_task, short


def _short_wait_fraction(batching: str) -> float:
    """Short request's latency as a fraction of what remained of the long one when sent."""
    with DemoServer(llm_hidden=HIDDEN, llm_batching=batching, llm_max_batch=4,
                    llm_max_tokens=2000) as server:
        long, short = asyncio.run(_long_then_short(server.url + "/v1/completions"))
    assert long["done"] and short["done"]
    assert short["sent"] > long["sent"] + long["times"][0]  # sent mid-generation
    remaining = long["sent"] + long["times"][-1] - short["sent"]
    assert remaining > 0.05
    return short["times"][-1] / remaining


def test_continuous_batching_lets_a_new_request_finish_first():
    # it joins the running batch at the next step: done after ~5 steps of ~1,500
    assert _short_wait_fraction("continuous") < 0.5


def test_static_batching_makes_a_new_request_wait_for_the_batch():
    # it waits until the running batch (the long request) has finished
    assert _short_wait_fraction("static") > 0.9


def test_a_client_leaving_mid_stream_frees_its_slot(llm_server):
    async def leave_early() -> None:
        async with aiohttp.ClientSession() as session:
            response = await session.post(llm_server.url + "/v1/completions",
                                          json={"prompt": "a", "max_tokens": 2000,
                                                "stream": True})
            lines = 0
            async for _ in response.content:
                lines += 1
                if lines > 6:
                    break
            response.close()

    asyncio.run(leave_early())
    for _ in range(50):  # the server notices at its next write
        m = scrape(llm_server.url)
        gone = m.get(("perfkit_demo_requests_total",
                      (("endpoint", "/v1/completions"), ("status", "499"))), 0)
        if gone == 1 and m[("perfkit_demo_llm_running_sequences", ())] == 0:
            break
        time.sleep(0.1)
    assert gone == 1
    assert m[("perfkit_demo_llm_running_sequences", ())] == 0
    assert "Traceback" not in llm_server.stderr_tail()
