"""Figures: one module per stage, the only place perfkit draws.

* :mod:`perfkit.plots.benchmark`: one run's latency over time, percentile
  spectrum, throughput and schedule lag (notebook 01).
* :mod:`perfkit.plots.diagnosis`: telemetry timelines, root-cause evidence and
  A/B distributions (notebooks 02–04).
* :mod:`perfkit.plots.hardware`: hardware comparison, TCO and fleet (notebooks 05–06).
* :mod:`perfkit.plots.trends`: a case's metrics over its runs, change points marked (notebook 07).
* :mod:`perfkit.plots.sweep`: a sweep's latency-throughput curve, knee and over-saturated steps (notebook 09).
* :mod:`perfkit.plots.style`: the one palette, titles that state n and units, alt text.

Every function takes small frames or result objects and returns a matplotlib
``Figure``; nothing here reads the store or computes a statistic. Notebooks and
the command line call the same functions.
"""
