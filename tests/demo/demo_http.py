"""Helpers for the demo-server tests: small HTTP clients against a real DemoServer."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import aiohttp


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
