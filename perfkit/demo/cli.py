"""``perfkit serve-demo``: run the demo inference service (see :mod:`perfkit.demo.server`).

Each flag's destination is the :class:`perfkit.demo.options.DemoOptions` field of
the same name, so the handler hands the parsed flags over as they are.
"""
from __future__ import annotations

import argparse

from perfkit.errors import UsageError

_DESCRIPTION = (
    "Serve a real ONNX digits classifier (POST /api/v1/infer, KServe v2 "
    "/v2/models/NAME/infer) with dynamic/fixed/no batching, and a small "
    "character-level language model behind an OpenAI-compatible API "
    "(/v1/completions, /v1/chat/completions, streaming) with continuous or static "
    "batching; Prometheus metrics at /metrics. Fault knobs: --stall, --error-rate, "
    "--slowdown, --max-queue. Binds loopback only unless --allow-remote; with --require-token-env "
    "every endpoint but /health wants the token.")


def _positive_ints(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 512,512") from None
    if not widths or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"{text!r}: layer widths must be positive")
    return widths


def _count(group: argparse._ArgumentGroup, flag: str, default: int, what: str) -> None:
    """An ``N`` option whose help ends with its default."""
    group.add_argument(flag, type=int, default=default, metavar="N", help=f"{what} (default {default})")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``serve-demo`` to ``perfkit``."""
    p = sub.add_parser("serve-demo", description=_DESCRIPTION,
                       help="run the demo inference server (ONNX classifier + char-level LLM)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host (without --require-token-env the server "
                        "has no authentication)")
    p.add_argument("--require-token-env", default=None, metavar="VAR",
                   help="answer 401 on every endpoint but /health unless the request sends "
                        "'Authorization: Bearer $VAR' (or Basic auth with $VAR as password); "
                        "the token is read from the environment variable VAR")
    g = p.add_argument_group("classifier batching (/api/v1/infer, KServe v2)")
    g.add_argument("--batching", choices=("dynamic", "fixed", "none"), default="dynamic",
                   help="dynamic: up to --max-batch or --batch-timeout-ms; fixed: wait to fill "
                        "--max-batch (padded); none: one request per model call (default dynamic)")
    _count(g, "--max-batch", 16, "requests per model call at most")
    g.add_argument("--batch-timeout-ms", type=float, default=5.0, metavar="MS",
                   help="dynamic batching: longest wait after the first queued request (default 5)")
    g.add_argument("--fixed-wait-ms", type=float, default=None, metavar="MS",
                   help="fixed batching: safety timeout releasing a partial batch "
                        "(default 10 x --batch-timeout-ms)")
    _count(g, "--max-queue", 1024, "queued requests at most; more are answered 503")
    g.add_argument("--model-hidden", type=_positive_ints, default=(512, 512), metavar="W,W",
                   help="classifier hidden layer widths (default 512,512; built and cached)")
    g.add_argument("--model-variant", default="", metavar="NAME",
                   help="serve a variant built by 'perfkit optimize' (e.g. int8-dynamic, prune-structured-50) "
                        "instead of the FP32 model; same endpoints and batching")
    g.add_argument("--threads", type=int, default=1,
                   help="onnxruntime intra-op threads (default 1: the load generator needs a core)")
    f = p.add_argument_group("faults")
    f.add_argument("--stall", default=None, metavar="EVERY_S:FOR_S",
                   help="freeze the whole service for FOR_S seconds every EVERY_S seconds")
    f.add_argument("--error-rate", type=float, default=0.0, metavar="P",
                   help="fraction of inference requests answered 500 (seeded, default 0)")
    f.add_argument("--slowdown", type=float, default=1.0, metavar="FACTOR",
                   help="each inference request's handling takes FACTOR times as long, by real computation "
                        "on the server's event loop (no sleep; counted in its request-duration metrics). It costs "
                        "(FACTOR - 1) x the handling time in CPU per request: at 100 req/s and ~7 ms each, "
                        "FACTOR 2 needs most of a core. Default 1")
    f.add_argument("--seed", type=int, default=0, help="seed of the fault and sampling RNGs")
    l = p.add_argument_group("LLM (/v1/completions, /v1/chat/completions)")
    l.add_argument("--llm-batching", choices=("continuous", "static"), default="continuous",
                   help="continuous: new requests join the running batch at the next step; "
                        "static: a batch runs until all its sequences finish (default continuous)")
    _count(l, "--llm-max-batch", 8, "sequences per decode step at most")
    l.add_argument("--llm-hidden", type=int, default=3072, metavar="H",
                   help="hidden width of the char model: the per-token compute cost "
                        "(default 3072: ~1.3 ms per step alone, ~2.2 ms for 8; built once and cached)")
    _count(l, "--llm-max-tokens", 512, "cap on max_tokens per request")
    _count(l, "--llm-max-waiting", 256, "sequences waiting to start at most; more are answered 503")
    p.set_defaults(func=_cmd_serve_demo)


def _cmd_serve_demo(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from perfkit.demo.faults import parse_stall
    from perfkit.demo.options import DemoOptions

    given = {f.name: getattr(args, f.name) for f in fields(DemoOptions) if hasattr(args, f.name)}
    given["stall"] = parse_stall(args.stall) if args.stall else None
    given["model_hidden"] = tuple(args.model_hidden)
    options = DemoOptions(**given).validate()
    from perfkit.demo import server

    try:
        return server.run(options)
    except OSError as exc:  # e.g. the port is taken
        raise UsageError(f"cannot serve on {options.host}:{options.port}: {exc.strerror or exc}") from None
