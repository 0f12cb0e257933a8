"""Demo server capacity per batching mode, and LLM time to first token / per output token.

    .venv/bin/python benchmarks/demo_batching.py [--duration 6 --concurrency 32 --rows 8]

For each ``--batching`` mode (none, dynamic, fixed) a fresh ``perfkit serve-demo`` is
driven closed-loop by ``--concurrency`` keep-alive aiohttp connections for
``--duration`` s (after a 1 s warm-up) with ``--rows`` digit rows per request: the
achieved req/s is the most this mode sustains at that concurrency on this machine
(the client shares the CPU, as a load generator would). It prints req/s, latency
p50/p99 and the mean batch size from /metrics, then the ratio dynamic/none (what
batching buys) and fixed/dynamic. Then it streams ``--llm-streams`` concurrent
completions and prints TTFT and TPOT ranges at the server's default LLM settings.
Last, the LLM decode step's recurrence in onnxruntime (what the server runs) vs the
same arithmetic in numpy, at batch 1 and 8, as a ratio.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perfkit.demo.launch import DemoServer  # noqa: E402
from perfkit.demo.model import digits_sample  # noqa: E402


async def closed_loop(url: str, body: dict, concurrency: int, duration_s: float,
                      warmup_s: float = 1.0) -> tuple[int, float, np.ndarray]:
    """(requests completed in the window, window seconds, latencies ms) of a closed loop."""
    latencies: list[float] = []
    errors = 0
    start = time.monotonic()
    window = (start + warmup_s, start + warmup_s + duration_s)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < window[1]:
                sent = time.monotonic()
                async with session.post(url, json=body) as response:
                    await response.read()
                    ok = response.status == 200
                done = time.monotonic()
                if window[0] <= sent and done <= window[1]:
                    if ok:
                        latencies.append((done - sent) * 1000.0)
                    else:
                        errors += 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if errors:
        print(f"  ({errors} errors)")
    return len(latencies), duration_s, np.array(latencies)


def mean_batch_size(url: str) -> float:
    import urllib.request

    text = urllib.request.urlopen(url + "/metrics").read().decode()
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
              if not s.labels}
    return values["perfkit_demo_batch_size_sum"] / max(values["perfkit_demo_batch_size_count"], 1)


async def llm_streams(url: str, streams: int, prompt_chars: int, max_tokens: int
                      ) -> list[tuple[float, float]]:
    """[(ttft_ms, tpot_ms)] of ``streams`` concurrent streamed completions."""
    async with aiohttp.ClientSession() as session:
        async def one() -> tuple[float, float]:
            sent = time.monotonic()
            times = []
            body = {"prompt": "x" * prompt_chars, "max_tokens": max_tokens, "stream": True}
            async with session.post(url + "/v1/completions", json=body) as response:
                async for line in response.content:
                    if line.startswith(b"data: {"):
                        times.append(time.monotonic())
            return ((times[0] - sent) * 1000.0,
                    (times[-2] - times[0]) / (len(times) - 2) * 1000.0)
        return await asyncio.gather(*(one() for _ in range(streams)))


def step_ratio(hidden: int = 3072, steps: int = 200) -> None:
    """Time the recurrence in onnxruntime vs numpy (same weights) and print the ratio."""
    from threadpoolctl import threadpool_limits

    from perfkit.demo.charlm import CharLM, load_charlm

    served, path, _ = load_charlm(hidden)
    plain = CharLM.from_file(path)  # no session: numpy BLAS
    with threadpool_limits(limits=1):
        for batch in (1, 8):
            states = served.initial_states(batch)
            tokens = np.arange(batch) % 90
            timings = {}
            for name, model in (("onnxruntime", served), ("numpy", plain)):
                model.advance(states, tokens)
                started = time.perf_counter()
                for _ in range(steps):
                    model.advance(states, tokens)
                timings[name] = (time.perf_counter() - started) / steps * 1000.0
            print(f"LLM step recurrence, hidden {hidden}, batch {batch}: onnxruntime "
                  f"{timings['onnxruntime']:.2f} ms, numpy {timings['numpy']:.2f} ms "
                  f"(numpy/onnxruntime {timings['numpy'] / timings['onnxruntime']:.2f}x, "
                  f"n={steps} steps each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rows", type=int, default=8, help="digit rows per request")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--llm-streams", type=str, default="1,4,8")
    parser.add_argument("--prompt-chars", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--skip-http", action="store_true", help="only the step ratio")
    args = parser.parse_args()
    if args.skip_http:
        step_ratio()
        return
    body = {"input_data": digits_sample(args.rows), "model_id": "bench"}
    rates = {}
    print(f"closed loop, {args.concurrency} connections, {args.rows} rows/request, "
          f"{args.duration:g} s per mode, max-batch {args.max_batch}")
    for mode in ("none", "dynamic", "fixed"):
        with DemoServer(batching=mode, max_batch=args.max_batch) as server:
            n, seconds, lat = asyncio.run(closed_loop(server.url + "/api/v1/infer", body,
                                                      args.concurrency, args.duration))
            batch = mean_batch_size(server.url)
        rates[mode] = n / seconds
        print(f"  {mode:8s} {rates[mode]:8.0f} req/s (n={n:,})  latency p50 "
              f"{np.percentile(lat, 50):6.2f} ms  p99 {np.percentile(lat, 99):6.2f} ms  "
              f"mean batch {batch:5.2f}")
    print(f"dynamic/none throughput ratio: {rates['dynamic'] / rates['none']:.2f}x; "
          f"fixed/dynamic: {rates['fixed'] / rates['dynamic']:.2f}x")
    with DemoServer() as server:
        for streams in (int(s) for s in args.llm_streams.split(",")):
            res = asyncio.run(llm_streams(server.url, streams, args.prompt_chars,
                                          args.max_tokens))
            ttft = [r[0] for r in res]
            tpot = [r[1] for r in res]
            print(f"LLM {streams:2d} streams, {args.prompt_chars}-char prompt, "
                  f"{args.max_tokens} tokens: TTFT {min(ttft):.1f}..{max(ttft):.1f} ms, "
                  f"TPOT {min(tpot):.2f}..{max(tpot):.2f} ms")
    step_ratio()


if __name__ == "__main__":
    main()
