"""An MLPerf Inference *results tree* (as MLCommons publishes a round) -> one run per performance run.

The tree is ``<division>/<submitter>/results/<system>/<model>/<scenario>/performance/run_N/``
holding ``mlperf_log_summary.txt`` (and, for power runs, ``mlperf_log_detail.txt``
and ``spl.txt``), with the system described in ``<division>/<submitter>/systems/<system>.json``.
Each performance run is read by :func:`perfkit.ingest.mlperf.read_parsed` (the one
LoadGen parser) and labelled with its submitter, division, system, accelerator
(normalised by :func:`normalize_accelerator`), accelerator count, model, scenario
and ``location`` (as ``Location`` in the round's ``summary_results.json``).

Layout variations handled: the root may be the round, a division, a submitter
or anything below ``results`` (the path is read from its absolute parts);
scenario folders in any case (``offline``, ``Offline``); the summary in
``performance/run_N/`` or directly in ``performance/``; the power log in the run
folder or in ``performance/power/``; accelerator counts as numbers or text,
``N/A`` for none; several nodes (count = per node x nodes).

Power follows MLPerf's submission checker: the mean of the PTDaemon's positive
``Watts`` samples strictly inside LoadGen's ``power_begin``..``power_end``; for
SingleStream and MultiStream the energy per query in mJ is mean W x window s x
1000 / ``result_query_count``.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from perfkit.errors import InputError
from perfkit.ingest import mlperf
from perfkit.ingest.frames import Telemetry

if TYPE_CHECKING:
    import duckdb

KIND = "mlperf-results"  # the sources kind of a tree's runs
SUMMARY, DETAIL, SPL = "mlperf_log_summary.txt", "mlperf_log_detail.txt", "spl.txt"
SCENARIOS = {s.lower(): s for s in ("Offline", "Server", "SingleStream", "MultiStream")}
_LATENCY_PCT = {"SingleStream": "p90", "MultiStream": "p99"}  # the latency a result reports
#: Benchmarks whose result MLPerf states in tokens/s (model folder names start so).
TOKEN_MODELS = ("llama", "gptj", "gpt-j", "mixtral", "deepseek")
_POWER_TIME = "%m-%d-%Y %H:%M:%S.%f"
_ROUND = re.compile(r"v\d+\.\d+")
ACCELERATORS_CSV = Path(__file__).resolve().parents[1] / "data" / "reference" / "accelerators.csv"


@lru_cache(maxsize=1)
def _accelerator_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    with open(ACCELERATORS_CSV, newline="", encoding="utf-8") as fh:
        return tuple((re.compile(row["pattern"], re.IGNORECASE), row["name"]) for row in csv.DictReader(fh))


def normalize_accelerator(name: str | None) -> str:
    """The catalog's name for an accelerator as submitters spell it (``NVIDIA H100-SXM-80GB`` -> ``H100 SXM``).

    The mapping is ``perfkit/data/reference/accelerators.csv`` (first matching
    pattern wins); a name it does not know is returned stripped; none gives "".
    """
    text = (name or "").strip()
    for pattern, normal in _accelerator_patterns():
        if pattern.search(text):
            return normal
    return text


@dataclass(frozen=True)
class RunDir:
    """One performance run found in a tree."""

    directory: Path
    division: str
    submitter: str
    system: str
    model: str
    scenario: str  # as the folder spells it
    systems_dir: Path

    @property
    def location(self) -> str:
        """``division/submitter/results/system/model/scenario``, as the official table spells it."""
        return "/".join((self.division, self.submitter, "results", self.system, self.model, self.scenario))


@dataclass
class TreeResult:
    """What reading or ingesting a tree did: runs read/stored, already there, skipped (with why)."""

    root: str
    stored: int = 0
    already: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.root}: {self.stored} runs stored, {self.already} already there, "
                f"{len(self.problems)} skipped")


def round_of(root: str | os.PathLike[str]) -> str:
    """The round (``v4.1``) named in the tree's path, else ``unknown``."""
    found = _ROUND.findall(str(Path(root).resolve()))
    return found[-1] if found else "unknown"


