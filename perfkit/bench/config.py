"""What a run is asked to do (:class:`BenchConfig`), its validation, and its secret-free form.

Secrets stay in this module's in-memory objects: a bearer token is read from the
environment variable named by ``bearer_env`` and URL user-info becomes an
``Authorization: Basic`` header only when the request bytes are built
(:meth:`BenchConfig.request_headers`); everything stored or printed goes through
:mod:`perfkit.redact` (:attr:`Target.public_url`, :meth:`BenchConfig.public`).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from perfkit.bench.choices import AMBIGUOUS_SLO_KEYS, PATTERNS, PROTOCOLS, SLO_KEYS
from perfkit.bench.payload import PayloadSpec, is_completions_path
from perfkit.bench.schedule import Phases, Stage
from perfkit.bench.segments import Segment, parse_start
from perfkit.bench.workload import Workload
from perfkit.errors import UsageError
from perfkit.redact import redact_headers, redact_text, redact_url, split_userinfo

DEFAULT_PATHS = {"http-json": "/api/v1/infer", "kserve-v2": "/v2/models/{model}/infer",
                 "openai": "/v1/chat/completions"}
DEFAULT_MODELS = {"http-json": "demo", "kserve-v2": "digits", "openai": "perfkit-char-lm"}


@dataclass(frozen=True)
class Target:
    """``--target`` split for the wire. ``path`` (its query may hold a key) and ``url`` (the
    URL as given, credentials included, for the live collectors) stay in memory and out
    of ``repr``; ``public_url`` is what is stored and printed."""

    scheme: str
    host: str
    port: int
    path: str = field(repr=False)  # path + query, as sent on the request line
    public_url: str = ""           # redacted (perfkit.redact)
    url: str = field(default="", repr=False)


def parse_target(url: str, protocol: str, model: str) -> Target:
    """Check and split ``--target``; an empty path gets the protocol's default endpoint."""
    if not url or not isinstance(url, str):
        raise UsageError("--target URL is required (e.g. http://127.0.0.1:8000)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"malformed --target URL {redact_url(url)!r}: {redact_text(str(exc))}") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"malformed --target URL {redact_url(url)!r}: scheme must be http or https")
    if not parts.hostname:
        raise UsageError(f"malformed --target URL {redact_url(url)!r}: no host")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    path = parts.path or "/"
    if path == "/":
        path = DEFAULT_PATHS[protocol].format(model=model)
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname, port, path, redact_url(url), url)


def check_metrics_url(url: str) -> None:
    """``--metrics-url`` must be an http(s) URL with a host; the error shows it redacted."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(f"malformed --metrics-url {redact_url(url)!r}: expected http(s)://HOST[:PORT]/PATH")


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` -> ``("Name", "value")``. Errors never quote a value (it may be a
    credential) and quote a name only through the redactor."""
    if ":" not in text:
        raise UsageError("--header must look like 'Name: value' (no ':' in it)")
    name, value = text.split(":", 1)
    name = name.strip()
    if not name or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        raise UsageError(f"--header name {redact_text(name[:40])!r} is not a valid HTTP header name")
    if "\r" in value or "\n" in value:
        raise UsageError(f"--header {name}: value may not contain line breaks")
    return name, value.strip()


def parse_slo(text: str | None) -> dict[str, float]:
    """``"ttft_ms=500,tpot_ms=50"`` -> ``{"ttft_ms": 500.0, "tpot_ms": 50.0}``."""
    out: dict[str, float] = {}
    if not text:
        return out
    for part in text.split(","):
        if "=" not in part:
            raise UsageError(f"--slo entries look like key=value, got {part!r}")
        key, value = (s.strip() for s in part.split("=", 1))
        if key in AMBIGUOUS_SLO_KEYS:
            raise UsageError(f"--slo key {key!r} is ambiguous: {AMBIGUOUS_SLO_KEYS[key]}; "
                             f"write one of {', '.join(SLO_KEYS)}")
        if key not in SLO_KEYS:
            raise UsageError(f"--slo key {key!r} unknown (choose from {', '.join(SLO_KEYS)})")
        try:
            v = float(value)
        except ValueError:
            raise UsageError(f"--slo {key}: {value!r} is not a number") from None
        if not v > 0 or not math.isfinite(v):
            raise UsageError(f"--slo {key} must be > 0")
        out[key] = v
    return out


