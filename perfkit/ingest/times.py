"""Times and durations as users type them: ``--at``, ``--start``, ``--end``, ``--step``.

Standard library only, so the command line and notebooks parse times without
loading the importers.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from perfkit.errors import UsageError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str, flag: str = "duration") -> float:
    """``15`` / ``15s`` / ``1m30s`` / ``250ms`` -> seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise UsageError(f"{flag} {text!r}: expected seconds or a duration like 15s, 1m30s, 2h")
    return total


def parse_time(text: str | float, flag: str) -> float:
    """Epoch seconds from ``1732400000.5``, ``2024-11-23T22:13:20Z`` or ``now``/``now-15m``."""
    if isinstance(text, (int, float)):
        return float(text)
    text = text.strip()
    if text == "now" or text.startswith("now-"):
        now = datetime.now(timezone.utc).timestamp()
        return now if text == "now" else now - parse_duration(text[4:], flag)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected epoch seconds, an ISO 8601 time "
                         "(2024-11-23T22:13:20Z) or now[-DURATION]") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()
