"""perfkit vs guidellm vs AIPerf against the demo's OpenAI endpoint, checked against the server.

    .venv/bin/python benchmarks/llm_vs_guidellm_aiperf.py --peers-venv PEERS/guidellm \\
        --peers-venv PEERS/aiperf [--rate 2] [--duration 40] [--repeat 3] [--out DIR]

Installs nothing: a peer is used when its executable is found (``--guidellm BIN``,
``--aiperf BIN``, or ``bin/guidellm`` / ``bin/aiperf`` under a ``--peers-venv DIR``) and
skipped with a line saying so otherwise. For each tool in turn it starts a fresh
``perfkit serve-demo`` on a free loopback port pinned to ``--server-cpus`` (default core
0), sends four warm-up requests, scrapes ``/metrics``, runs the tool pinned to
``--client-cpus`` (default the other cores): streaming ``/v1/chat/completions`` at a
constant ``--rate`` for ``--duration`` seconds, prompts of ``--prompt-tokens`` tokens of
the demo's char model (64 characters) and ``--output-tokens`` output tokens; then scrapes
``/metrics`` again and stops the server. The difference of the two scrapes is the
server's own view of that tool's requests.

Prints, per tool, its mean TTFT, time per output token and E2E as the tool reports them
(read from its own output file: perfkit's ``--summary-json``, guidellm's JSON report,
AIPerf's ``profile_export_aiperf.json``), the same means from the server's histograms and
the error tool - server; then the client's CPU seconds per 1,000 requests (user + system
over the whole process tree and its whole life, start-up included, from the kernel's
accounting of reaped children; this process is a subreaper, so orphans count too) and the
peak of the tree's summed RSS (polled every ``--poll-s``).

Definitions (what is compared with what):
- server TTFT ``perfkit_demo_llm_time_to_first_token_seconds``: request arrival (the
  middleware, after the request head was parsed) to the decode step that produced the
  first token, before it is written. A client's TTFT adds the request's send, the
  server's header parsing, the write of the chunk, the loopback, the client's read and
  SSE/JSON parsing, and any wait of the client's event loop; so client - server > 0 is
  expected, and what is small is good.
- server TPOT ``perfkit_demo_llm_time_per_output_token_seconds``: per request,
  (last token - first token) / (tokens - 1). Compared with perfkit's ``tpot_ms``,
  guidellm's ``inter_token_latency_ms`` and AIPerf's ``inter_token_latency`` (all the
  same per-request form). guidellm's ``time_per_output_token_ms`` and perfkit's
  ``tpot_incl_ttft_ms`` include the TTFT, (last token - start) / tokens: they are compared
  with (TTFT + (tokens - 1) x TPOT) / tokens of the server, exact for the mean when every
  request generates the same number of tokens (the demo has no end-of-text).
- server E2E ``perfkit_demo_request_duration_seconds{endpoint="/v1/chat/completions",
  status="200"}``: arrival to the end of the response (``[DONE]`` written). perfkit's
  ``service_ms`` (actual send to complete), guidellm's ``request_latency`` (to request
  end), AIPerf's ``request_latency`` (to the last content chunk, a few chunks earlier).
  perfkit's figures from the *intended* send (``ttft_intended_ms``, ``e2e_ms``, its
  headline numbers) also hold the generator's own lag; they are printed on their own line.

Each tool is run as its users run it: perfkit collects telemetry (it scrapes the
server's ``/metrics``, as AIPerf does by default; guidellm collects nothing), no progress
display for any. guidellm ends its run at ``--duration`` and cancels the requests in flight
(the server counts them as 499 and their first tokens in its TTFT histogram); AIPerf and
perfkit wait for them. perfkit generates its prompts with ``--prompt-tokens`` and its
default tokenizer (the demo char model's own); the peers get a local character-level
``tokenizer.json`` (written here), so that their token counts are the demo model's too.
guidellm runs with the Hugging Face Hub offline (AIPerf 0.13.0 cannot load a local
tokenizer directory in offline mode: it is given the absolute path, which it loads as a
local one).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any, Callable

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from llm_peers import (CHAT_PATH, ServerMeans, ToolMeans, TreeMonitor, TreeUsage,  # noqa: E402
                       become_subreaper, peer_env, read_aiperf, read_guidellm, read_perfkit,
                       reap_orphans, server_means, write_char_tokenizer)

from perfkit.demo.charlm import UNKNOWN, VOCAB  # noqa: E402
from perfkit.demo.launch import DemoServer  # noqa: E402

MODEL = "perfkit-char-lm"
PROMPT_TEXT = ("the quick brown fox jumps over a lazy dog while seven tired engineers "
               "measure tail latency under open loop load")


def prompt(chars: int) -> str:
    """A prompt of exactly ``chars`` characters (= tokens of the demo's char model)."""
    return (PROMPT_TEXT * (chars // len(PROMPT_TEXT) + 1))[:chars]


def chat_body(chars: int, output_tokens: int) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt(chars)}],
            "stream": True, "max_tokens": output_tokens,
            "stream_options": {"include_usage": True}}


