"""Reports: notebooks executed by papermill, converted to self-contained HTML, and their index.

* :mod:`perfkit.report.render`: finding notebooks, executing them with their
  parameters, HTML without code cells, ``index.html`` (the I/O edge).
* :mod:`perfkit.report.index`: the records read back from executed notebooks and
  the index page built from them (pure).
* :mod:`perfkit.report.headline`: a notebook's headline figures, shown and recorded
  for the index.
* :mod:`perfkit.report.style`: the report style: :func:`table` (tables for people),
  :func:`fmt_value` / :func:`fmt_interval` (numbers in sentences) and
  :func:`conclusion` (the verdict block that opens a report, recorded for the index).
* :mod:`perfkit.report.benchmark`: notebook 01's run, read through the store, and
  its tables (figures in :mod:`perfkit.plots.benchmark`).
* :mod:`perfkit.report.browser`: reports opened in headless Chromium: screenshots
  and the page checks (``perfkit report --screenshots``).

Notebooks use :func:`conclusion`, :func:`table`, :func:`headline` and :mod:`benchmark`.
This package is imported when the command line registers ``perfkit report``, so only
the light :mod:`~perfkit.report.headline` and :mod:`~perfkit.report.style` (standard
library at import; pandas when a table is built) load here; ``report.benchmark`` loads
on first use.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from perfkit.report.headline import HEADLINE_MIME, headline
from perfkit.report.style import CONCLUSION_MIME, conclusion, fmt_interval, fmt_value, table

__all__ = ["CONCLUSION_MIME", "HEADLINE_MIME", "benchmark", "conclusion", "fmt_interval", "fmt_value", "headline",
           "table"]


def __getattr__(name: str) -> ModuleType:
    """``report.benchmark`` (pandas, the store) is imported when first used."""
    if name == "benchmark":
        return importlib.import_module("perfkit.report.benchmark")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
