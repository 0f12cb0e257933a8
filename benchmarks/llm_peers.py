"""The pure parts of ``llm_vs_guidellm_aiperf.py``, importable without starting anything.

- :class:`Hist` and :func:`server_means`: a Prometheus histogram read from the demo's
  ``/metrics`` text, the difference of two scrapes (buckets, sum, count) and its mean;
- :func:`read_perfkit`, :func:`read_guidellm`, :func:`read_aiperf`: each tool's own output
  file, reduced to the same :class:`ToolMeans` (milliseconds), with the convention each
  figure follows;
- :class:`TreeMonitor`: CPU seconds and peak RSS of a process and all its descendants;
- :func:`write_char_tokenizer`: a Hugging Face ``tokenizer.json`` with one token per
  character, the demo char model's own tokenization, for the peers' ``--tokenizer``.
"""
from __future__ import annotations

import json
import os
import resource
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import psutil

from perfkit import names as N
from perfkit.ingest import promtext

#: The server-side series each client figure is compared with (demo/metrics.py).
SERVER_TTFT = N.DEMO_LLM_TTFT                # arrival -> first token generated
SERVER_TPOT = N.DEMO_LLM_TPOT                # (last token - first token) / (tokens - 1)
SERVER_E2E = N.DEMO_REQUEST_DURATION         # arrival -> response written, per endpoint/status
CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Hist:
    """One histogram series: cumulative bucket counts by upper bound, sum and count."""

    buckets: Mapping[float, float]
    sum: float
    count: float

    def minus(self, before: "Hist") -> "Hist":
        """The observations made between two scrapes of the same series."""
        return Hist({le: n - before.buckets.get(le, 0.0) for le, n in self.buckets.items()},
                    self.sum - before.sum, self.count - before.count)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count > 0 else None


def histogram(text: str, name: str, labels: Mapping[str, str] | None = None) -> Hist:
    """The histogram ``name`` (with exactly these ``labels``, besides ``le``) in an exposition;
    an empty one when the series was never observed (prometheus_client omits labelled
    series until their first observation)."""
    want = dict(labels or {})
    buckets: dict[float, float] = {}
    total = count = 0.0
    for sample, sample_labels, value, _ts in promtext.parse(text).as_records():
        if sample == name + "_bucket":
            rest = {k: v for k, v in sample_labels.items() if k != "le"}
            if rest == want:
                buckets[float(sample_labels["le"])] = value
        elif sample_labels == want and sample == name + "_sum":
            total = value
        elif sample_labels == want and sample == name + "_count":
            count = value
    return Hist(buckets, total, count)


def counter(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """A counter's value (``name`` as exposed, e.g. ``..._total``); 0 when absent."""
    want = dict(labels or {})
    for sample, sample_labels, value, _ts in promtext.parse(text).as_records():
        if sample == name and sample_labels == want:
            return value
    return 0.0


@dataclass(frozen=True)
class ServerMeans:
    """The server's own view of one tool's load, from two ``/metrics`` scrapes (ms)."""

    ttft_ms: float | None
    tpot_ms: float | None
    e2e_ms: float | None
    ttft_n: int
    tpot_n: int
    ok: int                      # 200 answers on the chat endpoint
    cut: int                     # 499: the client closed the stream before its end
    prompt_tokens: float | None  # per TTFT observation: the rendered chat prompt
    output_tokens: float | None  # per TTFT observation

    def tpot_incl_ttft_ms(self, output_tokens: int) -> float | None:
        """Server-side match of a TPOT that includes TTFT, (last token - arrival) / tokens:
        with every request generating exactly ``output_tokens``, its mean is
        (mean TTFT + (tokens - 1) x mean TPOT) / tokens."""
        if self.ttft_ms is None or self.tpot_ms is None or output_tokens < 1:
            return None
        return (self.ttft_ms + (output_tokens - 1) * self.tpot_ms) / output_tokens


def server_means(before: str, after: str, path: str = CHAT_PATH) -> ServerMeans:
    """Means of the observations the server made between the ``before`` and ``after`` scrapes."""
    def diff(name: str, labels: Mapping[str, str] | None = None) -> Hist:
        return histogram(after, name, labels).minus(histogram(before, name, labels))

    def ms(h: Hist) -> float | None:
        return None if h.mean is None else 1000.0 * h.mean

    def delta(name: str, labels: Mapping[str, str] | None = None) -> float:
        return counter(after, name, labels) - counter(before, name, labels)

    ttft, tpot = diff(SERVER_TTFT), diff(SERVER_TPOT)
    e2e = diff(SERVER_E2E, {"endpoint": path, "status": "200"})
    cut = diff(SERVER_E2E, {"endpoint": path, "status": "499"})
    prompt = delta(N.DEMO_LLM_PROMPT_TOKENS + "_total")
    generated = delta(N.DEMO_LLM_TOKENS_GENERATED + "_total")
    per = (lambda v: v / ttft.count) if ttft.count else (lambda v: None)
    return ServerMeans(ms(ttft), ms(tpot), ms(e2e), int(ttft.count), int(tpot.count),
                       int(e2e.count), int(cut.count), per(prompt), per(generated))


@dataclass
class ToolMeans:
    """One tool's own means (ms) and the convention each follows, as the tool defines it."""

    tool: str
    version: str
    ok: int
    errors: int
    ttft_ms: float | None
    tpot_ms: float | None            # excluding TTFT: (last - first token) / (tokens - 1), per request
    e2e_ms: float | None
    conventions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, float | None] = field(default_factory=dict)   # other forms, ms