# --- the three tools' command lines ------------------------------------------------------

def perfkit_argv(args: argparse.Namespace, url: str, out: Path) -> list[str]:
    """perfkit bench with token-true prompts and outputs, counted with its default tokenizer
    (the demo char model's own, as the peers' char ``tokenizer.json``)."""
    script = Path(sys.executable).with_name("perfkit")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "perfkit"]
    return [*head, "bench", "--protocol", "openai", "--target", url + CHAT_PATH,
            "--pattern", "constant", "--rate", f"{args.rate:g}", "--duration", f"{args.duration:g}",
            "--prompt-tokens", str(args.prompt_tokens), "--output-tokens", str(args.output_tokens),
            "--model", MODEL, "--summary-json", str(out / "summary.json"),
            "--db", str(out / "perfkit.duckdb"), "--label", "bench=llm_vs_peers", "--quiet"]


def guidellm_argv(binary: str, args: argparse.Namespace, tok: Path, url: str, out: Path) -> list[str]:
    return [binary, "run",
            "--backend", f"kind=openai_http,target={url},model={MODEL},"
                         f"request_format={CHAT_PATH},stream=true",
            "--profile", f"kind=constant,rate={args.rate:g}",
            "--constraint", f"kind=max_duration,seconds={args.duration:g}",
            "--tokenizer", f"kind=huggingface_auto,model={tok}",
            "--data", f"kind=synthetic_text,prompt_tokens={args.prompt_tokens},"
                      f"output_tokens={args.output_tokens}",
            "--output", f"kind=json,path={out / 'guidellm.json'}",
            "--disable-console-interactive"]


def aiperf_argv(binary: str, args: argparse.Namespace, tok: Path, url: str, out: Path) -> list[str]:
    return [binary, "profile", "--model", MODEL, "--url", url, "--endpoint-type", "chat",
            "--streaming", "--request-rate", f"{args.rate:g}", "--arrival-pattern", "constant",
            "--benchmark-duration", f"{args.duration:g}", "--isl", str(args.prompt_tokens),
            "--osl", str(args.output_tokens), "--tokenizer", str(tok), "--random-seed", "0",
            "--artifact-dir", str(out), "--ui-type", "none"]


def find_peer(name: str, explicit: str | None, venvs: list[str]) -> str | None:
    """The peer's executable: ``--NAME BIN``, else ``bin/NAME`` under a ``--peers-venv``."""
    if explicit:
        found = shutil.which(explicit) or (explicit if os.access(explicit, os.X_OK) else None)
        return found
    for venv in venvs:
        candidate = Path(venv) / "bin" / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


# --- running one tool -------------------------------------------------------------------

def cpus(spec: str) -> set[int]:
    """``"0"``, ``"1-3"``, ``"0,2"`` -> a CPU set."""
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def start_server(server_cpus: set[int], client_cpus: set[int]) -> DemoServer:
    """A fresh demo server pinned to ``server_cpus`` (this thread is pinned there while it
    forks, so every thread the server starts inherits it), then this thread goes back to
    ``client_cpus``, which the tools inherit."""
    os.sched_setaffinity(0, server_cpus)
    try:
        server = DemoServer().start()
    finally:
        os.sched_setaffinity(0, client_cpus)
    return server


