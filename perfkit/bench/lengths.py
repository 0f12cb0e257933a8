"""Token-length specs (``--prompt-tokens``, ``--output-tokens``): parsed, then drawn; pure and seeded.

SPEC is one of

- ``N``: every request ``N`` tokens;
- ``normal:MEAN,SD``: Normal(MEAN, SD), rounded;
- ``longtail:MEDIAN,SIGMA``: LogNormal(ln MEDIAN, SIGMA), rounded (a long right tail);
- ``empirical:FILE_OR_LIST``: resampled (with replacement) from observed lengths, given
  inline (``empirical:12,40,33``) or as a file of numbers (separated by commas, blanks or
  lines; ``#`` starts a comment).

Drawn lengths are clipped to ``[1, MAX]``; MAX is :data:`DEFAULT_MAX` unless the spec
ends in ``,max=MAX`` (``normal:200,40,max=300``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perfkit.bench.inputs import read_text
from perfkit.errors import InputError, UsageError

KINDS = ("fixed", "normal", "longtail", "empirical")
DEFAULT_MAX = 131072
SPEC_HELP = "N | normal:MEAN,SD | longtail:MEDIAN,SIGMA | empirical:FILE_OR_LIST, optionally ',max=M'"


@dataclass(frozen=True)
class LengthSpec:
    """A parsed SPEC: ``kind`` (one of KINDS), its numbers, the clip bound."""

    kind: str
    params: tuple[float, ...] = ()
    values: tuple[int, ...] = ()      # empirical: the observed lengths
    max_tokens: int = DEFAULT_MAX


def _number(flag: str, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a number ({SPEC_HELP})") from None
    if not math.isfinite(v):
        raise UsageError(f"{flag}: {text!r} is not a finite number")
    return v


def _empirical(flag: str, source: str) -> tuple[int, ...]:
    """Lengths given inline (``12,40,33``) or in a file, each an integer >= 1."""
    inline = bool(re.fullmatch(r"[\d\s,.]+", source)) and not Path(source).is_file()
    text = source if inline else read_text(source, f"{flag} lengths")
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for cell in re.split(r"[,\s]+", line.split("#", 1)[0].strip()):
            if not cell:
                continue
            try:
                v = float(cell)
            except ValueError:
                v = float("nan")
            if not (math.isfinite(v) and v >= 1 and v == int(v)):
                where = f"{flag} (inline list)" if inline else source
                raise InputError(where, None if inline else lineno, f"length {cell!r} is not an integer >= 1")
            out.append(int(v))
    if not out:
        raise InputError(f"{flag} (inline list)" if inline else source, None, "no lengths given")
    return tuple(out)


def parse(text: str, flag: str) -> LengthSpec:
    """A SPEC string -> LengthSpec; :class:`UsageError` (exit 2) naming ``flag`` when malformed."""
    body = text.strip()
    hi = DEFAULT_MAX
    m = re.search(r",\s*max\s*=\s*([^,]+)$", body)
    if m:
        hi = int(_number(flag, m.group(1)))
        body = body[:m.start()]
        if hi < 1:
            raise UsageError(f"{flag}: max must be >= 1, got {hi}")
    kind, sep, rest = body.partition(":")
    if not sep:
        n = _number(flag, body)
        if n < 1 or n != int(n):
            raise UsageError(f"{flag}: a fixed length must be an integer >= 1, got {body!r}")
        return LengthSpec("fixed", (n,), max_tokens=hi)
    if kind == "empirical":
        return LengthSpec("empirical", values=_empirical(flag, rest.strip()), max_tokens=hi)
    if kind not in ("normal", "longtail"):
        raise UsageError(f"{flag}: unknown distribution {kind!r} ({SPEC_HELP})")
    parts = [p for p in rest.split(",") if p.strip()]
    if len(parts) != 2:
        shape = "MEAN,SD" if kind == "normal" else "MEDIAN,SIGMA"
        raise UsageError(f"{flag}: {kind} takes two numbers, {kind}:{shape}")
    a, b = (_number(flag, p.strip()) for p in parts)
    if a < 1 or b < 0:
        raise UsageError(f"{flag}: {kind} needs a {'mean' if kind == 'normal' else 'median'} >= 1 and a spread >= 0")
    return LengthSpec(kind, (a, b), max_tokens=hi)


def draw(spec: LengthSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` lengths (int64), clipped to ``[1, spec.max_tokens]``."""
    if spec.kind == "fixed":
        out = np.full(n, spec.params[0])
    elif spec.kind == "normal":
        out = rng.normal(spec.params[0], spec.params[1], n)
    elif spec.kind == "longtail":
        out = rng.lognormal(math.log(spec.params[0]), spec.params[1], n)
    else:
        out = rng.choice(np.asarray(spec.values, dtype=np.float64), size=n, replace=True)
    return np.clip(np.rint(out), 1, spec.max_tokens).astype(np.int64)
