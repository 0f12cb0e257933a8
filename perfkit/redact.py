"""The one redactor: what perfkit stores, prints, logs, renders or writes never holds a secret.

Three places a secret can hide in what a user gives perfkit:

* a URL's user-info: ``user:password@`` (both parts may be secret: the password
  always is, and a lone user name is a bare token such as ``ghp_...@``), so the
  whole user-info becomes ``***``;
* a query parameter whose name looks secret (``token``, ``key``, ``api_key``,
  ``apikey``, ``access_token``, ``auth``, ``signature``, ``sig``,
  ``password``, ``secret``, any case, also as part of a longer name such as
  ``X-Amz-Signature`` or ``subscription-key``);
* a header whose name looks secret (``Authorization``, ``X-Api-Key``,
  ``Ocp-Apim-Subscription-Key``, ``X-Auth``, ``Cookie``, ...).

:func:`redact_url`, :func:`redact_headers` and :func:`redact_text` (free text
such as an error message or a log line that may quote a URL) are the only ways
perfkit hides secrets; every writer and every printer calls one of them. The
real credentials stay in memory only: :func:`split_userinfo` turns user-info
into an ``Authorization: Basic`` header for the wire.
"""
from __future__ import annotations

import base64
import re
from typing import Iterable, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"

#: Name fragments that make a query parameter or a header secret (case-insensitive).
_SECRET_NAME = re.compile(
    r"token|key|secret|passw(or)?d|passwd|pwd|auth|signature|(^|[-_.])sig($|[-_.])|credential|cookie|session",
    re.I,
)
#: Header names that merely contain "key" but are not credentials.
_NOT_SECRET_HEADERS = frozenset({"keep-alive", "sec-websocket-key"})

# A URL anywhere in free text (scheme://... up to white space or a quote).
_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+""")
# ``Authorization: Bearer xyz`` or ``api_key=xyz`` written out in free text.
_HEADER_IN_TEXT = re.compile(r"(?i)\b(authorization|proxy-authorization)(\s*[:=]\s*)(\S+(?:\s+\S+)?)")
_PARAM_IN_TEXT = re.compile(r"(?i)(?<![\w-])([\w.-]*(?:token|api[-_]?key|apikey|secret|passw(?:or)?d|"
                            r"signature|access[-_]?key)[\w.-]*)(=)([^&\s'\"]+)")


def secret_name(name: str) -> bool:
    """Does a query parameter or header called ``name`` carry a credential?"""
    low = name.strip().lower()
    if low in _NOT_SECRET_HEADERS:
        return False
    return bool(_SECRET_NAME.search(low))


def _redact_query(query: str) -> str:
    if not query:
        return query
    out = []
    for part in query.split("&"):
        name, eq, _value = part.partition("=")
        out.append(f"{name}={MASK}" if eq and secret_name(unquote(name)) else part)
    return "&".join(out)


def redact_url(url: str) -> str:
    """``http://u:pw@h/x?api_key=k&n=1`` -> ``http://***@h/x?api_key=***&n=1``.

    Keeps the URL usable as a label (scheme, host, port, path and harmless
    parameters stay); anything that cannot be parsed as a URL is treated as free
    text (:func:`redact_text`).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, _redact_query(parts.query), parts.fragment))


def redact_headers(headers: Iterable[Sequence[str]]) -> list[list[str]]:
    """``[("X-Api-Key", "k"), ("Accept", "a")]`` -> ``[["X-Api-Key", "***"], ["Accept", "a"]]``."""
    return [[str(k), MASK if secret_name(str(k)) else str(v)] for k, v in headers]


def redact_text(text: str) -> str:
    """Every URL, ``Authorization: ...`` and ``api_key=...`` in free text, redacted."""
    if not text:
        return text
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    text = _HEADER_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _PARAM_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """``http://u:p@h/x`` -> (``http://h/x``, ``{"Authorization": "Basic ..."}``).

    User-info is percent-decoded; a user name alone (a bare token) is sent as
    ``token:``, as curl does. The returned URL carries no credentials, so it may
    be opened, but it is not redacted: redact it before showing it.
    """
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, {"Authorization": "Basic " + base64.b64encode(cred).decode()}


__all__ = ["MASK", "redact_headers", "redact_text", "redact_url", "secret_name", "split_userinfo"]
