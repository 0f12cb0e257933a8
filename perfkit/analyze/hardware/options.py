"""Per-device values written as text, e.g. ``T4=0.35``: one parser for the command line and notebooks.

Standard library only, so that the command line can import it without loading
the analysis stack. ``perfkit tco --price T4=0.35 --price L4=0.8`` gives a list
of ``NAME=NUMBER`` items; a notebook parameter gives one comma-separated string,
where ``NAME:NUMBER`` is accepted too (papermill's parameter parser dislikes
``=`` in the comments that document a parameter).
"""
from __future__ import annotations

import math
from typing import Iterable

from perfkit.errors import UsageError


def parse_overrides(items: str | Iterable[str] | None, what: str = "",
                    separators: str = "=:") -> dict[str, float]:
    """``["A=1.5", "B=2"]`` or ``"A=1.5, B:2"`` -> ``{"A": 1.5, "B": 2.0}``.

    Each item is ``NAME`` then one of ``separators`` (the last one in the item
    splits it) then a finite number >= 0; a string is split at commas first
    (blank parts skipped). Anything else is a UsageError (prefixed with ``what``,
    e.g. the flag).
    """
    if isinstance(items, str):
        items = [part.strip() for part in items.split(",") if part.strip()]
    forms = " or ".join(f"NAME{sep}NUMBER" for sep in separators)
    out: dict[str, float] = {}
    for item in items or []:
        at = max(item.rfind(sep) for sep in separators)
        key, value = item[:at], item[at + 1:]
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if at < 0 or not key.strip() or not math.isfinite(number) or number < 0:
            raise UsageError(f"{what + ': ' if what else ''}expected {forms} (>= 0), got {item!r}")
        out[key.strip()] = number
    return out


def parse_names(text: str | None) -> list[str]:
    """``"T4, L4,A100 80GB"`` -> ``["T4", "L4", "A100 80GB"]`` (a notebook parameter)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]
