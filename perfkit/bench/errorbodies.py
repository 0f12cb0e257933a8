"""What a failed request's answer said: captured, cleaned and shown.

A request answered with a non-2xx status keeps the first :data:`CAPTURE_BYTES` of
its body in the worker (:mod:`perfkit.bench.client`; successful answers capture
nothing). The coordinator turns those bytes into ``requests.error_body`` with
:func:`clean` (decoded, redacted through :func:`perfkit.redact.redact_text`, then cut
to :data:`BODY_CHARS` characters: redacting first, so a cut never splits a secret the
redactor would have recognised). The run summary keeps the most common bodies per
error kind (``error_bodies``) and :func:`lines` shows them, e.g.
``http_4xx 404 ×60: Model nope not found``.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from perfkit.redact import redact_text

BODY_CHARS = 200       # stored per failed request
CAPTURE_BYTES = 2048   # read per failed request (more than BODY_CHARS: a secret is redacted whole)
TOP_PER_KIND = 5       # summary: most common bodies per error kind
_MESSAGE_KEYS = ("error", "detail", "message", "msg")


def clean(raw: bytes) -> str:
    """A captured body as stored: UTF-8 (invalid bytes replaced), redacted, at most BODY_CHARS."""
    return redact_text(raw.decode("utf-8", errors="replace")).strip()[:BODY_CHARS]


class Cleaner:
    """:func:`clean` with a memory: failing requests mostly repeat one body, redacted once."""

    def __init__(self, max_entries: int = 1024):
        self.seen: dict[bytes, str] = {}
        self.max_entries = max_entries

    def __call__(self, raw: bytes) -> str:
        text = self.seen.get(raw)
        if text is None:
            text = clean(raw)
            if len(self.seen) < self.max_entries:
                self.seen[raw] = text
        return text


def message(body: str | None) -> str:
    """The human part of an error body: a JSON answer's ``error``/``detail``/``message``
    (nested as in OpenAI's ``{"error": {"message": ...}}``), else the body on one line."""
    if not body:
        return "(empty body)"
    try:
        obj: Any = json.loads(body)
    except ValueError:
        obj = None
    for _ in range(3):
        if not isinstance(obj, dict):
            break
        obj = next((obj[k] for k in _MESSAGE_KEYS if k in obj), None)
        if isinstance(obj, str) and obj.strip():
            return " ".join(obj.split())
    return " ".join(body.split())


def lines(error_bodies: Iterable[Mapping[str, Any]]) -> list[str]:
    """``"http_4xx 404 ×60: Model nope not found"``, one per summary entry, in its order."""
    return [f"{e['kind']} {e['status'] if e.get('status') is not None else '-'} ×{e['count']:,}: "
            f"{message(e.get('body'))}" for e in error_bodies]
