"""``perfkit merge``: fold the N segments of one run (``perfkit bench --segment I/N``), each in
its own DuckDB file, into a single run.

The rows are copied with their global ``seq`` (so the intended timestamps interleave into
the one schedule), the ``worker`` column made unique across segments (``I * workers + k``),
and the status, summary, percentiles and validity recomputed over the union by the code
that finishes every run (:func:`perfkit.bench.runner.finalize`). Segments of different
schedules or starts, with a different N, or with duplicate or missing indices are refused
before anything is written. The segments' live telemetry is not copied.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from perfkit.errors import UsageError
from perfkit.summary import RunSummary


def _segment_run(path: str) -> dict[str, Any]:
    """The one segment run stored in the DuckDB file ``path``, with its rows (Arrow tables)."""
    from perfkit import store
    from perfkit.bench.queries import run_rows, segment_runs

    if not Path(path).is_file():
        raise UsageError(f"{path}: no such file")
    with store.connect(path, read_only=True, quiet=True) as con:
        ids = segment_runs(con)
        if len(ids) != 1:
            raise UsageError(f"{path} holds {len(ids)} segment runs; merge wants exactly one per file")
        run = store.get_run(con, ids[0])
        run["_requests"], run["_gaps"] = run_rows(con, ids[0])
    run["_path"] = path
    return run


def check_segments(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs in segment order; UsageError (one line) unless they are the N segments,
    each once, of one schedule from one start."""
    segs = [r["scenario"]["segment"] for r in runs]
    first = segs[0]
    for r, s in zip(runs, segs):
        if s["schedule_id"] != first["schedule_id"]:
            raise UsageError(f"{r['_path']} is a segment of another schedule (stages, seed or count differ: "
                             f"schedule {s['schedule_id']} vs {first['schedule_id']} in {runs[0]['_path']})")
        if s["count"] != first["count"]:
            raise UsageError(f"{r['_path']} is segment {s['index']}/{s['count']}, {runs[0]['_path']} one of "
                             f"{first['count']}: N differs")
        if r.get("t0_unix_s") != runs[0].get("t0_unix_s"):
            raise UsageError(f"{r['_path']} started at another time than {runs[0]['_path']} (different --start-at)")
    indices = sorted(s["index"] for s in segs)
    dupes = sorted({i for i in indices if indices.count(i) > 1})
    if dupes:
        raise UsageError(f"segment {', '.join(map(str, dupes))} given more than once")
    missing = sorted(set(range(first["count"])) - set(indices))
    if missing:
        raise UsageError(f"segment {', '.join(map(str, missing))} of {first['count']} missing")
    return sorted(runs, key=lambda r: r["scenario"]["segment"]["index"])


def _merged_row(runs: Sequence[dict[str, Any]], run_id: str) -> dict[str, Any]:
    """The merged ``runs`` row (status ``running`` until finalized): segment 0's, with the whole
    schedule's count and rate, and each segment's run id and clock check in ``scenario.segment``."""
    head = runs[0]
    seg = head["scenario"]["segment"]
    scenario = {**head["scenario"], "scheduled": seg["scheduled_total"],
                "workers": sum(int(r["scenario"].get("workers") or 1) for r in runs),
                "segment": {"merged": seg["count"], "schedule_id": seg["schedule_id"],
                            "scheduled_total": seg["scheduled_total"],
                            "segments": [{"index": r["scenario"]["segment"]["index"], "run_id": r["run_id"],
                                          "status": r.get("status"), "clock": r["scenario"].get("clock")}
                                         for r in runs]}}
    scenario.pop("clock", None)
    rates = [r.get("intended_rate_rps") for r in runs]
    keep = ("label", "labels", "target", "protocol", "pattern", "started_at", "t0_unix_s", "duration_s",
            "tool", "tool_version", "machine")
    return {**{k: head.get(k) for k in keep}, "run_id": run_id, "scenario": scenario, "status": "running",
            "intended_rate_rps": None if None in rates else sum(rates)}


def merge(out: str, paths: Sequence[str]) -> RunSummary:
    """Merge the segment files ``paths`` into one new run in the DuckDB file ``out``; its summary."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from perfkit import store
    from perfkit.bench.runner import finalize, new_run_id
    from perfkit.store import write

    if not paths:
        raise UsageError("give the segment DuckDB files to merge")
    runs = check_segments([_segment_run(p) for p in paths])
    run_id = new_run_id()
    ended = [r["ended_at"] for r in runs if isinstance(r.get("ended_at"), datetime)]
    failed = [f"segment {r['scenario']['segment']['index']}: {r.get('status_reason')}"
              for r in runs if r.get("status") == "failed"]
    interrupted = [(r.get("summary") or {}).get("signal") or "SIGINT" for r in runs if r.get("status") == "interrupted"]
    with store.connect(out, quiet=True) as con:
        with store.transaction(con):
            write.insert_run(con, _merged_row(runs, run_id))
            for r in runs:
                rows: pa.Table = r["_requests"]
                shift = r["scenario"]["segment"]["index"] * int(r["scenario"].get("workers") or 1)
                k = rows.schema.get_field_index("worker")
                rows = rows.set_column(k, "worker", pc.add(rows["worker"], pa.scalar(shift, pa.int32())))
                write.insert_requests(con, run_id, rows)
                if r["_gaps"].num_rows:
                    write.insert_token_gaps(con, run_id, r["_gaps"])
        return finalize(con, run_id, crashed="; ".join(failed) or None,
                        signal_name=interrupted[0] if interrupted else None,
                        ended_at=max(ended) if ended else None)