def _mean(block: Any) -> float | None:
    return None if not isinstance(block, dict) or block.get("mean") is None else float(block["mean"])


def read_perfkit(summary_path: Path, version: str) -> ToolMeans:
    """perfkit's ``--summary-json``: TTFT and E2E from the actual send (as the peers time
    them); the forms from the intended send are kept in ``extra``."""
    s = json.loads(Path(summary_path).read_text())
    errors = sum(int(v) for v in (s.get("errors") or {}).values())
    extra = {"ttft_intended_ms": _mean(s.get("ttft_intended_ms")),
             "e2e_intended_ms": _mean(s.get("e2e_ms") or s.get("latency_ms")),
             "tpot_incl_ttft_ms": _mean(s.get("tpot_incl_ttft_ms"))}
    return ToolMeans(
        "perfkit", version, int(s.get("ok") or 0), errors,
        _mean(s.get("ttft_ms")), _mean(s.get("tpot_ms")), _mean(s.get("service_ms")),
        {"ttft": "ttft_ms: first token - actual send",
         "tpot": "tpot_ms: (response complete - first token) / (tokens - 1), per-request mean",
         "e2e": "service_ms: response complete - actual send",
         "tpot_incl_ttft": "tpot_incl_ttft_ms: (response complete - intended send) / tokens"},
        extra)


def read_guidellm(report_path: Path) -> ToolMeans:
    """guidellm's ``--output kind=json`` report (first benchmark, successful requests).

    guidellm's ``time_per_output_token_ms`` INCLUDES the TTFT, (last token - request start)
    / tokens; its ``inter_token_latency_ms`` is the per-request (last - first token) /
    (tokens - 1), the quantity the server's TPOT histogram holds."""
    report = json.loads(Path(report_path).read_text())
    bench = report["benchmarks"][0]
    metrics = bench["metrics"]

    def ok_mean(key: str, scale: float = 1.0) -> float | None:
        value = _mean((metrics.get(key) or {}).get("successful"))
        return None if value is None else value * scale

    totals = metrics.get("request_totals") or {}
    return ToolMeans(
        "guidellm", str(report.get("metadata", {}).get("guidellm_version", "?")),
        int(totals.get("successful") or 0), int(totals.get("errored") or 0),
        ok_mean("time_to_first_token_ms"), ok_mean("inter_token_latency_ms"),
        ok_mean("request_latency", 1000.0),
        {"ttft": "time_to_first_token_ms: first token - request start",
         "tpot": "inter_token_latency_ms: (last - first token) / (tokens - 1), per-request mean",
         "e2e": "request_latency: request end - request start",
         "tpot_incl_ttft": "time_per_output_token_ms: (last token - request start) / tokens"},
        {"tpot_incl_ttft_ms": ok_mean("time_per_output_token_ms"),
         "incomplete": float(totals.get("incomplete") or 0)})


_AIPERF_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "sec": 1000.0, "s": 1000.0}


