"""A minimal, fast HTTP/1.1 keep-alive client on asyncio Protocols (uvloop + httptools).

Why not aiohttp: the load generator must never be the bottleneck, and aiohttp's
client costs tens of microseconds per request. Here a request is one
``transport.write`` of pre-encoded bytes, and a response is parsed by
httptools' C parser inside ``data_received``. Open loop: a request whose time has
come goes out on an idle connection or on a new one; it never waits for a
previous response (only a ``max_connections`` cap can queue it, and its latency
still counts from its intended send time).

Every request ends exactly once, in :meth:`Pool.finish`, with an error code from
:data:`ERRORS` (0 = ok). An answer whose status is not 2xx keeps the first
:data:`~perfkit.bench.errorbodies.CAPTURE_BYTES` of its body in ``Req.err_body``
(a successful answer's body is never kept: its ``on_body`` does one test), except
a plain OpenAI answer: a non-streaming openai run's (:class:`_AnswerConn`), or a stream
request the server answered with ``Content-Type: application/json`` (it ignored
``stream``), which is kept in ``Req.answer`` and read for its usage when complete
(:func:`_read_answer`). A streamed answer must end with ``[DONE]``.

Timing: a request's ``sent`` stamp is taken when it goes out on an idle connection
or, when it needs a new one, *before* the connect (whose duration is kept apart in
``connect``): connection set-up is the server's time (service time), not the
generator's schedule lag. Only a request queued at the ``max_connections`` cap is
stamped when a connection frees up.
"""
from __future__ import annotations

import asyncio
import json
import ssl as _ssl
from collections import deque
from time import monotonic_ns
from typing import Callable

import httptools

from perfkit.bench.errorbodies import CAPTURE_BYTES

# Error kinds; index 0 means ok. Stored as text in requests.error_kind.
ERRORS = (None, "connection_refused", "connect_error", "connection_reset", "truncated", "timeout",
          "http_4xx", "http_5xx", "http_other", "bad_response", "truncated_stream", "interrupted")
E_OK, E_REFUSED, E_CONNECT, E_RESET, E_TRUNC, E_TIMEOUT, E_4XX, E_5XX, E_OTHER, E_BAD, E_TSTREAM, E_INTR = range(12)
CONNECTION_LEVEL = {E_REFUSED, E_CONNECT, E_RESET, E_TIMEOUT}


class Req:
    """One request's timings (monotonic ns) and outcome."""

    __slots__ = ("seq", "stage", "intended", "deadline", "sent", "first", "done", "status", "err",
                 "bytes_out", "bytes_in", "body", "conn", "retried", "tokens", "last_tok", "itl_max",
                 "prompt_tokens", "usage_out", "sse", "done_seen", "waiter", "gaps", "connect", "err_body",
                 "answer")

    def __init__(self, seq: int, stage: int, intended: int, body: int):
        self.seq = seq
        self.stage = stage
        self.intended = intended
        self.deadline = 0
        self.sent = 0
        self.first = 0
        self.done = 0
        self.status = 0
        self.err = -1
        self.bytes_out = 0
        self.bytes_in = 0
        self.body = body
        self.conn: _Conn | None = None
        self.retried = False
        self.tokens = 0
        self.last_tok = 0
        self.itl_max = 0
        self.prompt_tokens = -1
        self.usage_out = -1
        self.sse = b""
        self.done_seen = False
        self.waiter: asyncio.Future[None] | None = None
        self.gaps: list[int] | None = None  # inter-token gaps (ns) of a streamed response
        self.connect = -1                   # ns spent opening a connection for it; -1: none opened
        self.err_body: bytes | None = None  # a non-2xx answer's body (its first CAPTURE_BYTES)
        self.answer: bytes | None = None    # a plain (non-streamed) OpenAI answer's body, read when complete


class _Conn(asyncio.Protocol):
    """One keep-alive connection; carries at most one request at a time."""

    def __init__(self, pool: "Pool"):
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.req: Req | None = None
        self.uses = 0
        self.closed = False
        self.headers_done = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        req = self.req
        if req is None:  # a response nobody waits for (request timed out): drop the connection
            self._close()
            return
        if not req.first:
            req.first = monotonic_ns()
        req.bytes_in += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.pool.finish(req, E_BAD)
            self._close()
        except httptools.HttpParserError:
            if self.req is req:
                self.pool.finish(req, E_BAD)
            self._close()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.pool.conn_lost(self)

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.headers_done = True
        req = self.req
        if req is not None:
            req.status = status = self.parser.get_status_code()
            if not 200 <= status < 300:
                req.err_body = b""  # capture this answer's body (see on_body)

    def on_body(self, body: bytes) -> None:
        req = self.req
        if req is not None and req.err_body is not None:
            _capture(req, body)

    def on_message_complete(self) -> None:
        req = self.req
        if req is None:
            return
        self.req = None
        self.headers_done = False
        keep = self.parser.should_keep_alive()
        pool = self.pool
        pool.finish(req, pool.classify(req))
        if keep and not self.closed:
            pool.release(self)
        else:
            self._close()

    # ours
    def send(self, req: Req) -> None:
        self.req = req
        req.conn = self
        self.uses += 1
        data = self.pool.requests[req.body]
        req.bytes_out = len(data)
        if not req.sent:  # a request that opened this connection was stamped before the connect
            req.sent = monotonic_ns()
        self.transport.write(data)  # type: ignore[union-attr]

    def _close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()


