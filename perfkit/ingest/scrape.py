"""Scraping a target's Prometheus ``/metrics`` endpoint over HTTP.

The URL handed in is the real one (credentials included) and stays in memory:
user-info travels as an ``Authorization: Basic`` header, never in the request
line. Whatever is stored or printed about it goes through :mod:`perfkit.redact`.
"""
from __future__ import annotations

import urllib.request
from typing import Mapping
from urllib.parse import urlsplit, urlunsplit

from perfkit.redact import split_userinfo


def metrics_url(target_url: str) -> str:
    """The ``/metrics`` URL of a target (kept as given if it already names /metrics).

    User-info (credentials) is kept: the target's and its ``/metrics``' are the same.
    """
    parts = urlsplit(target_url)
    if parts.path.rstrip("/").endswith("/metrics"):
        return target_url
    return urlunsplit((parts.scheme or "http", parts.netloc, "/metrics", "", ""))


def fetch(url: str, timeout_s: float = 5.0, headers: Mapping[str, str] | None = None) -> str:
    """GET ``url`` as text, sending userinfo as Basic auth rather than in the URL.

    ``headers`` (e.g. a bearer token) are sent as given; an ``Authorization``
    among them wins over one made from the URL's user-info.
    """
    url, auth = split_userinfo(url)
    sent = {"Accept": "text/plain;version=0.0.4;q=0.9,*/*;q=0.1", **auth, **(headers or {})}
    req = urllib.request.Request(url, headers=sent)
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        charset = resp.headers.get_content_charset() or "utf-8"
        return resp.read().decode(charset, errors="replace")
