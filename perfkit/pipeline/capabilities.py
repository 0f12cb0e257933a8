"""What this checkout and machine can run: a suite's cases and reports, each available or skipped with a reason.

A requirement is a short string: ``bench:FLAG:VALUE`` (``perfkit bench`` accepts
that choice), ``nginx``, ``notebook:STEM``, ``module:NAME`` or ``which:PROGRAM``.
"""
from __future__ import annotations

import importlib
import shutil
from typing import Sequence

from perfkit.errors import UsageError
from perfkit.pipeline.suite import Comparison, Suite


def bench_choices() -> dict[str, tuple[str, ...]]:
    """The choices ``perfkit bench`` accepts per flag, from the same constants its parser uses."""
    from perfkit.bench.config import PROTOCOLS
    from perfkit.bench.schedule import PATTERNS

    return {"pattern": tuple(PATTERNS), "protocol": tuple(PROTOCOLS)}


def capability_missing(name: str) -> str | None:
    """None when ``name`` is available, else a one-line reason."""
    kind, _, rest = name.partition(":")
    if kind == "bench":
        flag, _, value = rest.partition(":")
        return None if value in bench_choices().get(flag, ()) else f"perfkit bench has no --{flag} {value} yet"
    if kind == "nginx":
        try:
            from perfkit.demo.proxy import nginx_binary

            nginx_binary()
        except UsageError as exc:
            return str(exc)
        return None
    if kind == "notebook":
        from perfkit.report.render import available_notebooks

        return None if any(p.stem == rest for p in available_notebooks()) else f"notebook {rest} not found"
    if kind == "module":
        try:
            importlib.import_module(rest)
        except ImportError as exc:
            return f"{rest} is not available yet ({exc})"
        return None
    if kind == "which":
        return None if shutil.which(rest) else f"{rest} is not installed"
    raise ValueError(f"unknown capability {name!r}")


def missing(requires: Sequence[str]) -> str | None:
    """The reason the first unavailable requirement gives, or None when all are available."""
    for req in requires:
        reason = capability_missing(req)
        if reason:
            return reason
    return None


def comparison_problem(rep: Comparison) -> str | None:
    """Why a comparison report cannot render here (a capability, its notebook, a parameter), else None."""
    why = missing((*rep.requires, f"notebook:{rep.notebook}"))
    if why:
        return why
    from perfkit.report.render import notebook_parameters, resolve_notebook

    nb = resolve_notebook(rep.notebook)
    undeclared = sorted(set(rep.parameters) - set(notebook_parameters(nb)))
    if undeclared:
        return f"{nb.name} declares no parameter {', '.join(undeclared)}"
    return None


def describe(suite: Suite) -> list[str]:
    """One line per case and report: name, what it does, and why it would be skipped."""
    lines = [f"suite {suite.name}:"]
    for case in suite.cases:
        why = missing(case.requires)
        lines.append(f"  case   {case.name:<18} {'SKIP: ' + why if why else 'ok'}  {case.about}")
    for rep in suite.reports:
        why = comparison_problem(rep)
        lines.append(f"  report {rep.name:<18} {'SKIP: ' + why if why else 'ok'}  {rep.about}")
    return lines
