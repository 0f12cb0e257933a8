"""Multi-stage scenarios from TOML, validated with errors that name the file and key path.

```toml
target = "http://127.0.0.1:8000"
protocol = "http-json"          # http-json | kserve-v2 | openai
label = "hardware=T4"
seed = 1
[payload]
kind = "outliers"               # fixed | normal | longtail | outliers | path/to/bodies.jsonl
mean = 64
outlier_fraction = 0.02
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
fall back to a default).
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from perfkit.bench.config import BenchConfig, parse_slo
from perfkit.bench.payload import PayloadSpec
from perfkit.bench.schedule import PATTERNS, Stage
from perfkit.errors import InputError, UsageError

_TOP = {"target", "protocol", "method", "workers", "model", "max_tokens", "headers", "bearer_env",
        "timeout_s", "max_connections", "slo_p99_ms", "slo", "label", "seed", "min_duration_s",
        "min_queries", "payload", "stage"}
# Friendly aliases: rate -> rate_rps, duration -> duration_s.
_STAGE_ALIASES = {"rate": "rate_rps", "duration": "duration_s", "think": "think_s"}


def _fields(cls) -> dict[str, Any]:
    return {f.name: f.type for f in dataclasses.fields(cls)}


def _line_of(text: str, key: str, occurrence: int = 0) -> int | None:
    """Best-effort line number of the n-th ``key =`` (for error messages)."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if re.match(rf"\s*{re.escape(key)}\s*=", line)]
    return hits[occurrence] if occurrence < len(hits) else (hits[0] if hits else None)


def _typed(path: Path, text: str, where: str, key: str, value: Any, want: Any) -> Any:
    t = str(want)
    ok = True
    if "float" in t:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif "int" in t and "str" not in t:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif "str" in t:
        ok = isinstance(value, str)
    if not ok:
        raise InputError(path, _line_of(text, key), f"{where}{key}: expected {t.replace(' | None', '')}, "
                         f"got {type(value).__name__} {value!r}")
    return value


def load(path: str | Path, base: BenchConfig | None = None) -> BenchConfig:
    """Parse and validate a scenario file into a :class:`BenchConfig` (nothing runs)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read scenario: {exc.strerror}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(path, int(m.group(1)) if m else None, f"not valid TOML: {exc}") from None
    unknown = set(doc) - _TOP
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(path, _line_of(text, key), f"unknown key {key!r} (known: {', '.join(sorted(_TOP))})")
    cfg = base or BenchConfig()
    cfg = dataclasses.replace(cfg)
    cfg.scenario_path = str(path)
    cfg.pattern_name = "scenario"
    fields = _fields(BenchConfig)
    for key, value in doc.items():
        if key in ("payload", "stage", "headers", "slo"):
            continue
        setattr(cfg, key, _typed(path, text, "", key, value, fields[key]))
    if "headers" in doc:
        hdrs = doc["headers"]
        if not isinstance(hdrs, dict) or not all(isinstance(v, str) for v in hdrs.values()):
            raise InputError(path, _line_of(text, "headers"), "headers: expected a table of strings")
        cfg.headers = list(hdrs.items())
    if "slo" in doc:
        slo = doc["slo"]
        if not isinstance(slo, dict):
            raise InputError(path, _line_of(text, "slo"), "slo: expected a table like {ttft_ms = 500}")
        try:
            cfg.slo = parse_slo(",".join(f"{k}={v}" for k, v in slo.items()))
        except UsageError as exc:
            raise InputError(path, _line_of(text, "slo"), f"slo: {exc}") from None
    if "payload" in doc:
        pay = doc["payload"]
        if not isinstance(pay, dict):
            raise InputError(path, _line_of(text, "payload"), "payload: expected a table")
        pf = _fields(PayloadSpec)
        kw = {}
        for k, v in pay.items():
            if k not in pf:
                raise InputError(path, _line_of(text, k), f"payload.{k}: unknown key (known: {', '.join(pf)})")
            kw[k] = _typed(path, text, "payload.", k, v, pf[k])
        kw.setdefault("seed", cfg.seed)
        cfg.payload = PayloadSpec(**kw)
    stages = doc.get("stage")
    if not isinstance(stages, list) or not stages:
        raise InputError(path, None, "no [[stage]] tables: a scenario needs at least one stage")
    sf = _fields(Stage)
    out = []
    for i, st in enumerate(stages):
        kw = {}
        for k, v in st.items():
            name = _STAGE_ALIASES.get(k, k)
            if name not in sf:
                raise InputError(path, _line_of(text, k), f"stage[{i}].{k}: unknown key (known: {', '.join(sf)})")
            kw[name] = _typed(path, text, f"stage[{i}].", k, v, sf[name])
        pattern = kw.get("pattern", "constant")
        if pattern not in PATTERNS:
            raise InputError(path, _line_of(text, "pattern", i), f"stage[{i}].pattern: {pattern!r} unknown "
                             f"(choose from {', '.join(PATTERNS)})")
        if "trace" in kw and not Path(kw["trace"]).is_absolute():
            kw["trace"] = str(path.parent / kw["trace"])
        stage = Stage(**kw)
        try:
            stage.offsets(0)
            if stage.pattern not in ("step", "replay", "closed") and not stage.duration_s > 0:
                raise UsageError(f"duration_s must be > 0, got {stage.duration_s:g}")
        except UsageError as exc:
            raise InputError(path, None, f"stage[{i}]: {exc}") from None
        out.append(stage)
    cfg.stages = out
    if len(out) == 1:
        cfg.pattern_name = out[0].pattern
    if cfg.target:
        try:
            cfg.validate()
        except UsageError as exc:
            raise InputError(path, None, str(exc)) from None
    return cfg