def find_runs(root: str | os.PathLike[str]) -> tuple[list[RunDir], list[str]]:
    """Every performance run under ``root`` (sorted by path) and one line per folder of unknown layout."""
    runs, problems = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if SUMMARY not in filenames and DETAIL not in filenames:
            continue
        parts = Path(dirpath).resolve().parts
        if "performance" not in parts or "results" not in parts:
            continue  # accuracy and compliance logs
        at = len(parts) - 1 - parts[::-1].index("results")
        perf = parts.index("performance", at)
        if at < 2 or perf != at + 4 or len(parts) > perf + 2:
            problems.append(f"{dirpath}: unknown layout (expected <division>/<submitter>/results/"
                            "<system>/<model>/<scenario>/performance[/run_N])")
            continue
        runs.append(RunDir(Path(dirpath), parts[at - 2], parts[at - 1], parts[at + 1], parts[at + 2],
                           parts[at + 3], Path(*parts[:at]) / "systems"))
    return sorted(runs, key=lambda r: str(r.directory)), problems


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), None, "missing file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"cannot read: {exc}") from None


def read_system(run: RunDir) -> dict[str, Any]:
    """The run's ``systems/<system>.json``: accelerator name (as submitted), count, host, software."""
    path = run.systems_dir / f"{run.system}.json"
    try:
        desc = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(str(path), exc.lineno, f"not valid JSON: {exc.msg}") from None
    if not isinstance(desc, dict):
        raise InputError(str(path), None, "expected a JSON object")

    def count(key: str, default: float) -> float:
        try:
            return float(desc.get(key, default))
        except (TypeError, ValueError):
            return 0.0  # "N/A", "": no accelerator

    name = str(desc.get("accelerator_model_name") or "").strip()
    per_node, nodes = count("accelerators_per_node", 0), count("number_of_nodes", 1) or 1
    return {"accelerator_name": name if per_node else "", "accelerators": per_node * nodes,
            "host": str(desc.get("host_processor_model_name") or ""),
            "software": str(desc.get("framework") or ""), "status": str(desc.get("status") or "")}


def _spl_path(run: RunDir) -> Path | None:
    for path in (run.directory / SPL, run.directory.parent / "power" / SPL):
        if path.is_file():
            return path
    return None


def mean_power_w(spl_text: str, spl_path: str, begin: datetime, end: datetime) -> tuple[float, int]:
    """Mean of the positive ``Watts`` samples strictly inside (begin, end), and how many there were."""
    total, n = 0.0, 0
    for lineno, line in enumerate(spl_text.splitlines(), start=1):
        if not line.startswith("Time"):
            continue
        cells = line.split(",", 4)
        try:
            stamp = datetime.strptime(cells[1], _POWER_TIME)
            watts = float(cells[3])
        except (IndexError, ValueError):
            raise InputError(spl_path, lineno, "expected 'Time,<m-d-Y H:M:S.f>,Watts,<number>,...'") from None
        if begin < stamp < end and watts > 0:
            total, n = total + watts, n + 1
    if n == 0:
        raise InputError(spl_path, None, f"no power sample inside the LoadGen window {begin}..{end}")
    return total / n, n


def _power(run: RunDir, detail: dict[str, object], detail_path: Path, scenario: str) -> dict[str, Any]:
    spl = _spl_path(run)
    if spl is None:
        return {}
    if not detail:
        raise InputError(str(run.directory / DETAIL), None, "power run without its detail log")
    try:
        begin = datetime.strptime(str(detail["power_begin"]), _POWER_TIME)
        end = datetime.strptime(str(detail["power_end"]), _POWER_TIME)
    except (KeyError, ValueError):
        raise InputError(str(detail_path), None, "power run: no readable power_begin/power_end") from None
    watts, n = mean_power_w(_read_text(spl), str(spl), begin, end)
    out: dict[str, Any] = {"power_w": watts, "power_samples": n,
                           "power_window_s": (end - begin).total_seconds()}
    if scenario in _LATENCY_PCT:
        queries = mlperf._float(detail.get("result_query_count"))
        if not queries:
            raise InputError(str(detail_path), None, "power run: no result_query_count")
        out["energy_mj_per_query"] = watts * out["power_window_s"] * 1000 / queries
    return out


def headline(figures: dict[str, Any], scenario: str, model: str) -> tuple[float | None, str]:
    """The result MLPerf reports for a run and its ``Performance_Units``.

    Tokens/s where the summary has them (Offline: tokens/s; Server: completed
    tokens/s); else samples/s (Offline) or completed queries/s (Server);
    SingleStream/MultiStream: the early-stopping P90/P99 latency estimate in ms
    (the plain percentile if none). The units are ``Tokens/s`` only for the
    round's LLM benchmarks (:data:`TOKEN_MODELS`): the official table labels an
    open-division model's tokens/s with the scenario's usual units, and so do we.
    """
    if scenario in _LATENCY_PCT:
        pct = _LATENCY_PCT[scenario]
        early = figures.get("early_stopping_ms") or {}
        return early.get(pct, figures.get(f"{pct}_latency_ms")), "Latency (ms)"
    llm = model.lower().startswith(TOKEN_MODELS)
    if scenario == "Server":
        tokens = figures.get("completed_tokens_per_s", figures.get("completed_tokens_per_s_inferred"))
        samples, units = figures.get("completed_samples_per_s"), "Queries/s"
    else:
        tokens = figures.get("tokens_per_s", figures.get("tokens_per_s_inferred"))
        samples, units = figures.get("samples_per_s"), "Samples/s"
    return (samples, units) if tokens is None else (tokens, "Tokens/s" if llm else units)


