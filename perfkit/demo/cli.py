"""``perfkit serve-demo``: run the demo inference service (see :mod:`perfkit.demo.server`)."""
from __future__ import annotations

import argparse

from perfkit.errors import UsageError


def _positive_ints(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 512,512") from None
    if not widths or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"{text!r}: layer widths must be positive")
    return widths


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``serve-demo`` to ``perfkit``."""
    p = sub.add_parser(
        "serve-demo", help="run the demo inference server (ONNX classifier + char-level LLM)",
        description=(
            "Serve a real ONNX digits classifier (POST /api/v1/infer, KServe v2 "
            "/v2/models/NAME/infer) with dynamic/fixed/no batching, and a small "
            "character-level language model behind an OpenAI-compatible API "
            "(/v1/completions, /v1/chat/completions, streaming) with continuous or static "
            "batching; Prometheus metrics at /metrics. Fault knobs: --stall, --error-rate, "
            "--max-queue. Binds loopback only unless --allow-remote."),
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host (the server has no authentication)")
    g = p.add_argument_group("classifier batching (/api/v1/infer, KServe v2)")
    g.add_argument("--batching", choices=("dynamic", "fixed", "none"), default="dynamic",
                   help="dynamic: up to --max-batch or --batch-timeout-ms; fixed: wait to fill "
                        "--max-batch (padded); none: one request per model call (default dynamic)")
    g.add_argument("--max-batch", type=int, default=16, metavar="N",
                   help="requests per model call at most (default 16)")
    g.add_argument("--batch-timeout-ms", type=float, default=5.0, metavar="MS",
                   help="dynamic batching: longest wait after the first queued request (default 5)")
    g.add_argument("--fixed-wait-ms", type=float, default=None, metavar="MS",
                   help="fixed batching: safety timeout releasing a partial batch "
                        "(default 10 x --batch-timeout-ms)")
    g.add_argument("--max-queue", type=int, default=1024, metavar="N",
                   help="queued requests at most; more are answered 503 (default 1024)")
    g.add_argument("--model-hidden", type=_positive_ints, default=(512, 512), metavar="W,W",
                   help="classifier hidden layer widths (default 512,512; built and cached)")
    g.add_argument("--threads", type=int, default=1,
                   help="onnxruntime intra-op threads (default 1: the load generator needs a core)")
    f = p.add_argument_group("faults")
    f.add_argument("--stall", default=None, metavar="EVERY_S:FOR_S",
                   help="freeze the whole service for FOR_S seconds every EVERY_S seconds")
    f.add_argument("--error-rate", type=float, default=0.0, metavar="P",
                   help="fraction of inference requests answered 500 (seeded, default 0)")
    f.add_argument("--seed", type=int, default=0, help="seed of the fault and sampling RNGs")
    l = p.add_argument_group("LLM (/v1/completions, /v1/chat/completions)")
    l.add_argument("--llm-batching", choices=("continuous", "static"), default="continuous",
                   help="continuous: new requests join the running batch at the next step; "
                        "static: a batch runs until all its sequences finish (default continuous)")
    l.add_argument("--llm-max-batch", type=int, default=8, metavar="N",
                   help="sequences per decode step at most (default 8)")
    l.add_argument("--llm-hidden", type=int, default=3072, metavar="H",
                   help="hidden width of the char model: the per-token compute cost "
                        "(default 3072: ~1.3 ms per step alone, ~2.2 ms for 8; built once and cached)")
    l.add_argument("--llm-max-tokens", type=int, default=512, metavar="N",
                   help="cap on max_tokens per request (default 512)")
    l.add_argument("--llm-max-waiting", type=int, default=256, metavar="N",
                   help="sequences waiting to start at most; more are answered 503 (default 256)")
    p.set_defaults(func=_cmd_serve_demo)


def _cmd_serve_demo(args: argparse.Namespace) -> int:
    from perfkit.demo.faults import parse_stall
    from perfkit.demo.options import DemoOptions

    options = DemoOptions(
        host=args.host, port=args.port, allow_remote=args.allow_remote,
        batching=args.batching, max_batch=args.max_batch,
        batch_timeout_ms=args.batch_timeout_ms, fixed_wait_ms=args.fixed_wait_ms,
        max_queue=args.max_queue, stall=parse_stall(args.stall) if args.stall else None,
        error_rate=args.error_rate, seed=args.seed, model_hidden=tuple(args.model_hidden),
        threads=args.threads, llm_batching=args.llm_batching,
        llm_max_batch=args.llm_max_batch, llm_hidden=args.llm_hidden,
        llm_max_tokens=args.llm_max_tokens, llm_max_waiting=args.llm_max_waiting,
    ).validate()
    from perfkit.demo import server

    try:
        return server.run(options)
    except OSError as exc:  # e.g. the port is taken
        raise UsageError(f"cannot serve on {options.host}:{options.port}: {exc.strerror or exc}") from None
