"""Helpers for the demo-server tests: small HTTP clients against a real DemoServer."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


def http(method: str, url: str, body: Any = None, raw: bytes | None = None,
         timeout_s: float = 30.0) -> tuple[int, Any]:
    """One blocking request; returns (status, parsed JSON body or text)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    text = payload.decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


async def _post_many(url: str, bodies: list[Any], timeout_s: float) -> list[tuple[int, Any]]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        async def one(body: Any) -> tuple[int, Any]:
            async with session.post(url, json=body) as response:
                return response.status, await response.json(content_type=None)
        return await asyncio.gather(*(one(body) for body in bodies))


def post_concurrently(url: str, bodies: list[Any], timeout_s: float = 30.0) -> list[tuple[int, Any]]:
    """POST all ``bodies`` at once over separate connections; [(status, json)]."""
    return asyncio.run(_post_many(url, bodies, timeout_s))


async def _stream(url: str, body: Any, timeout_s: float) -> dict[str, Any]:
    """POST with ``stream: true``; the parsed SSE events with client-side arrival times."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        return await stream_events(session, url, body)


async def stream_events(session: aiohttp.ClientSession, url: str, body: Any,
                        first_chunk: asyncio.Event | None = None) -> dict[str, Any]:
    """Read one SSE completion stream: {"status", "chunks", "times", "done", "raw", "sent"}.

    ``times`` are seconds since ``sent`` (a ``time.monotonic()`` reading) per chunk;
    ``first_chunk`` is set when the first chunk arrives.
    """
    import time

    sent = time.monotonic()
    chunks, times, done, raw = [], [], False, []
    async with session.post(url, json=body) as response:
        status = response.status
        async for line in response.content:
            raw.append(line)
            line = line.strip()
            if not line:
                continue
            assert line.startswith(b"data: "), line
            payload = line[len(b"data: "):]
            if payload == b"[DONE]":
                done = True
                continue
            assert not done, "data after [DONE]"
            chunks.append(json.loads(payload))
            times.append(time.monotonic() - sent)
            if first_chunk is not None:
                first_chunk.set()
    return {"status": status, "chunks": chunks, "times": times, "done": done, "raw": raw,
            "sent": sent}


def stream(url: str, body: Any, timeout_s: float = 60.0) -> dict[str, Any]:
    """Blocking wrapper around :func:`stream_events` for one request."""
    return asyncio.run(_stream(url, body, timeout_s))


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """/metrics parsed by prometheus_client: {(sample name, sorted labels): value}."""
    status, text = http("GET", url + "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