def read_run(run: RunDir, round_name: str) -> tuple[Telemetry, str]:
    """One performance run as Telemetry with its ``runs`` row, and the sha256 of its location and files.

    Raises :class:`InputError` naming the file and problem (missing, truncated,
    power without detail log); nothing is read half.
    """
    summary_path, detail_path = run.directory / SUMMARY, run.directory / DETAIL
    texts = {str(summary_path): _read_text(summary_path)}
    if detail_path.is_file():
        texts[str(detail_path)] = _read_text(detail_path)
    s = mlperf.parse_summary(texts[str(summary_path)], str(summary_path))
    d = mlperf.parse_detail(texts[str(detail_path)], str(detail_path)) if str(detail_path) in texts else {}
    scenario = SCENARIOS.get(str(d.get("effective_scenario") or s.get("Scenario") or "").lower())
    if scenario is None:
        raise InputError(str(summary_path), None, "no known scenario (truncated?)")
    system = read_system(run)
    tel = mlperf.read_parsed(texts, s, d)
    figures = tel.run["summary"] if tel.run else {}
    result, units = headline(figures, scenario, run.model)
    if result is None:
        raise InputError(str(summary_path), None, f"no {units} result line (truncated?)")
    figures.update(_power(run, d, detail_path, scenario))
    figures.update(result=result, units=units)
    # the location counts: submitters may publish the same logs under two models (-99 and -99.9)
    sha = hashlib.sha256("\0".join([run.location, *(texts[p] for p in sorted(texts))]).encode()).hexdigest()
    accelerator = normalize_accelerator(system["accelerator_name"])
    labels = {"round": round_name, "location": run.location, "division": run.division,
              "submitter": run.submitter, "system": run.system, "accelerator": accelerator,
              "accelerator_name": system["accelerator_name"], "accelerators": f"{system['accelerators']:g}",
              "model": run.model, "scenario": scenario}
    assert tel.run is not None  # read_parsed always describes the run
    tel.run.update(run_id=f"mlperf-{round_name}-{sha[:16]}", label=f"MLPerf {round_name} {run.location}",
                   labels=labels)
    tel.run["machine"] = {"note": "MLPerf submission", **{k: system[k] for k in ("host", "software")}}
    return tel, sha


def read_tree(root: str | os.PathLike[str], round_name: str | None = None
              ) -> Iterator[tuple[Telemetry | None, str, str | None]]:
    """``(telemetry, sha256, problem)`` per performance run, in path order.

    Where a run cannot be read (or a folder has an unknown layout), telemetry is
    None and ``problem`` is the one line naming the path and what is wrong.
    """
    runs, problems = find_runs(root)
    for problem in problems:
        yield None, "", problem
    name = round_name or round_of(root)
    for run in runs:
        try:
            tel, sha = read_run(run, name)
        except InputError as exc:
            yield None, "", str(exc)
            continue
        yield tel, sha, None


def ingest_tree(con: duckdb.DuckDBPyConnection, root: str | os.PathLike[str], *,
                round_name: str | None = None, label: str | None = None) -> TreeResult:
    """Store every performance run of a tree, one transaction each; a bad run is skipped and counted.

    A run whose files were stored before (same bytes) is counted as already there.
    """
    from perfkit import store
    from perfkit.store import write

    if not Path(root).is_dir():
        raise InputError(str(root), None, "not a directory (expected an MLPerf results tree)")
    result = TreeResult(str(root))
    for tel, sha, problem in read_tree(root, round_name):
        if tel is None or tel.run is None:
            result.problems.append(str(problem))
            continue
        if write.find_source(con, KIND, sha) is not None:
            result.already += 1
            continue
        with store.transaction(con):
            write.write_source(con, tel.series, tel.samples, kind=KIND, path=tel.run["labels"]["location"],
                               sha256=sha, run_id=None, label=label, run=tel.run)
        result.stored += 1
    return result
