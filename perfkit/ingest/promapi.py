"""`perfkit prometheus`: pull a PromQL range over the HTTP API and store it as prom-range.

Prometheus refuses a range query that would return more than 11,000 points per
series, so the range is split into chunks of at most 11,000 steps each; each
chunk's answer is streamed to a temporary file (flat memory), and all chunks
are written as one source in one transaction, a series spanning chunks kept as
one series. Chunks start one step after the previous chunk's end, so no point
is fetched twice.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import numpy as np
import polars as pl

from perfkit import store
from perfkit.errors import UsageError
from perfkit.ingest import promrange
from perfkit.ingest.importers import IngestResult, check_run
from perfkit.redact import redact_text, redact_url, split_userinfo
from perfkit.store import write

MAX_POINTS = 11_000


def chunks(start: float, end: float, step_s: float, max_points: int = MAX_POINTS
           ) -> list[tuple[float, float]]:
    """Split [start, end] into ranges of at most ``max_points`` evaluation steps each."""
    if step_s < 0.001:
        raise UsageError("--step must be at least 1 ms (Prometheus' resolution)")
    if end < start:
        raise UsageError("--end is before --start")
    span = step_s * (max_points - 1)
    out = []
    s = start
    while s <= end:
        e = min(end, s + span)
        out.append((s, e))
        s = e + step_s
    return out


def default_step(start: float, end: float) -> float:
    """The smallest whole-second step that keeps the range in one chunk (at least 1 s)."""
    return max(1.0, math.ceil((end - start) / (MAX_POINTS - 1)))


def _fetch(url: str, params: dict, dest: Path, timeout_s: float, shown: str) -> None:
    """GET ``url?params`` into ``dest``; URL userinfo is sent as Basic auth, never logged."""
    url, auth = split_userinfo(url)
    headers = {"Accept": "application/json", **auth}
    req = urllib.request.Request(url + "?" + urlencode(params), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp, open(dest, "wb") as fh:
            shutil.copyfileobj(resp, fh, 1 << 20)
    except urllib.error.HTTPError as exc:
        body = exc.read()[:2000]
        try:
            doc = json.loads(body)
            msg = f"{doc.get('errorType', 'error')}: {doc.get('error', '')}"
        except ValueError:
            msg = body.decode("utf-8", "replace").strip()[:200]
        raise UsageError(f"{shown}: Prometheus answered HTTP {exc.code} ({redact_text(msg)})"
                         ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageError(f"{shown}: cannot reach Prometheus ({redact_text(str(reason))})") from None


@dataclass
class PullResult(IngestResult):
    chunks: int = 1

    def line(self) -> str:
        if self.skipped:
            return f"{self.path}: same answer already ingested (source {self.source_id}); nothing to do"
        return (f"{self.path}: {self.samples:,} samples in {self.series:,} series from "
                f"{self.chunks} request(s) (source {self.source_id})")


def pull(con: duckdb.DuckDBPyConnection, url: str, query: str, *, start: float | None = None,
         end: float | None = None, step_s: float | None = None, label: str | None = None,
         run_id: str | None = None, timeout_s: float = 30.0) -> PullResult:
    """Fetch ``query`` over [start, end] at ``step_s`` and store it as one prom-range source."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"--url {redact_url(url)!r}: expected http://host:port")
    end = time.time() if end is None else end
    start = end - 3600.0 if start is None else start
    step_s = default_step(start, end) if step_s is None else step_s
    shown = redact_url(base)
    parts = chunks(start, end, step_s)
    api = base + "/api/v1/query_range"
    tmp = Path(tempfile.mkdtemp(prefix="perfkit-promapi-"))
    try:
        files = []
        digest = hashlib.sha256(query.encode())
        for i, (s, e) in enumerate(parts):
            dest = tmp / f"chunk{i}.json"
            _fetch(api, {"query": query, "start": repr(s), "end": repr(e), "step": repr(step_s)},
                   dest, timeout_s, shown)
            with open(dest, "rb") as fh:
                while block := fh.read(1 << 22):
                    digest.update(block)
            files.append(dest)
        sha = digest.hexdigest()
        path = f"{shown}/api/v1/query_range?query={query}&start={start:.3f}&end={end:.3f}&step={step_s:g}"
        earlier = write.find_source(con, "prom-range", sha)
        if earlier is not None:
            return PullResult("prom-range", path, int(earlier[0]), 0, int(earlier[3] or 0),
                              skipped=True, chunks=len(parts))
        check_run(con, run_id)
        n_samples = 0
        ids_by_series: dict[tuple[str, str], int] = {}
        with store.transaction(con):
            source_id = write.new_source(con, kind="prom-range", path=path, sha256=sha,
                                          run_id=run_id, label=label)
            for f in files:
                local_ids: list[int] = []
                with open(f, "rb") as fh:
                    for batch in promrange.iter_batches(fh, f"{shown} (chunk {f.stem})",
                                                        default_name=query):
                        fresh = [(k, n, lab) for k, n, lab in batch.series
                                 if (n, lab) not in ids_by_series]
                        if fresh:
                            frame = promrange.series_frame(
                                [(j, n, lab) for j, (_, n, lab) in enumerate(fresh)])
                            new_ids = write.insert_series(con, source_id, frame)
                            for (_, n, lab), sid in zip(fresh, new_ids):
                                ids_by_series[(n, lab)] = int(sid)
                        local_ids += [ids_by_series[(n, lab)] for _, n, lab in batch.series]
                        n_samples += write.insert_samples(con, np.asarray(local_ids, dtype=np.int64),
                                                           pl.DataFrame({"key": batch.keys,
                                                                         "ts_unix_s": batch.ts,
                                                                         "value": batch.values}))
            write.add_source_rows(con, source_id, n_samples)
        return PullResult("prom-range", path, source_id, len(ids_by_series), n_samples,
                          run_id=run_id, chunks=len(parts))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
