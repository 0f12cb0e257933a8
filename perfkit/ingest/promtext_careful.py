"""The careful path of the Prometheus text / OpenMetrics parser: the grammar, line by line.

:mod:`perfkit.ingest.promtext` reads the common sample line in bulk
(:mod:`perfkit.ingest.promtext_fast`); the few lines it does not take (escaped
or non-ASCII label values, tabs, extra blanks, exemplars it could not check, and
every malformed line) come here, to be read with the full grammar or refused
with ``path:line: problem``.
"""
from __future__ import annotations

import json
import math
import re

from perfkit.errors import InputError

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"  # a metric name
LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"   # a label name
NAME_RE = re.compile(NAME)
_LNAME_RE = re.compile(LNAME)


def parse_number(token: str, what: str, path: str, line: int) -> float:
    if "_" in token or not token:
        raise InputError(path, line, f"invalid {what} {token!r}")
    try:
        return float(token)
    except ValueError:
        raise InputError(path, line, f"invalid {what} {token!r}") from None


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _parse_labels(text: str, pos: int, path: str, line: int) -> tuple[dict[str, str], int]:
    """Labels starting after ``{``; return (labels, index after ``}``)."""
    labels: dict[str, str] = {}
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == "}":
            return labels, pos + 1
        m = _LNAME_RE.match(text, pos)
        if not m:
            raise InputError(path, line, f"expected a label name at column {pos + 1}")
        key = m.group(0)
        pos = m.end()
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != "=":
            raise InputError(path, line, f"expected '=' after label {key!r}")
        pos += 1
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != '"':
            raise InputError(path, line, f"label {key!r}: value must be a double-quoted string")
        pos += 1
        buf = []
        while True:
            if pos >= n:
                raise InputError(path, line, f"label {key!r}: unterminated label value")
            ch = text[pos]
            if ch == "\\":
                if pos + 1 >= n:
                    raise InputError(path, line, f"label {key!r}: unterminated escape")
                nxt = text[pos + 1]
                buf.append(_ESCAPES.get(nxt, "\\" + nxt))
                pos += 2
                continue
            if ch == '"':
                pos += 1
                break
            buf.append(ch)
            pos += 1
        if key in labels:
            raise InputError(path, line, f"duplicate label {key!r}")
        labels[key] = "".join(buf)
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == ",":
            pos += 1
            continue
        if pos < n and text[pos] == "}":
            return labels, pos + 1
        raise InputError(path, line, f"expected ',' or '}}' after label {key!r}")


def parse_line(text: str, line: int, path: str, om: bool) -> tuple:
    """The careful path: one sample line with the full grammar (escapes, blanks)."""
    raw = text.rstrip("\r")
    if not om:
        raw = raw.strip(" \t")
    m = NAME_RE.match(raw)
    if not m:
        raise InputError(path, line, f"expected a metric name, got {raw[:40]!r}")
    name = m.group(0)
    pos = m.end()
    labels: dict[str, str] = {}
    if pos < len(raw) and raw[pos] == "{":
        labels, pos = _parse_labels(raw, pos + 1, path, line)
    rest = raw[pos:]
    exemplar = None
    if " # " in rest:
        rest, exemplar = rest.split(" # ", 1)
        if not om:
            raise InputError(path, line, "exemplars are only allowed in OpenMetrics text")
    if rest and rest[0] not in " \t":
        raise InputError(path, line, f"expected a blank before the value of {name}")
    tokens = rest.split()
    if not tokens:
        raise InputError(path, line, f"missing value for {name}")
    if len(tokens) > 2:
        raise InputError(path, line, f"unexpected text after the timestamp: {tokens[2][:40]!r}")
    value = parse_number(tokens[0], "value", path, line)
    ts = None
    if len(tokens) == 2:
        ts = parse_number(tokens[1], "timestamp", path, line)
        if not math.isfinite(ts):
            raise InputError(path, line, f"invalid timestamp {tokens[1]!r}")
        if not om:
            ts = ts / 1000.0
    if exemplar is not None:
        ex = exemplar.strip()
        if not ex.startswith("{"):
            raise InputError(path, line, "exemplar must start with '{'")
        _, epos = _parse_labels(ex, 1, path, line)
        etoks = ex[epos:].split()
        if not etoks or len(etoks) > 2:
            raise InputError(path, line, "exemplar needs a value and an optional timestamp")
        for tok in etoks:
            parse_number(tok, "exemplar number", path, line)
    return (line, name, json.dumps(labels, separators=(",", ":"), ensure_ascii=False), value, ts)
