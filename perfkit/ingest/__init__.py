"""Importers and live collectors: everything that writes telemetry into the store.

* :mod:`perfkit.ingest.importers`: ``perfkit ingest KIND PATH...`` (one file, one
  transaction) over the per-format readers (``prometheus``, ``promrange``,
  ``nvsmi``, ``dcgm``, ``locust``, ``mlperf``), which turn bytes into
  :class:`perfkit.ingest.frames.Telemetry`;
* :mod:`perfkit.ingest.promapi`: ``perfkit prometheus`` (a PromQL range pulled in chunks);
* :mod:`perfkit.ingest.live`: NVML, host and ``/metrics`` collectors during ``perfkit bench``;
* :mod:`perfkit.ingest.promserver`: a private Prometheus server for tests and ``make prometheus``.

This package's top level stays light (standard library only): the command line
imports it to register ``perfkit ingest``.
"""
from __future__ import annotations

from perfkit.ingest.times import parse_duration, parse_time

#: The file kinds ``perfkit ingest KIND`` reads.
KINDS = ("prometheus", "prom-range", "nvidia-smi", "dcgm", "locust", "mlperf", "mlperf-results")

__all__ = ["KINDS", "parse_duration", "parse_time"]