def scrape(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        return str(response.read().decode())


def warm_up(url: str, body: dict[str, Any], n: int = 4) -> None:
    """``n`` streamed requests read to the end, so no tool meets a cold server."""
    data = json.dumps(body).encode()
    for _ in range(n):
        request = urllib.request.Request(url + CHAT_PATH, data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()


def run_tree(argv: list[str], cwd: Path, log: Path, timeout_s: float, poll_s: float,
             env: dict[str, str] | None = None) -> tuple[int, TreeUsage, float]:
    """Run ``argv`` to its end (its output in ``log``), measuring its process tree:
    exit code, usage, wall seconds."""
    keep = {child.pid for child in psutil.Process().children()}  # the demo server
    started = time.monotonic()
    with open(log, "wb") as sink:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        monitor = TreeMonitor(proc.pid, poll_s).start()
        try:
            code = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            code = proc.wait()
        wall = time.monotonic() - started
        monitor.poll()
        killed = reap_orphans(keep)
        if killed:
            print(f"  (killed {len(killed)} leftover processes of the tool)")
    return code, monitor.finish(), wall


def run_tool(name: str, argv_for: Callable[[str, Path], list[str]], reader: Callable[[Path], ToolMeans],
             args: argparse.Namespace, out: Path, env: dict[str, str] | None
             ) -> tuple[ToolMeans, ServerMeans, TreeUsage, float] | None:
    """One tool against a fresh server; None (with the reason printed) if it failed."""
    work = out / name
    work.mkdir(parents=True, exist_ok=True)
    server = start_server(cpus(args.server_cpus), cpus(args.client_cpus))
    try:
        warm_up(server.url, chat_body(args.prompt_tokens, args.output_tokens))
        before = scrape(server.url)
        print(f"{name}: running {args.duration:g} s at {args.rate:g} req/s ...", flush=True)
        code, usage, wall = run_tree(argv_for(server.url, work), work, work / "console.log",
                                     args.duration + args.timeout_extra_s, args.poll_s, env)
        time.sleep(1.0)  # let the server finish the requests a tool cancelled
        after = scrape(server.url)
    finally:
        server.stop()
    (work / "metrics_before.txt").write_text(before)
    (work / "metrics_after.txt").write_text(after)
    if code != 0:
        print(f"{name}: exited with {code}; see {work / 'console.log'}")
    try:
        tool = reader(work)
    except (OSError, KeyError, IndexError, ValueError) as exc:
        print(f"{name}: no result to read ({type(exc).__name__}: {exc}); see {work / 'console.log'}")
        return None
    return tool, server_means(before, after), usage, wall


# --- the tables ---------------------------------------------------------------------------

def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _err(tool: float | None, server: float | None) -> float | None:
    return None if tool is None or server is None else tool - server


def accuracy_rows(tool: ToolMeans, server: ServerMeans, output_tokens: int) -> list[list[str]]:
    """Rows: tool, figure (its convention), tool mean, server mean, error (ms)."""
    rows = []
    pairs = [("ttft", tool.ttft_ms, server.ttft_ms, "TTFT"),
             ("tpot", tool.tpot_ms, server.tpot_ms, "TPOT"),
             ("e2e", tool.e2e_ms, server.e2e_ms, "E2E")]
    incl = tool.extra.get("tpot_incl_ttft_ms")
    if incl is not None:
        pairs.append(("tpot_incl_ttft", incl, server.tpot_incl_ttft_ms(output_tokens),
                      "(TTFT + (n-1) TPOT)/n"))
    for key, mine, theirs, series in pairs:
        rows.append([tool.tool, tool.conventions.get(key, key), _f(mine), f"{_f(theirs)} ({series})",
                     _f(_err(mine, theirs))])
    if tool.tool == "perfkit":
        for key, theirs, label in (("ttft_intended_ms", server.ttft_ms, "ttft_intended_ms: first token - "
                                    "intended send"),
                                   ("e2e_intended_ms", server.e2e_ms, "e2e_ms: response complete - "
                                    "intended send")):
            mine = tool.extra.get(key)
            rows.append([tool.tool, label, _f(mine), _f(theirs), _f(_err(mine, theirs))])
    return rows


def cost_row(tool: ToolMeans, server: ServerMeans, usage: TreeUsage, wall: float) -> list[str]:
    per_1000 = 1000.0 * usage.cpu_s / server.ok if server.ok else None
    return [tool.tool, tool.version, f"{tool.ok} / {server.ok}" + (f" (+{server.cut} cut)" if server.cut else ""),
            _f(usage.cpu_s, 1), f"{_f(usage.cpu_polled_s, 1)}", _f(per_1000, 0),
            _f(usage.peak_rss_bytes / 2**20, 0), str(usage.processes), _f(wall, 0),
            f"{_f(server.prompt_tokens, 0)} / {_f(server.output_tokens, 0)}"]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


Result = tuple[ToolMeans, ServerMeans, TreeUsage, float]
HEADLINE = (("ttft_err_ms", "TTFT error ms"), ("tpot_err_ms", "TPOT error ms"),
            ("e2e_err_ms", "E2E error ms"), ("cpu_s_per_1000", "client CPU s per 1,000 req"),
            ("peak_rss_mib", "peak RSS MiB (tree)"))


def headline(result: Result) -> dict[str, float | None]:
    """One pass of one tool: the errors tool - server (ms), CPU per 1,000 requests, peak RSS."""
    tool, server, usage, _ = result
    return {"ttft_err_ms": _err(tool.ttft_ms, server.ttft_ms),
            "tpot_err_ms": _err(tool.tpot_ms, server.tpot_ms),
            "e2e_err_ms": _err(tool.e2e_ms, server.e2e_ms),
            "cpu_s_per_1000": 1000.0 * usage.cpu_s / server.ok if server.ok else None,
            "peak_rss_mib": usage.peak_rss_bytes / 2**20}


def medians(passes: list[dict[str, Result]]) -> dict[str, dict[str, float | None]]:
    """Per tool, the median over the passes of each :func:`headline` figure."""
    out: dict[str, dict[str, float | None]] = {}
    for name in dict.fromkeys(name for results in passes for name in results):
        figures = [headline(results[name]) for results in passes if name in results]
        out[name] = {}
        for key, _ in HEADLINE:
            values = [v for f in figures if (v := f[key]) is not None]
            out[name][key] = median(values) if values else None
        out[name]["passes"] = float(len(figures))
    return out


def verdict(figures: dict[str, dict[str, float | None]]) -> list[str]:
    """The issue's bar: perfkit's |TTFT| and |E2E| error no worse than each peer's, its CPU
    per 1,000 requests below each peer's."""
    if "perfkit" not in figures:
        return []
    lines = []
    mine = figures["perfkit"]
    for peer in (p for p in figures if p != "perfkit"):
        theirs = figures[peer]
        for key, label in (("ttft_err_ms", "|TTFT error| ms"), ("e2e_err_ms", "|E2E error| ms"),
                           ("cpu_s_per_1000", "CPU s per 1,000 req")):
            a, b = mine[key], theirs[key]
            if a is None or b is None:
                lines.append(f"{label} vs {peer}: not measured")
                continue
            if key.endswith("_err_ms"):
                a, b, ok = abs(a), abs(b), abs(a) <= abs(b)
            else:
                ok = a < b
            lines.append(f"{label} vs {peer}: perfkit {a:.2f} vs {b:.2f} -> {'ok' if ok else 'NOT MET'}")
    return lines


def setup_line(args: argparse.Namespace) -> str:
    return (f"constant {args.rate:g} req/s for {args.duration:g} s, streaming {CHAT_PATH}, "
            f"{args.prompt_tokens}-token prompts, {args.output_tokens} output tokens; server on CPUs "
            f"{args.server_cpus}, clients on {args.client_cpus}, niceness {os.getpriority(os.PRIO_PROCESS, 0)}")


def report(results: dict[str, Result], args: argparse.Namespace) -> str:
    """One pass: every figure of every tool against the server's, and what each client cost."""
    acc: list[list[str]] = []
    cost: list[list[str]] = []
    for tool, server, usage, wall in results.values():
        acc += accuracy_rows(tool, server, args.output_tokens)
        cost.append(cost_row(tool, server, usage, wall))
    return "\n".join([
        "Means in ms; error = tool - server (server: the demo's own /metrics histograms, "
        "difference of the scrapes before and after the tool)", "",
        markdown(["tool", "figure (the tool's convention)", "tool", "server", "error"], acc), "",
        markdown(["tool", "version", "ok (tool / server 200)", "client CPU s (rusage)",
                  "CPU s (polled)", "CPU s per 1,000 req", "peak RSS MiB (tree)", "processes",
                  "wall s", "server prompt / output tokens per req"], cost)])


def summary(passes: list[dict[str, Result]]) -> str:
    """Medians over the passes, and the verdict on them."""
    figures = medians(passes)
    rows = [[name, *(_f(f[key], 0 if key in ("cpu_s_per_1000", "peak_rss_mib") else 2)
                     for key, _ in HEADLINE), _f(f["passes"], 0)] for name, f in figures.items()]
    return "\n".join([f"Medians over {len(passes)} pass(es):", "",
                      markdown(["tool", *(label for _, label in HEADLINE), "passes"], rows), "",
                      *verdict(figures)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers-venv", action="append", default=[], metavar="DIR",
                        help="a virtual environment holding guidellm and/or aiperf (repeatable)")
    parser.add_argument("--guidellm", metavar="BIN", help="guidellm executable")
    parser.add_argument("--aiperf", metavar="BIN", help="aiperf executable")
    parser.add_argument("--tools", default="perfkit,guidellm,aiperf", help="which tools, in this order")
    parser.add_argument("--rate", type=float, default=2.0, help="requests/s (default 2)")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of load per tool (default 40)")
    parser.add_argument("--prompt-tokens", type=int, default=64, help="prompt length in char-model tokens")
    parser.add_argument("--output-tokens", type=int, default=64, help="output tokens per request")
    parser.add_argument("--server-cpus", default="0", help="CPUs of the demo server (default 0)")
    parser.add_argument("--client-cpus", default=None, help="CPUs of the tools (default: all others)")
    parser.add_argument("--nice", type=int, default=0,
                        help="run the server and the tools at this niceness (inherited; below 0 needs "
                             "root): on a shared machine, -10 keeps other work from showing in the figures")
    parser.add_argument("--poll-s", type=float, default=0.1, help="RSS polling interval (default 0.1)")
    parser.add_argument("--timeout-extra-s", type=float, default=300.0,
                        help="a tool is killed after --duration plus this (default 300)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="passes over the tools, each in an order rotated by one (default 1); "
                             "the summary gives the medians")
    parser.add_argument("--out", type=Path, help="keep each tool's files here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.client_cpus is None:
        rest = sorted(os.sched_getaffinity(0) - cpus(args.server_cpus))
        if not rest:
            parser.error("no CPU left for the clients: give --server-cpus and --client-cpus")
        args.client_cpus = ",".join(map(str, rest))
    if args.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        except OSError as exc:
            print(f"note: --nice {args.nice} refused ({exc}); running at the default priority")
    load = os.getloadavg()[0]
    if load > 2.0:
        print(f"warning: load average {load:.1f}: other work on this machine will show in the figures")
    out = args.out or Path(tempfile.mkdtemp(prefix="llm_vs_peers_"))
    out.mkdir(parents=True, exist_ok=True)
    if not become_subreaper():
        print("note: not a subreaper here; orphaned processes of a tool are not counted")
    tok = write_char_tokenizer(out / "char-tokenizer", VOCAB, UNKNOWN)
    peers = {"guidellm": find_peer("guidellm", args.guidellm, args.peers_venv),
             "aiperf": find_peer("aiperf", args.aiperf, args.peers_venv)}
    plans: dict[str, tuple[Callable[[str, Path], list[str]], Callable[[Path], ToolMeans],
                           dict[str, str] | None]] = {}
    for name in args.tools.split(","):
        if name == "perfkit":
            from importlib.metadata import version
            pk = version("perfkit")
            plans[name] = (partial(perfkit_argv, args),
                           lambda w: read_perfkit(w / "summary.json", pk), None)
        elif name in peers:
            binary = peers[name]
            if binary is None:
                print(f"{name}: skipped, not found (give --{name} BIN or --peers-venv DIR with bin/{name}); "
                      f"nothing is installed by this script")
                continue
            if name == "guidellm":
                plans[name] = (partial(guidellm_argv, binary, args, tok),
                               lambda w: read_guidellm(w / "guidellm.json"), peer_env(offline=True))
            else:
                plans[name] = (partial(aiperf_argv, binary, args, tok), read_aiperf,
                               peer_env(offline=False))
        else:
            parser.error(f"unknown tool {name!r}")
    passes: list[dict[str, Result]] = []
    order = list(plans)
    for i in range(args.repeat):
        rotated = order[i % len(order):] + order[:i % len(order)] if order else []
        work = out / f"pass{i + 1}" if args.repeat > 1 else out
        results: dict[str, Result] = {}
        for name in rotated:
            argv_for, reader, tool_env = plans[name]
            result = run_tool(name, argv_for, reader, args, work, tool_env)
            if result is not None:
                results[name] = result
        passes.append(results)
        print(f"\npass {i + 1} of {args.repeat} ({', '.join(rotated)})\n\n{report(results, args)}\n")
    print(f"{setup_line(args)}\n\n{summary(passes)}\n\nfiles: {out}")
    if args.json:
        args.json.write_text(json.dumps(
            {"setup": setup_line(args), "medians": medians(passes),
             "passes": [{name: {"tool": asdict(t), "server": asdict(s), "usage": asdict(u), "wall_s": w}
                         for name, (t, s, u, w) in results.items()} for results in passes]}, indent=1))
    return 0 if any(passes) else 1

if __name__ == "__main__":
    sys.exit(main())
