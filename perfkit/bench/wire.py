"""Pre-encoded HTTP/1.1 requests: every byte a worker writes is built here, before t0."""
from __future__ import annotations

from perfkit.bench.config import Target


def encode_requests(method: str, target: Target, bodies: list[bytes],
                    headers: list[tuple[str, str]], stream: bool = False) -> list[bytes]:
    """One complete request (request line, headers, body) per body, keep-alive."""
    host = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    if ":" in target.host and not target.host.startswith("["):  # IPv6 literal
        host = f"[{target.host}]" if target.port in (80, 443) else f"[{target.host}]:{target.port}"
    names = {k.lower() for k, _ in headers}
    head = [f"{method} {target.path} HTTP/1.1", f"Host: {host}"]
    if "content-type" not in names:
        head.append("Content-Type: application/json")
    if "accept" not in names:
        head.append("Accept: text/event-stream" if stream else "Accept: application/json")
    if "user-agent" not in names:
        head.append("User-Agent: perfkit-bench")
    head.extend(f"{k}: {v}" for k, v in headers)
    prefix = "\r\n".join(head).encode("latin-1", errors="strict")
    out = []
    for body in bodies:
        if method in ("GET", "HEAD") and not body:
            out.append(prefix + b"\r\n\r\n")
        else:
            out.append(prefix + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return out
