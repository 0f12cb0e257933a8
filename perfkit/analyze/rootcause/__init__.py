"""Root cause: ranked findings over runs, each backed by its numbers, a chart and an action.

Four parts, each with one job:

* :mod:`.rules`, :mod:`.serving` and :mod:`.gpu`: the rules, pure functions from small frames to
  :class:`Finding` lists (thresholds stated in their module docs);
* :mod:`.evidence`: the gathering of their inputs from the store (SQL);
* :mod:`.runner`: applies every rule to a set of runs and ranks the findings
  (:func:`diagnose`), plus the tables notebook 03 shows;
* :mod:`.finding`: the :class:`Finding` and :class:`Chart` types, and findings grouped by cause
  across runs (:func:`group_findings`). Figures are
  drawn by :func:`perfkit.plots.diagnosis.finding_figure`.

The names below are what notebooks and the ``perfkit diagnose`` command use.
"""
from __future__ import annotations

from perfkit.analyze.rootcause.evidence import RunEvidence, gpu_frame, load_run
from perfkit.analyze.rootcause.finding import (CAUSES, SEVERITY_RANK, CauseGroup, Chart, Finding, causes_table,
                                               findings_table, group_findings, rank)
from perfkit.analyze.rootcause.runner import (analyze_run, batching_table, diagnose, headline_figures,
                                              parse_pairs, proxy_comparison, proxy_pairs,
                                              proxy_tables, run_findings, runs_overview)

__all__ = ["CAUSES", "SEVERITY_RANK", "CauseGroup", "Chart", "Finding", "RunEvidence",
           "analyze_run", "batching_table", "causes_table", "diagnose", "findings_table", "gpu_frame",
           "group_findings", "headline_figures", "load_run", "parse_pairs", "proxy_comparison", "proxy_pairs",
           "proxy_tables", "rank", "run_findings", "runs_overview"]
