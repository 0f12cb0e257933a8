"""One JSON sanitiser for everything perfkit writes as JSON (summaries, verdicts, findings).

JSON has no NaN or infinity, and ``json.dumps`` does not know numpy scalars;
:func:`json_safe` maps both to plain Python so that every JSON file perfkit
writes is strict JSON that any reader (DuckDB, jq, a browser) accepts.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Any


def json_safe(obj: Any) -> Any:
    """NaN and infinities -> None, numpy scalars and arrays -> Python, datetimes -> ISO text."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    kind = type(obj).__module__.split(".")[0]
    if kind == "numpy":  # numpy scalars and arrays, without importing numpy here
        return json_safe(obj.tolist())
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`json_safe` (strict: ``allow_nan=False``)."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)