@dataclass
class BenchConfig:
    """Everything one run needs. ``stages`` run back to back."""

    target: str = ""             # URL as given, credentials included (in memory only)
    protocol: str = "http-json"  # one of PROTOCOLS
    method: str = "POST"
    stages: list[Stage] = field(default_factory=lambda: [Stage()])
    warmup_s: float = 0.0        # first seconds of the schedule: load sent, left out of the statistics
    cooldown_s: float = 0.0      # last seconds of the schedule: likewise (both taken out of it)
    workers: int = 1             # load processes sharing the one schedule
    payload: PayloadSpec = field(default_factory=PayloadSpec)
    workload: Workload = field(default_factory=Workload)  # token-true LLM workload (perfkit.bench.workload)
    model: str | None = None     # None: the protocol's demo-server model (DEFAULT_MODELS)
    max_tokens: int | None = None  # openai: every body's max_tokens (None: 64 in drawn bodies, files as written)
    temperature: float | None = None  # openai: every body's temperature (None: as the body has it)
    top_p: float | None = None   # openai: every body's top_p (None: as the body has it)
    stream: bool | None = None   # openai: stream answers (None: yes; file bodies as written)
    headers: list[tuple[str, str]] = field(default_factory=list)
    bearer_env: str | None = None  # name of the variable holding a bearer token
    timeout_s: float = 30.0      # per request, connect included
    max_connections: int = 20000  # per worker
    slo_p99_ms: float | None = None
    slo: dict[str, float] = field(default_factory=dict)  # goodput bounds, SLO_KEYS
    label: str | None = None     # free text; k=v pairs become runs.labels
    db: str | None = None
    summary_json: str | None = None
    quiet: bool = False          # no progress bar
    seed: int = 0
    collect: bool = True         # live telemetry collectors
    target_pid: int | None = None  # server process whose CPU and memory are sampled
    metrics_urls: list[str] = field(default_factory=list)  # scraped instead of <target>/metrics (in memory)
    # Validity thresholds (summary["validity"])
    min_duration_s: float = 10.0
    min_queries: int = 100
    lag_p99_limit_ms: float = 10.0    # generator kept up: schedule-lag p99 at most this
    late_fraction_limit: float = 0.01  # ... and at most this share of requests late
    late_threshold_ms: float = 5.0    # "late" means sent more than this after intended
    confidence: float = 0.95          # of the latency percentile intervals
    scenario_path: str | None = None  # where the stages came from, if a file
    pattern_name: str | None = None   # overrides the pattern shown (scenario)
    tags: dict[str, str] = field(default_factory=dict)  # labels added by sweep
    segment: str | None = None        # "I/N": this instance's share of the schedule (perfkit.bench.segments)
    start_at: str | None = None       # shared wall-clock t0: Unix seconds or "+S"
    clock_ref: str | None = None      # URL whose answers carry the time, for the clock check

    @property
    def pattern(self) -> str:
        if self.pattern_name:
            return self.pattern_name
        return self.stages[0].pattern if len(self.stages) == 1 else "scenario"

    @property
    def closed(self) -> bool:
        return any(s.pattern == "closed" for s in self.stages)

    def validate(self) -> Target:
        """Raise UsageError on anything that cannot run; return the parsed target."""
        if self.protocol not in PROTOCOLS:
            raise UsageError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if not self.model:
            self.model = DEFAULT_MODELS[self.protocol]
        target = parse_target(self.target, self.protocol, self.model)
        if not self.stages:
            raise UsageError("no stages to run")
        for k, st in enumerate(self.stages):
            where = f"stage {k}: " if len(self.stages) > 1 else ""
            if st.pattern not in PATTERNS:
                raise UsageError(f"{where}--pattern must be one of {', '.join(PATTERNS)}, got {st.pattern!r}")
            if st.pattern == "closed":
                if len(self.stages) > 1:
                    raise UsageError("a closed-loop stage cannot be mixed with other stages")
                if st.concurrency < 1:
                    raise UsageError(f"{where}--concurrency must be >= 1 for the closed pattern")
                if st.think_s < 0:
                    raise UsageError(f"{where}--think-s must be >= 0")
            if st.pattern in ("constant", "poisson", "gamma", "burst") and not st.rate_rps > 0:
                if not (st.pattern == "burst" and st.rate_rps == 0):
                    raise UsageError(f"{where}--rate must be > 0, got {st.rate_rps:g}")
            if st.pattern not in ("step", "replay") and not st.duration_s > 0:
                raise UsageError(f"{where}--duration must be > 0, got {st.duration_s:g}")
            for name in ("rate_rps", "duration_s"):
                if not math.isfinite(getattr(st, name)):
                    raise UsageError(f"{where}{name} must be a finite number")
            st.offsets(0)  # each pattern checks its own knobs
        Phases(self.warmup_s, self.cooldown_s, sum(st.length_s() for st in self.stages)).check()
        if self.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {self.workers}")
        if not self.timeout_s > 0:
            raise UsageError(f"--timeout-s must be > 0, got {self.timeout_s}")
        if self.slo_p99_ms is not None and not self.slo_p99_ms > 0:
            raise UsageError(f"--slo-p99-ms must be > 0, got {self.slo_p99_ms}")
        if self.max_connections < 1:
            raise UsageError("--max-connections must be >= 1")
        for url in self.metrics_urls:
            check_metrics_url(url)
        if self.bearer_env and self.bearer_env not in os.environ:
            raise UsageError(f"--bearer-env {self.bearer_env}: no such environment variable")
        given = [k for k, _ in self.headers if k.lower() == "authorization"]
        given += ["--bearer-env"] if self.bearer_env else []
        given += ["user-info in --target"] if "@" in urlsplit(self.target).netloc else []
        if len(given) > 1:
            raise UsageError(f"credentials given more than once ({', '.join(given)}); give one of them")
        if not re.fullmatch(r"[A-Z]+", self.method):
            raise UsageError(f"--method {self.method!r} is not an HTTP method")
        if self.segment is not None:
            Segment.parse(self.segment)
            if self.closed:
                raise UsageError("--segment splits an open-loop schedule; a closed loop has none")
        if self.start_at is not None:
            parse_start(self.start_at)
        self.payload.validate()
        self._check_body_options()
        self.workload.check(self.protocol, self.payload.kind, not is_completions_path(target.path), self.max_tokens)
        return target

    def _check_body_options(self) -> None:
        """The openai body options: refused where they cannot apply, checked where they do."""
        given = {"--max-tokens": self.max_tokens, "--temperature": self.temperature, "--top-p": self.top_p,
                 "--stream/--no-stream": self.stream}
        named = [flag for flag, value in given.items() if value is not None]
        if named and self.protocol != "openai":
            raise UsageError(f"{', '.join(named)} apply to --protocol openai only; {self.protocol} bodies "
                             "have no such field (set it in --payload-template or the --payload file)")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise UsageError(f"--max-tokens must be >= 1, got {self.max_tokens}")
        if self.temperature is not None and not (0 <= self.temperature and math.isfinite(self.temperature)):
            raise UsageError(f"--temperature must be a finite number >= 0, got {self.temperature:g}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UsageError(f"--top-p must be within (0, 1], got {self.top_p:g}")

    @property
    def streams(self) -> bool:
        """Whether requests ask for a stream of tokens (openai, unless --no-stream)."""
        return self.protocol == "openai" and self.stream is not False

    def body_overrides(self) -> dict[str, Any]:
        """The openai body options that were given, as :func:`perfkit.bench.payload.apply_overrides` keywords."""
        given = {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p,
                 "stream": self.stream}
        return {k: v for k, v in given.items() if v is not None}

    def request_headers(self) -> list[tuple[str, str]]:
        """Headers as sent, credentials included (in memory only, never stored): the
        bearer token of ``bearer_env``, or the target URL's user-info as Basic auth."""
        out = list(self.headers)
        if self.bearer_env:
            out.append(("Authorization", f"Bearer {os.environ[self.bearer_env]}"))
        out.extend(split_userinfo(self.target)[1].items())
        return out

    def public(self) -> dict[str, Any]:
        """The secret-free configuration stored as ``runs.scenario``."""
        d = asdict(self)
        d["target"] = redact_url(self.target)
        d["headers"] = redact_headers(self.headers)
        d["metrics_urls"] = [redact_url(u) for u in self.metrics_urls]
        d["clock_ref"] = redact_url(self.clock_ref) if self.clock_ref else None
        d.pop("db", None)
        d.pop("quiet", None)
        d["pattern"] = self.pattern
        return d