def read_aiperf(artifact_dir: Path) -> ToolMeans:
    """AIPerf's ``profile_export_aiperf.json`` in its artifact directory.

    Its ``inter_token_latency`` is a per-request mean, (request latency - TTFT) /
    (output tokens - 1); ``request_latency`` ends at the last content chunk."""
    summary = json.loads((Path(artifact_dir) / "profile_export_aiperf.json").read_text())

    def avg_ms(key: str) -> float | None:
        block = summary.get(key)
        if not isinstance(block, dict) or block.get("avg") is None:
            return None
        return float(block["avg"]) * _AIPERF_TO_MS[str(block.get("unit", "ms"))]

    def total(key: str) -> int:
        block = summary.get(key)
        return int(block["avg"]) if isinstance(block, dict) and block.get("avg") is not None else 0

    errors = summary.get("error_summary") or []
    n_errors = sum(int(e.get("count", 0)) for e in errors if isinstance(e, dict))
    return ToolMeans(
        "aiperf", str(summary.get("aiperf_version", "?")), total("request_count"), n_errors,
        avg_ms("time_to_first_token"), avg_ms("inter_token_latency"), avg_ms("request_latency"),
        {"ttft": "time_to_first_token: first content chunk - request start",
         "tpot": "inter_token_latency: (request latency - TTFT) / (tokens - 1), per-request mean",
         "e2e": "request_latency: last content chunk - request start"})


@dataclass(frozen=True)
class TreeUsage:
    """What a process tree used: CPU seconds (user + system) and the peak of its summed RSS."""

    cpu_s: float          # from the kernel's accounting of reaped children (getrusage)
    cpu_polled_s: float   # the sum of each process's last polled cpu_times (a cross-check)
    peak_rss_bytes: int
    processes: int        # distinct processes seen in the tree


def children_cpu_s() -> float:
    """User + system CPU of every child this process has reaped (and, recursively, theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux PR_SET_CHILD_SUBREAPER),
    so that a grandchild whose parent exits without waiting is still reaped here and counted
    by :func:`children_cpu_s`. False where unavailable."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class TreeMonitor:
    """Poll a process tree every ``interval_s``: the summed RSS (its peak) and each process's
    CPU times. Start it right after the root is spawned; :meth:`finish` after the root is
    waited for. RSS sums count pages shared between processes once per process."""

    def __init__(self, root_pid: int, interval_s: float = 0.1) -> None:
        self.root_pid, self.interval_s = root_pid, interval_s
        self.peak_rss = 0
        self.seen: dict[tuple[int, float], float] = {}   # (pid, create time) -> cpu seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu_before = children_cpu_s()

    def start(self) -> "TreeMonitor":
        self._thread.start()
        return self

    def poll(self) -> None:
        """One sample of the tree (the root and every descendant alive now)."""
        try:
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        rss = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss += proc.memory_info().rss
                    self.seen[(proc.pid, proc.create_time())] = times.user + times.system
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval_s)

    def finish(self) -> TreeUsage:
        """Stop polling; the tree's usage (call after the root has been waited for and any
        orphans of the tree reaped, see :func:`reap_orphans`)."""
        self._stop.set()
        self._thread.join()
        return TreeUsage(children_cpu_s() - self._cpu_before, sum(self.seen.values()),
                         self.peak_rss, len(self.seen))


def reap_orphans(keep: set[int], grace_s: float = 10.0) -> list[int]:
    """Wait for (then kill) every child of this process whose pid is not in ``keep`` (the
    children it had before the tool started): descendants of the tool that were orphaned and
    reparented here (this process is a subreaper), so their CPU lands in
    :func:`children_cpu_s`. Returns the pids that had to be killed."""
    import time

    killed = []
    deadline = time.monotonic() + grace_s
    for child in psutil.Process().children():
        if child.pid in keep:
            continue
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except psutil.TimeoutExpired:
            child.kill()
            child.wait(5)
            killed.append(child.pid)
    return killed


def write_char_tokenizer(directory: Path, vocab: list[str], unknown: str) -> Path:
    """A Hugging Face tokenizer directory (``tokenizer.json`` + ``tokenizer_config.json``)
    with one token per character of ``vocab`` (others become ``unknown``), decoded by
    concatenation: what the demo char model counts, so 64 tokens are 64 characters."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer: dict[str, Any] = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"},
                          "behavior": "Isolated", "invert": False},
        "post_processor": None, "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": {ch: i for i, ch in enumerate(vocab)},
                  "unk_token": unknown},
    }
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer))
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": unknown,
         "model_max_length": 1_000_000}))
    return directory


def peer_env(offline: bool = True, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a peer runs in: no telemetry and, with ``offline``, the Hugging Face
    Hub switched off (the tokenizer is a local directory). AIPerf 0.13.0 cannot take a local
    tokenizer directory in offline mode (it then looks the path up in the Hub cache), so it
    runs with ``offline=False``; it recognizes the absolute path as local and loads it."""
    env = dict(os.environ if base is None else base)
    env.update(HF_HUB_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
    if offline:
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env
