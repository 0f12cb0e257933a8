"""The demo inference service: aiohttp routes, middleware, startup and clean shutdown.

Routes (see the module docs of :mod:`perfkit.demo.model`, :mod:`perfkit.demo.llm` and
:mod:`perfkit.demo.metrics` for what is computed and exported):

  POST /api/v1/infer                 ``{"input_data": [...], "model_id": "..."}``
  POST /v2/models/{name}/infer       KServe v2 / Open Inference Protocol (JSON)
  GET  /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}, /v2/models/{name}/ready
       (the model's one version, ``1``, also under ``/v2/models/{name}/versions/1/...``)
  POST /v1/completions, /v1/chat/completions   OpenAI-compatible, ``stream`` or not
  GET  /v1/models
  GET  /metrics                      Prometheus text exposition
  GET  /health                       ``{"status": "ok"}``, the server's Unix time in ``X-Server-Time``
  GET  /demo/config                  the settings, stall epoch and model description

Every request passes the stall gate when it arrives and before its response is
sent; inference requests may be failed on purpose (``--error-rate``) or shed when
the queue is full (``--max-queue``, HTTP 503). With ``--require-token-env VAR``
every endpoint but ``/health`` answers 401 unless the request carries the token
(:mod:`perfkit.demo.auth`).
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from typing import Any, Awaitable, Callable

import numpy as np
from aiohttp import web

from perfkit import __version__
from perfkit.demo.auth import CHALLENGE, OPEN_PATHS, authorized
from perfkit.demo.batcher import Batcher, BatchResult, QueueFull
from perfkit.demo.faults import ErrorInjector, Slowdown, StallGate
from perfkit.demo.metrics import DemoMetrics
from perfkit.demo.model import CLASSES, FEATURES, MAX_ROWS_PER_REQUEST, PayloadError, rows_from_input
from perfkit.demo.options import DemoOptions
from perfkit.demo.web_common import ARRIVAL, CLIENT_GONE, STATE, ApiError, read_json

log = logging.getLogger("perfkit.demo")

INFERENCE_ENDPOINTS = frozenset({
    "/api/v1/infer", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer",
    "/v1/completions", "/v1/chat/completions",
})


def _endpoint(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _make_middleware(metrics: DemoMetrics, gate: StallGate, injector: ErrorInjector,
                     token: str | None, slowdown: Slowdown | None = None
                     ) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        request[ARRIVAL] = time.monotonic()
        worked = slowdown.worked_s if slowdown is not None else 0.0
        endpoint = _endpoint(request)
        metrics.in_flight.inc()
        kind = None
        try:
            if token is not None and request.path not in OPEN_PATHS and not authorized(
                    request.headers.get("Authorization"), token):
                raise ApiError(401, "this server requires a token: send 'Authorization: Bearer "
                                    "TOKEN' (or Basic auth with the token as password)",
                               "unauthorized", {"WWW-Authenticate": CHALLENGE})
            await gate.wait()
            if endpoint in INFERENCE_ENDPOINTS and injector.should_fail():
                raise ApiError(500, f"injected fault (--error-rate {injector.rate})", "injected")
            response = await handler(request)
            if slowdown is not None and endpoint in INFERENCE_ENDPOINTS and not response.prepared:
                slowdown.apply(request[ARRIVAL], worked)
        except ApiError as exc:
            kind = exc.kind
            response = web.json_response({"error": str(exc)}, status=exc.status,
                                         headers=exc.headers)
        except web.HTTPException as exc:
            response = web.json_response({"error": exc.reason}, status=exc.status)
        except (asyncio.CancelledError, ConnectionResetError):
            metrics.in_flight.dec()
            raise
        except Exception as exc:  # a bug: answer 500 with the reason, keep serving
            log.exception("unhandled error on %s", request.path)
            kind = "internal"
            response = web.json_response({"error": f"internal error: {exc}"}, status=500)
        if not response.prepared:
            await gate.wait()
        metrics.in_flight.dec()
        status = "499" if request.get(CLIENT_GONE) else str(response.status)
        if kind is not None:
            metrics.errors.labels(endpoint, kind).inc()
        metrics.requests.labels(endpoint, status).inc()
        metrics.request_duration.labels(endpoint, status).observe(
            time.monotonic() - request[ARRIVAL])
        return response

    return middleware


async def _submit(request: web.Request, rows: np.ndarray) -> BatchResult:
    batcher: Batcher = request.app[STATE]["batcher"]
    try:
        return await batcher.submit(rows)
    except QueueFull as exc:
        raise ApiError(503, str(exc), "overload") from None


async def handle_infer(request: web.Request) -> web.Response:
    """``POST /api/v1/infer``: classify the rows of ``input_data`` in a batch."""
    data = await read_json(request)
    if "input_data" not in data:
        raise ApiError(400, "missing field 'input_data' (a list of numbers or of rows)")
    model_id = data.get("model_id", request.app[STATE]["options"].model_name)
    if not isinstance(model_id, str):
        raise ApiError(400, "model_id must be a string")
    try:
        rows = rows_from_input(data["input_data"])
    except PayloadError as exc:
        raise ApiError(400, str(exc)) from None
    result = await _submit(request, rows)
    total_ms = (time.monotonic() - request[ARRIVAL]) * 1000.0
    return web.json_response({
        "model_id": model_id,
        "predictions": result.labels.tolist(),
        "confidence": np.round(result.probabilities.max(axis=1).astype(np.float64), 6).tolist(),
        "rows": int(len(rows)),
        "batch_size": result.batch_size,
        "batch_rows": result.batch_rows,
        "padding_rows": result.padding_rows,
        "timings_ms": {"queue_wait_ms": round(result.queue_wait_s * 1000.0, 3),
                       "inference_ms": round(result.inference_s * 1000.0, 3),
                       "server_ms": round(total_ms, 3)},
    })


def _model_name(request: web.Request) -> str:
    name = request.match_info["name"]
    served = request.app[STATE]["options"].model_name
    if name != served:
        raise ApiError(404, f"model {name!r} not found; this server serves {served!r}", "not_found")
    return name


def kserve_rows(data: dict[str, Any]) -> np.ndarray:
    """The ``[N, 64]`` float32 rows of a KServe v2 inference request (ApiError 400 if bad)."""
    inputs = data.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ApiError(400, "'inputs' must be a list holding exactly one input tensor")
    tensor = inputs[0]
    for key in ("name", "shape", "datatype", "data"):
        if key not in tensor:
            raise ApiError(400, f"inputs[0] lacks '{key}'")
    if tensor["datatype"] not in ("FP32", "FP64", "FP16", "INT8", "INT16", "INT32", "INT64",
                                  "UINT8", "UINT16", "UINT32", "UINT64"):
        raise ApiError(400, f"inputs[0].datatype {tensor['datatype']!r} is not numeric")
    shape = tensor["shape"]
    if (not isinstance(shape, list) or len(shape) != 2 or shape[1] != FEATURES
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
            or not 1 <= shape[0] <= MAX_ROWS_PER_REQUEST):
        raise ApiError(400, f"inputs[0].shape {shape!r}: expected [N, {FEATURES}] with "
                            f"1 <= N <= {MAX_ROWS_PER_REQUEST}")
    try:
        flat = np.asarray(tensor["data"], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ApiError(400, "inputs[0].data must be numbers (flat or nested row-major)") from None
    if flat.size != shape[0] * shape[1]:
        raise ApiError(400, f"inputs[0].data has {flat.size} values, shape {shape} needs "
                            f"{shape[0] * shape[1]}")
    if not np.isfinite(flat).all():
        raise ApiError(400, "inputs[0].data holds a non-finite value")
    return flat.astype(np.float32).reshape(shape[0], FEATURES)


async def handle_kserve_infer(request: web.Request) -> web.Response:
    """``POST /v2/models/{name}/infer`` (Open Inference Protocol, JSON tensors)."""
    name = _model_name(request)
    data = await read_json(request)
    rows = kserve_rows(data)
    wanted = {"label", "probabilities"}
    if isinstance(data.get("outputs"), list):
        wanted = {str(o.get("name")) for o in data["outputs"] if isinstance(o, dict)}
        unknown = wanted - {"label", "probabilities"}
        if unknown:
            raise ApiError(400, f"unknown output(s) {sorted(map(str, unknown))}; "
                                "available: label, probabilities")
    result = await _submit(request, rows)
    outputs = []
    if "label" in wanted:
        outputs.append({"name": "label", "shape": [len(rows)], "datatype": "INT64",
                        "data": result.labels.tolist()})
    if "probabilities" in wanted:
        outputs.append({"name": "probabilities", "shape": [len(rows), CLASSES],
                        "datatype": "FP32", "data": result.probabilities.reshape(-1).tolist()})
    body: dict[str, Any] = {
        "model_name": name, "model_version": "1", "outputs": outputs,
        "parameters": {"batch_size": result.batch_size, "padding_rows": result.padding_rows,
                       "queue_wait_ms": round(result.queue_wait_s * 1000.0, 3),
                       "inference_ms": round(result.inference_s * 1000.0, 3)},
    }
    if "id" in data:
        body["id"] = data["id"]
    return web.json_response(body)


async def handle_kserve_model(request: web.Request) -> web.Response:
    """``GET /v2/models/{name}``: model metadata."""
    name = _model_name(request)
    return web.json_response({
        "name": name, "versions": ["1"], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "X", "datatype": "FP32", "shape": [-1, FEATURES]}],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, CLASSES]}],
    })


async def handle_kserve_model_ready(request: web.Request) -> web.Response:
    _model_name(request)
    return web.json_response({"name": request.match_info["name"], "ready": True})


async def handle_kserve_server(request: web.Request) -> web.Response:
    return web.json_response({"name": "perfkit-demo", "version": __version__, "extensions": []})


async def handle_ready(request: web.Request) -> web.Response:
    return web.json_response({"ready": True})


async def handle_health(request: web.Request) -> web.Response:
    # X-Server-Time: the server's Unix time, for `perfkit bench --clock-ref URL/health`
    return web.json_response({"status": "ok"}, headers={"X-Server-Time": f"{time.time():.6f}"})


async def handle_metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[STATE]["metrics"].exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def handle_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    gate: StallGate = state["gate"]
    return web.json_response({
        "options": state["options"].public(),
        "stall_epoch_unix_s": gate.epoch_unix_s,
        "models": state["descriptions"],
        "version": __version__,
    })


def create_app(options: DemoOptions, model: Any, llm_engine: Any = None) -> web.Application:
    """The aiohttp application around a loaded classifier (and optional LLM engine)."""
    metrics = DemoMetrics(options.max_batch, options.llm_max_batch)

    def on_stall(for_s: float) -> None:
        metrics.stalls.inc()
        metrics.stall_seconds.inc(for_s)

    every_s, for_s = options.stall or (None, None)
    gate = StallGate(every_s, for_s, on_stall=on_stall)
    injector = ErrorInjector(options.error_rate, options.seed)
    app = web.Application(middlewares=[_make_middleware(metrics, gate, injector, options.token(),
                                                        Slowdown(options.slowdown))],
                          client_max_size=64 * 1024 * 1024)
    descriptions = {options.model_name: model.description}
    app[STATE] = {"options": options, "metrics": metrics, "gate": gate, "model": model,
                  "descriptions": descriptions, "llm": llm_engine}

    async def on_startup(app: web.Application) -> None:
        batcher = Batcher(model.predict, mode=options.batching, max_batch=options.max_batch,
                          batch_timeout_s=options.batch_timeout_ms / 1000.0,
                          fixed_wait_s=options.fixed_wait_s, max_queue=options.max_queue,
                          metrics=metrics, gate=gate.wait)
        batcher.start()
        app[STATE]["batcher"] = batcher
        if llm_engine is not None:
            llm_engine.attach(metrics, gate.wait)
            llm_engine.start()

    async def on_cleanup(app: web.Application) -> None:
        await app[STATE]["batcher"].stop()
        if llm_engine is not None:
            await llm_engine.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/api/v1/infer", handle_infer)
    app.router.add_get("/v2", handle_kserve_server)
    app.router.add_get("/v2/health/live", handle_ready)
    app.router.add_get("/v2/health/ready", handle_ready)
    app.router.add_get("/v2/models/{name}", handle_kserve_model)
    app.router.add_get("/v2/models/{name}/ready", handle_kserve_model_ready)
    app.router.add_post("/v2/models/{name}/infer", handle_kserve_infer)
    app.router.add_get("/v2/models/{name}/versions/{version:1}", handle_kserve_model)
    app.router.add_get("/v2/models/{name}/versions/{version:1}/ready",
                       handle_kserve_model_ready)
    app.router.add_post("/v2/models/{name}/versions/{version:1}/infer", handle_kserve_infer)
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/health", handle_health)
    app.router.add_get("/demo/config", handle_config)
    if llm_engine is not None:
        from perfkit.demo import openai_api

        descriptions[options.llm_model_name] = llm_engine.description
        openai_api.add_routes(app, llm_engine, options)
    return app


async def _serve(app: web.Application, options: DemoOptions, banner: str) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port, shutdown_timeout=1.0,
                       backlog=1024, reuse_address=True)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host = f"[{options.host}]" if ":" in options.host else options.host
    print(f"perfkit serve-demo: listening on http://{host}:{options.port} ({banner})",
          file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(options: DemoOptions) -> int:
    """Load the models, serve until SIGTERM/SIGINT, and return the exit code."""
    from threadpoolctl import threadpool_limits

    from perfkit.demo.llm import LLMEngine
    from perfkit.demo.model import load_model

    # The model threads are onnxruntime's (--threads); numpy's BLAS (LLM read-out)
    # gets as many, or it would fight the load generator for the second core.
    threadpool_limits(limits=options.threads)
    started = time.monotonic()
    model = load_model(options.model_hidden, threads=options.threads, variant=options.model_variant)
    llm_engine = LLMEngine.load(options)  # its recurrence runs in onnxruntime too
    app = create_app(options, model, llm_engine)
    banner = (f"model {model.description}; batching {options.batching} max-batch "
              f"{options.max_batch}; llm {llm_engine.description}; models ready in "
              f"{time.monotonic() - started:.1f} s")
    if options.require_token_env:
        banner += f"; token required (${options.require_token_env})"
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # uvloop is optional (not on Windows)
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(app, options, banner))
    return 0
