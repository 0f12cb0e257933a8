"""Multi-stage scenarios from TOML, validated with errors that name the file and key path.

```toml
target = "http://127.0.0.1:8000"
protocol = "http-json"          # http-json | kserve-v2 | openai
label = "hardware=T4"
seed = 1
max_tokens = 64                 # openai body options (also temperature, top_p, stream = false)
warmup_s = 5                    # sent, stored, excluded from the statistics (also cooldown_s)
metrics_urls = ["http://127.0.0.1:8002/metrics"]  # scraped instead of <target>/metrics
[payload]
kind = "outliers"               # fixed | normal | longtail | outliers | path/to/bodies.jsonl
mean = 64
outlier_fraction = 0.02
```

or, for ``protocol = "openai"``, a token-true workload (:mod:`perfkit.bench.workload`; the
keys of ``--prompt-tokens``, ``--output-tokens``, ``--tokenizer``, ``--dataset``,
``--dataset-columns``, ``--turns``, ``--ignore-eos``, with the same SPEC strings; a
length may also be a plain integer):

```toml
[workload]
prompt_tokens = "normal:512,64"
output_tokens = 128
tokenizer = "tok/tokenizer.json"     # default: perfkit-char-lm, the demo model's
ignore_eos = true
turns = 1                            # chat: turns per conversation
# dataset = "prompts.csv"            # one body per row (.jsonl/.json/.csv/.parquet), or a
# dataset_columns = "prompt=question"  Mooncake trace's lengths (a replay stage's trace
#                                      sets the timing only)
```

and the stages:

```toml
[[stage]]
pattern = "constant"
rate_rps = 50
duration_s = 10
[[stage]]
pattern = "ramp"
from_rps = 50
to_rps = 200
duration_s = 20
```
Stages run back to back. Unknown keys are errors (a typo must not silently
fall back to a default). Relative paths (a stage's ``trace``, the workload's ``dataset``,
``tokenizer`` and ``empirical:FILE`` lengths) are relative to the scenario file. Flags given
with the file override its keys. A refusal names the file, the line and the key.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from perfkit.bench import datasets, lengths
from perfkit.bench.config import BenchConfig, parse_slo
from perfkit.bench.inputs import read_text
from perfkit.bench.payload import PayloadSpec
from perfkit.bench.schedule import PATTERNS, Stage
from perfkit.bench.tokens import CHAR_TOKENIZER
from perfkit.bench.workload import Workload
from perfkit.errors import InputError, UsageError

_TOP = {"target", "protocol", "method", "workers", "model", "max_tokens", "headers", "bearer_env",
        "timeout_s", "max_connections", "slo_p99_ms", "slo", "label", "seed", "min_duration_s",
        "min_queries", "payload", "stage", "metrics_urls", "warmup_s", "cooldown_s", "temperature", "top_p",
        "stream", "workload"}
_TABLES = ("payload", "stage", "headers", "slo", "metrics_urls", "workload")
# Friendly aliases: rate -> rate_rps, duration -> duration_s.
_STAGE_ALIASES = {"rate": "rate_rps", "duration": "duration_s", "think": "think_s"}
# Flags named in shared refusals (BenchConfig.validate, the workload's parsers), as the file's keys;
# other flags are their key with '-' as '_' (--max-tokens: max_tokens).
_FLAG_KEYS = {"--stream/--no-stream": "stream", "--payload-template": "payload.template",
              "--metrics-url": "metrics_urls", "--header": "headers",
              **{"--" + f.name.replace("_", "-"): "workload." + f.name for f in dataclasses.fields(Workload)}}
_FLAG = re.compile(r"--[a-z][a-z0-9-]*(?:/--no-stream)?")
_EMPIRICAL = re.compile(r"(\s*empirical:)(.*?)(,\s*max\s*=[^,]*)?$")


def _fields(cls: Any) -> dict[str, Any]:
    return {f.name: f.type for f in dataclasses.fields(cls)}


class _Source:
    """The scenario file's text, for errors that name the file and the line of a key."""

    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text

    def line_of(self, key: str, occurrence: int = 0) -> int | None:
        """Best-effort line number of the n-th ``key =`` (or ``[key]`` table)."""
        k = re.escape(key)
        hits = [i + 1 for i, line in enumerate(self.text.splitlines())
                if re.match(rf"\s*({k}\s*=|\[\[?\s*{k}\s*\]\]?)", line)]
        return hits[occurrence] if occurrence < len(hits) else (hits[0] if hits else None)

    def error(self, key: str | None, problem: str, occurrence: int = 0) -> InputError:
        return InputError(str(self.path), None if key is None else self.line_of(key, occurrence), problem)

    def refusal(self, exc: UsageError, key_path: str | None = None) -> InputError:
        """A shared check's refusal (worded for flags) in the file's terms: each flag as its
        key, at the line of the first key named; ``key_path`` is named if the message does not."""
        keys: list[str] = []

        def key(m: re.Match[str]) -> str:
            keys.append(_FLAG_KEYS.get(m.group(0), m.group(0)[2:].replace("-", "_")))
            return keys[-1]

        problem = _FLAG.sub(key, str(exc))
        if key_path:
            problem = problem if key_path in problem else f"{key_path}: {problem}"
            keys.insert(0, key_path)
        lines = [line for k in keys if (line := self.line_of(k.rsplit(".", 1)[-1])) is not None]
        return InputError(str(self.path), lines[0] if lines else None, problem)

    def typed(self, where: str, key: str, value: Any, want: Any) -> Any:
        """``value`` checked against the field's annotation (ints accepted as floats)."""
        t = str(want)
        ok = True
        if "bool" in t:
            ok = isinstance(value, bool)
        elif "float" in t:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif "int" in t and "str" not in t:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif "str" in t:
            ok = isinstance(value, str)
        if not ok:
            raise self.error(key, f"{where}{key}: expected {t.replace(' | None', '')}, "
                             f"got {type(value).__name__} {value!r}")
        return value

    def table(self, where: str, raw: dict[str, Any], cls: Any, aliases: dict[str, str] | None = None
              ) -> dict[str, Any]:
        """A TOML table as keyword arguments for ``cls`` (a dataclass); unknown keys are errors."""
        known = _fields(cls)
        kw = {}
        for k, v in raw.items():
            name = (aliases or {}).get(k, k)
            if name not in known:
                raise self.error(k, f"{where}{k}: unknown key (known: {', '.join(known)})")
            kw[name] = self.typed(where, k, v, known[name])
        return kw


