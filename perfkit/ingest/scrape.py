"""Scraping a target's Prometheus ``/metrics`` endpoint over HTTP.

URLs are redacted before they are stored or printed: a password in the
userinfo part and the values of token-like query parameters become ``***``.
"""
from __future__ import annotations

import base64
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

_SECRET_PARAMS = ("token", "key", "password", "passwd", "secret", "auth", "signature", "sig")


def redact_url(url: str) -> str:
    """``http://u:pw@h/x?token=t`` -> ``http://u:***@h/x?token=***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if any(s in k.lower() for s in _SECRET_PARAMS) else v)
                           for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def metrics_url(target_url: str) -> str:
    """The ``/metrics`` URL of a target (kept as given if it already names /metrics)."""
    parts = urlsplit(target_url)
    if parts.path.rstrip("/").endswith("/metrics"):
        return target_url
    return urlunsplit((parts.scheme or "http", parts.netloc, "/metrics", "", ""))


def split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """``http://u:p@h/x`` -> (``http://h/x``, Basic auth header): credentials never travel in a URL."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, {"Authorization": "Basic " + base64.b64encode(cred).decode()}


def fetch(url: str, timeout_s: float = 5.0) -> str:
    """GET ``url`` as text, sending userinfo as Basic auth rather than in the URL."""
    url, auth = split_userinfo(url)
    headers = {"Accept": "text/plain;version=0.0.4;q=0.9,*/*;q=0.1", **auth}
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        charset = resp.headers.get_content_charset() or "utf-8"
        return resp.read().decode(charset, errors="replace")
