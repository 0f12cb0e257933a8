"""A small real HTTP server for the engine's edge cases the demo server does not cover.

Run as ``python fake_target.py PORT [CERT.pem KEY.pem]`` (with a certificate: HTTPS). Endpoints:
  POST /v1/chat/completions  SSE stream: first token after 60 ms, then 10 tokens 15 ms apart,
                             a usage chunk, [DONE]
  POST /truncate             SSE stream that drops the connection after 2 tokens
  POST /status/{code}        answers that HTTP status
  POST /refuse/{code}        answers that status with a 5,000-character JSON error that quotes the
                             request's Authorization header (a server that leaks what it was sent)
  POST /slow                 answers after 3 s
  POST /die                  answers, but the whole server exits after 40 requests
  POST /echo-headers         answers 200 with the request headers it saw (JSON)
  POST /auth/{sha256}        200 when sha256(the request's Authorization header) is {sha256},
                             else 401 (the path proves a credential was sent without holding it)
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys

from aiohttp import web

COUNT = {"die": 0}


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await asyncio.sleep(0.06)
    for i in range(10):
        if i:
            await asyncio.sleep(0.015)
        chunk = {"choices": [{"index": 0, "delta": {"content": f"t{i} "}}]}
        await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    usage = {"choices": [], "usage": {"prompt_tokens": len(body["messages"][0]["content"].split()),
                                      "completion_tokens": 10}}
    await resp.write(b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def truncate(request: web.Request) -> web.StreamResponse:
    await request.read()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for i in range(2):
        await resp.write(b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n')
    await asyncio.sleep(0.01)
    request.transport.close()
    return resp


async def status(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"status": "as asked"}, status=int(request.match_info["code"]))


async def refuse(request: web.Request) -> web.Response:
    await request.read()
    said = f"Model nope not found (Authorization: {request.headers.get('Authorization', '')})"
    return web.json_response({"error": said, "pad": "x" * 5000}, status=int(request.match_info["code"]))


async def slow(request: web.Request) -> web.Response:
    await request.read()
    await asyncio.sleep(3)
    return web.json_response({})


async def die(request: web.Request) -> web.Response:
    await request.read()
    COUNT["die"] += 1
    if COUNT["die"] >= 40:
        os._exit(0)
    return web.json_response({})


async def echo_headers(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response(dict(request.headers))


async def auth(request: web.Request) -> web.Response:
    await request.read()
    sent = hashlib.sha256(request.headers.get("Authorization", "").encode()).hexdigest()
    if sent != request.match_info["sha"]:
        return web.json_response({"error": "unauthorized"}, status=401)
    return web.json_response({"ok": True})


app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
app.router.add_post("/truncate", truncate)
app.router.add_post("/status/{code}", status)
app.router.add_post("/refuse/{code}", refuse)
app.router.add_post("/slow", slow)
app.router.add_post("/die", die)
app.router.add_post("/echo-headers", echo_headers)
app.router.add_post("/auth/{sha}", auth)

if __name__ == "__main__":
    ssl_context = None
    if len(sys.argv) == 4:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(sys.argv[2], sys.argv[3])
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, ssl_context=ssl_context)