def _parse(src: _Source) -> dict[str, Any]:
    try:
        doc = tomllib.loads(src.text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(str(src.path), int(m.group(1)) if m else None, f"not valid TOML: {exc}") from None
    unknown = set(doc) - _TOP
    if unknown:
        key = sorted(unknown)[0]
        raise src.error(key, f"unknown key {key!r} (known: {', '.join(sorted(_TOP))})")
    return doc


def _apply_tables(src: _Source, doc: dict[str, Any], cfg: BenchConfig) -> None:
    """``headers``, ``metrics_urls``, ``slo`` and ``[payload]`` onto ``cfg``."""
    if "headers" in doc:
        hdrs = doc["headers"]
        if not isinstance(hdrs, dict) or not all(isinstance(v, str) for v in hdrs.values()):
            raise src.error("headers", "headers: expected a table of strings")
        cfg.headers = list(hdrs.items())
    if "metrics_urls" in doc:
        urls = doc["metrics_urls"]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise src.error("metrics_urls", "metrics_urls: expected a list of URLs")
        cfg.metrics_urls = list(urls)
    if "slo" in doc:
        slo = doc["slo"]
        if not isinstance(slo, dict):
            raise src.error("slo", "slo: expected a table like {ttft_ms = 500}")
        try:
            cfg.slo = parse_slo(",".join(f"{k}={v}" for k, v in slo.items()))
        except UsageError as exc:
            raise src.error("slo", f"slo: {exc}") from None
    if "payload" in doc:
        if not isinstance(doc["payload"], dict):
            raise src.error("payload", "payload: expected a table")
        kw = src.table("payload.", doc["payload"], PayloadSpec)
        kw.setdefault("seed", cfg.seed)
        cfg.payload = PayloadSpec(**kw)
    if "workload" in doc:
        cfg.workload = _workload(src, doc["workload"])


def rebase(work: Workload, base: Path) -> Workload:
    """``work`` with its relative paths (dataset, tokenizer, ``empirical:FILE`` lengths) taken
    from ``base`` (the scenario's folder; the locustfile's the current one, so that they are absolute)."""
    kw: dict[str, Any] = {}
    for key in ("dataset", "tokenizer"):
        value = getattr(work, key)
        if value and value != CHAR_TOKENIZER:
            kw[key] = str(base / value)
    for key in ("prompt_tokens", "output_tokens"):
        m = _EMPIRICAL.match(getattr(work, key) or "")
        if m and not re.fullmatch(r"[\d\s,.]+", m.group(2)):
            kw[key] = m.group(1) + str(base / m.group(2).strip()) + (m.group(3) or "")
    return dataclasses.replace(work, **kw)


def _workload(src: _Source, raw: Any) -> Workload:
    """``[workload]``: typed, its paths made relative to the file, its SPECs and column map
    parsed by the flags' own parsers (the cross-checks run in ``BenchConfig.validate``)."""
    if not isinstance(raw, dict):
        raise src.error("workload", "workload: expected a table")
    raw = {k: str(v) if k in ("prompt_tokens", "output_tokens") and type(v) is int else v for k, v in raw.items()}
    work = rebase(Workload(**src.table("workload.", raw, Workload)), src.path.parent)
    for key in ("prompt_tokens", "output_tokens"):
        spec = getattr(work, key)
        try:
            if spec:
                lengths.parse(spec, f"workload.{key}")
        except UsageError as exc:  # a lengths file's own error names that file: add the key
            raise src.refusal(exc, f"workload.{key}") from None
    try:
        datasets.parse_columns(work.dataset_columns)
    except UsageError as exc:
        raise src.refusal(exc) from None
    return work


def _stages(src: _Source, tables: Any) -> list[Stage]:
    if not isinstance(tables, list) or not tables:
        raise src.error(None, "no [[stage]] tables: a scenario needs at least one stage")
    out = []
    for i, st in enumerate(tables):
        kw = src.table(f"stage[{i}].", st, Stage, _STAGE_ALIASES)
        pattern = kw.get("pattern", "constant")
        if pattern not in PATTERNS:
            raise src.error("pattern", f"stage[{i}].pattern: {pattern!r} unknown (choose from "
                            f"{', '.join(PATTERNS)})", occurrence=i)
        if "trace" in kw and not Path(kw["trace"]).is_absolute():
            kw["trace"] = str(src.path.parent / kw["trace"])
        stage = Stage(**kw)
        try:
            stage.offsets(0)
            if stage.pattern not in ("step", "replay", "closed") and not stage.duration_s > 0:
                raise UsageError(f"duration_s must be > 0, got {stage.duration_s:g}")
        except UsageError as exc:
            raise src.error(None, f"stage[{i}]: {exc}") from None
        out.append(stage)
    return out


def load(path: str | Path, base: BenchConfig | None = None) -> BenchConfig:
    """Parse and validate a scenario file into a :class:`BenchConfig` (nothing runs)."""
    path = Path(path)
    src = _Source(path, read_text(path, "scenario"))
    doc = _parse(src)
    cfg = dataclasses.replace(base or BenchConfig())
    cfg.scenario_path = str(path)
    cfg.pattern_name = "scenario"
    fields = _fields(BenchConfig)
    for key, value in doc.items():
        if key not in _TABLES:
            setattr(cfg, key, src.typed("", key, value, fields[key]))
    _apply_tables(src, doc, cfg)
    cfg.stages = _stages(src, doc.get("stage"))
    if len(cfg.stages) == 1:
        cfg.pattern_name = cfg.stages[0].pattern
    if cfg.target:
        try:
            cfg.validate()
        except UsageError as exc:
            raise src.refusal(exc) from None
    return cfg