class _AnswerConn(_Conn):
    """A connection that keeps a successful answer's body whole: a plain OpenAI answer
    (``stream: false``), read for its usage when complete (:meth:`Pool.classify`)."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        req = self.req
        if req is not None and req.err_body is None:
            req.answer = b""

    def on_body(self, body: bytes) -> None:
        req = self.req
        if req is None:
            return
        if req.err_body is not None:
            _capture(req, body)
        elif req.answer is not None:
            req.answer += body


class _StreamConn(_AnswerConn):
    """A connection that reads Server-Sent Events (OpenAI ``stream: true``) token by token;
    a 2xx answer with ``Content-Type: application/json`` (the server ignored ``stream``) is
    kept whole and read as a plain answer."""

    def __init__(self, pool: "Pool"):
        super().__init__(pool)
        self.plain = False  # this response is application/json, not a stream

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 12 and name.lower() == b"content-type":
            self.plain = value.lstrip().lower().startswith(b"application/json")

    def on_headers_complete(self) -> None:
        if self.plain:
            self.plain = False
            super().on_headers_complete()
        else:
            _Conn.on_headers_complete(self)

    def on_body(self, body: bytes) -> None:
        req = self.req
        if req is None:
            return
        if req.err_body is not None or req.answer is not None:  # not a stream: keep the body
            super().on_body(body)
            return
        buf = req.sse + body if req.sse else body
        if b"\r\n" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        events = buf.split(b"\n\n")
        req.sse = events.pop()
        now = monotonic_ns()
        for ev in events:
            for line in ev.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    req.done_seen = True
                    continue
                try:
                    obj = json.loads(data)
                except ValueError:
                    continue
                if not isinstance(obj, dict):
                    continue
                choices = obj.get("choices") or ()
                if choices and isinstance(choices[0], dict):
                    c0 = choices[0]
                    delta = c0.get("delta") or {}
                    content = delta.get("content") if isinstance(delta, dict) else None
                    if content is None:
                        content = c0.get("text")
                    if content:
                        _token(req, now)
                usage = obj.get("usage")
                if isinstance(usage, dict):
                    _usage(req, usage)


def _usage(req: Req, usage: dict) -> None:
    """An OpenAI ``usage`` object's token counts onto ``req``."""
    if isinstance(usage.get("prompt_tokens"), int):
        req.prompt_tokens = usage["prompt_tokens"]
    if isinstance(usage.get("completion_tokens"), int):
        req.usage_out = usage["completion_tokens"]


def _read_answer(req: Req) -> int:
    """A complete plain OpenAI answer: E_OK with its usage when it is a JSON object with a
    ``choices`` list, else E_BAD. The body is dropped either way."""
    raw, req.answer = req.answer, None
    try:
        obj = json.loads(raw or b"")
    except ValueError:
        return E_BAD
    if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list):
        return E_BAD
    usage = obj.get("usage")
    if isinstance(usage, dict):
        _usage(req, usage)
    return E_OK


def _capture(req: Req, body: bytes) -> None:
    """Append to a failed answer's kept body, up to CAPTURE_BYTES."""
    kept = req.err_body or b""
    if len(kept) < CAPTURE_BYTES:
        req.err_body = kept + body[:CAPTURE_BYTES - len(kept)]


def _token(req: Req, now: int) -> None:
    if req.tokens == 0:
        req.last_tok = now
        req.first = now  # for streams, "first" is the first token
    else:
        gap = now - req.last_tok
        if req.gaps is None:
            req.gaps = [gap]
        else:
            req.gaps.append(gap)
        if gap > req.itl_max:
            req.itl_max = gap
        req.last_tok = now
    req.tokens += 1


