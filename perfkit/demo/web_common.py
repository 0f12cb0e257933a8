"""What the demo server's route modules share: app and request keys, JSON errors, body parsing."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

STATE = web.AppKey("state", dict)
#: ``time.monotonic()`` when the request arrived (set by the middleware).
ARRIVAL = web.RequestKey("t_arrival", float)
#: Set when a streaming client closed the connection before the end (logged as 499).
CLIENT_GONE = web.RequestKey("client_gone", bool)


class ApiError(Exception):
    """An error answered as JSON ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str, kind: str = "bad_request",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.headers = headers or {}


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or ApiError 400 saying what is wrong."""
    body = await request.read()
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(data).__name__}")
    return data


