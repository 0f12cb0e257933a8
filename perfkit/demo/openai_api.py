"""OpenAI-compatible completions over the demo char model (streaming and not).

``POST /v1/completions`` takes ``prompt`` (a string); ``POST /v1/chat/completions``
takes ``messages`` (``[{"role", "content"}]``) rendered as ``"role: content\\n"``
lines followed by ``"assistant:"``. Both take ``max_tokens`` (chat also
``max_completion_tokens``; default 16 for completions and 128 for chat, capped by
``--llm-max-tokens``), ``temperature`` (0..2, 0 = greedy, default 1), ``seed``,
``stream``, ``stream_options.include_usage``. ``top_p``, ``n=1``, ``user`` and
``model`` are accepted (``model`` is echoed); ``stop`` sequences and ``n > 1`` are
refused with 400, as the demo model has no end-of-text token: every answer runs to
``max_tokens`` (``finish_reason`` ``"length"``), which keeps output lengths exactly
controlled for load tests.

Streaming is server-sent events: ``data: {chunk}\\n\\n`` per token, a final chunk with
``finish_reason``, a usage chunk (empty ``choices``) when ``include_usage`` is set,
then ``data: [DONE]\\n\\n``. Token counts use the model's character tokenizer.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from perfkit.demo.batcher import QueueFull
from perfkit.demo.charlm import encode
from perfkit.demo.llm import LLMEngine, Sequence
from perfkit.demo.options import DemoOptions
from perfkit.demo.web_common import ARRIVAL, CLIENT_GONE, STATE, ApiError, read_json

DEFAULT_MAX_TOKENS = {"completion": 16, "chat": 128}


def _error(message: str, status: int = 400, kind: str = "bad_request") -> ApiError:
    return ApiError(status, message, kind)


def chat_prompt(messages: Any) -> str:
    """Render chat ``messages`` as the prompt text the char model continues."""
    if not isinstance(messages, list) or not messages:
        raise _error("'messages' must be a non-empty list of {role, content} objects")
    lines = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _error(f"messages[{i}] must be an object with a string 'role'")
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(part.get("text", "") for part in content
                              if isinstance(part, dict) and part.get("type") == "text")
        if not isinstance(content, str):
            raise _error(f"messages[{i}].content must be a string")
        lines.append(f"{message['role']}: {content}\n")
    return "".join(lines) + "assistant:"


def parse_request(data: dict[str, Any], kind: str, max_tokens_cap: int) -> dict[str, Any]:
    """Validate an OpenAI request body into prompt, max_tokens, temperature, seed, stream."""
    if kind == "chat":
        prompt = chat_prompt(data.get("messages"))
        max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
    else:
        given = data.get("prompt")
        if isinstance(given, list) and len(given) == 1:
            given = given[0]
        if not isinstance(given, str):
            raise _error("'prompt' must be a string")
        prompt = given
        max_tokens = data.get("max_tokens")
    if max_tokens is None:
        max_tokens = min(DEFAULT_MAX_TOKENS[kind], max_tokens_cap)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not \
            1 <= max_tokens <= max_tokens_cap:
        raise _error(f"max_tokens must be an integer within 1..{max_tokens_cap} "
                     "(--llm-max-tokens)")
    temperature = data.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not \
            0 <= temperature <= 2:
        raise _error("temperature must be a number within 0..2")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise _error("seed must be a non-negative integer")
    if data.get("n", 1) not in (1, None):
        raise _error("n > 1 is not supported by the demo model")
    if data.get("stop") not in (None, [], ""):
        raise _error("stop sequences are not supported by the demo model "
                     "(it has no end-of-text: answers run to max_tokens)")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise _error("stream must be true or false")
    options = data.get("stream_options") or {}
    if not isinstance(options, dict):
        raise _error("stream_options must be an object")
    return {"prompt": prompt, "max_tokens": max_tokens, "temperature": float(temperature),
            "seed": seed, "stream": stream,
            "include_usage": bool(options.get("include_usage", False))}


def _usage(sequence: Sequence) -> dict[str, int]:
    return {"prompt_tokens": sequence.prompt_tokens, "completion_tokens": sequence.generated,
            "total_tokens": sequence.prompt_tokens + sequence.generated}


def _chunk(kind: str, ident: str, created: int, model: str, text: str | None,
           finish_reason: str | None, first: bool = False) -> dict[str, Any]:
    if kind == "chat":
        delta: dict[str, Any] = {}
        if first:
            delta["role"] = "assistant"
        if text is not None:
            delta["content"] = text
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None,
                                  "finish_reason": finish_reason}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None,
                  "finish_reason": finish_reason}
        obj = "text_completion"
    return {"id": ident, "object": obj, "created": created, "model": model,
            "choices": [choice]}


async def _generate(request: web.Request, kind: str) -> web.StreamResponse:
    state = request.app[STATE]
    engine: LLMEngine = state["llm"]
    options: DemoOptions = state["options"]
    data = await read_json(request)
    params = parse_request(data, kind, options.llm_max_tokens)
    asked = data.get("model")
    model = asked if isinstance(asked, str) else options.llm_model_name
    sequence = engine.new_sequence(encode(params["prompt"]), params["max_tokens"],
                                   params["temperature"], params["seed"],
                                   request[ARRIVAL])
    try:
        engine.submit(sequence)
    except QueueFull as exc:
        raise _error(str(exc), 503, "overload") from None
    ident = ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex[:24]
    created = int(time.time())
    try:
        if not params["stream"]:
            pieces, finish_reason = [], None
            while finish_reason is None:
                token = await sequence.out.get()
                pieces.append(token.text)
                finish_reason = token.finish_reason
            text = "".join(pieces)
            choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish_reason}
            if kind == "chat":
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            return web.json_response({
                "id": ident, "object": "chat.completion" if kind == "chat" else "text_completion",
                "created": created, "model": model, "choices": [choice],
                "usage": _usage(sequence)})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)

        async def send(chunk: dict[str, Any]) -> None:
            if params["include_usage"]:
                chunk.setdefault("usage", None)
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        try:
            first = True
            if kind == "chat":  # the role comes first, as OpenAI streams it
                await send(_chunk(kind, ident, created, model, "", None, first=True))
                first = False
            finish_reason = None
            while finish_reason is None:
                token = await sequence.out.get()
                finish_reason = token.finish_reason
                await send(_chunk(kind, ident, created, model, token.text, None, first))
                first = False
            await send(_chunk(kind, ident, created, model, None if kind == "chat" else "",
                              finish_reason))
            if params["include_usage"]:
                await send({"id": ident, "object": "chat.completion.chunk" if kind == "chat"
                            else "text_completion", "created": created, "model": model,
                            "choices": [], "usage": _usage(sequence)})
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:  # the client went away mid-stream
            request[CLIENT_GONE] = True
        return response
    finally:
        if sequence.generated < sequence.max_tokens:
            sequence.cancelled = True  # client went away: free the batch slot


async def handle_completions(request: web.Request) -> web.StreamResponse:
    """``POST /v1/completions``."""
    return await _generate(request, "completion")


async def handle_chat_completions(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat/completions``."""
    return await _generate(request, "chat")


async def handle_models(request: web.Request) -> web.Response:
    """``GET /v1/models``: the one served model."""
    name = request.app[STATE]["options"].llm_model_name
    return web.json_response({"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "perfkit"}]})


def add_routes(app: web.Application, engine: LLMEngine, options: DemoOptions) -> None:
    app.router.add_post("/v1/completions", handle_completions)
    app.router.add_post("/v1/chat/completions", handle_chat_completions)
    app.router.add_get("/v1/models", handle_models)