class Pool:
    """Connections to one host:port, grown by in-flight demand, and the requests on them."""

    def __init__(self, host: str, port: int, requests: list[bytes], *, timeout_s: float,
                 on_done: Callable[[Req], None], stream: bool = False, use_ssl: bool = False,
                 max_connections: int = 20000, answers: bool = False):
        """``stream``: answers are token streams (SSE); ``answers``: otherwise, successful
        answers are plain OpenAI JSON, kept and read for their usage (never for other protocols)."""
        self.loop = asyncio.get_running_loop()
        self.host, self.port = host, port
        self.requests = requests
        self.timeout_ns = int(timeout_s * 1e9)
        self.on_done = on_done
        self.stream = stream
        self.ssl = _ssl.create_default_context() if use_ssl else None
        self.max_connections = max_connections
        self.idle: list[_Conn] = []
        self.n_conns = 0
        self.peak_conns = 0
        self.queued: deque[Req] = deque()
        self.inflight: deque[Req] = deque()
        self.n_inflight = 0
        self._proto: type[_Conn] = _StreamConn if stream else (_AnswerConn if answers else _Conn)

    def submit(self, req: Req) -> None:
        """Send now on an idle connection, else open one (or queue at the cap)."""
        req.deadline = monotonic_ns() + self.timeout_ns
        self.inflight.append(req)
        self.n_inflight += 1
        self._dispatch(req)

    def _dispatch(self, req: Req) -> None:
        conn = self._idle_conn()
        if conn is not None:
            conn.send(req)
        elif self.n_conns < self.max_connections:
            self.n_conns += 1
            if self.n_conns > self.peak_conns:
                self.peak_conns = self.n_conns
            if not req.sent:  # the send starts with the connect (see the module doc)
                req.sent = monotonic_ns()
            self.loop.create_task(self._connect(req))
        else:
            self.queued.append(req)

    def _idle_conn(self) -> _Conn | None:
        """An open idle connection, dropping closed ones on the way; None if there is none."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def prewarm(self, n: int, timeout_s: float) -> int:
        """Open up to ``n`` keep-alive connections now and park them idle; returns how many.

        Called before t0, so that the first milliseconds of an open-loop run are not a
        connect storm (every request opening its own connection) that the run's lag and
        latency would then carry. Gives up at ``timeout_s``; failures are left for the
        requests themselves to meet and report.
        """
        async def one() -> None:
            try:
                _, conn = await self.loop.create_connection(lambda: self._proto(self), self.host, self.port,
                                                            ssl=self.ssl)
            except (OSError, asyncio.TimeoutError):
                return
            self.n_conns += 1
            self.peak_conns = max(self.peak_conns, self.n_conns)
            self.idle.append(conn)

        n = min(n, self.max_connections)
        if n <= 0 or timeout_s <= 0:
            return 0
        tasks = [self.loop.create_task(one()) for _ in range(n)]
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for t in pending:
            t.cancel()
        return len(self.idle)

    async def _connect(self, req: Req) -> None:
        start = monotonic_ns()
        try:
            _, conn = await self.loop.create_connection(lambda: self._proto(self), self.host, self.port,
                                                        ssl=self.ssl)
        except ConnectionRefusedError:
            self.n_conns -= 1
            self.finish(req, E_REFUSED)
            return
        except (OSError, asyncio.TimeoutError):
            self.n_conns -= 1
            self.finish(req, E_CONNECT)
            return
        req.connect = monotonic_ns() - start
        if req.done:  # timed out while connecting: keep the connection for the next one
            self.release(conn)
        else:
            conn.send(req)

    def release(self, conn: _Conn) -> None:
        """A connection is free: serve a queued request or park it."""
        q = self.queued
        while q:
            req = q.popleft()
            if not req.done:
                conn.send(req)
                return
        self.idle.append(conn)

    def conn_lost(self, conn: _Conn) -> None:
        self.n_conns -= 1
        req = conn.req
        conn.req = None
        if req is not None and not req.done:
            if req.bytes_in == 0 and conn.uses > 1 and not req.retried:
                # The server closed an idle keep-alive connection as we wrote on it:
                # nothing was answered, so try once on a fresh connection (as browsers do).
                req.retried = True
                self._dispatch(req)
            elif not conn.headers_done and req.bytes_in == 0:
                self.finish(req, E_RESET)
            else:
                self.finish(req, E_TRUNC)
        elif self.queued and self.n_conns < self.max_connections:
            nxt = self.queued.popleft()
            if not nxt.done:
                self._dispatch(nxt)

    def classify(self, req: Req) -> int:
        s = req.status
        if 200 <= s < 300:
            if req.answer is not None:
                return _read_answer(req)
            if self.stream and not req.done_seen:
                return E_TSTREAM
            return E_OK
        if 400 <= s < 500:
            return E_4XX
        if 500 <= s < 600:
            return E_5XX
        return E_OTHER

    def finish(self, req: Req, err: int) -> None:
        """Record the outcome once; later calls (a late response after a timeout) are ignored."""
        if req.done:
            return
        req.done = monotonic_ns()
        req.err = err
        self.n_inflight -= 1
        self.on_done(req)
        if req.waiter is not None and not req.waiter.done():
            req.waiter.set_result(None)

    def sweep(self, now: int | None = None, kind: int = E_TIMEOUT, force: bool = False) -> None:
        """Time out requests past their deadline (all of them with ``force``)."""
        now = monotonic_ns() if now is None else now
        q = self.inflight
        while q:
            req = q[0]
            if req.done:
                q.popleft()
                continue
            if not force and req.deadline > now:
                break
            q.popleft()
            conn = req.conn
            self.finish(req, kind)
            if conn is not None and conn.req is req:
                conn.req = None
                conn._close()

    def close(self) -> None:
        for conn in self.idle:
            conn._close()
        self.idle.clear()
