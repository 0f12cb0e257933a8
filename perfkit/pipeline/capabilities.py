"""What this checkout and machine can run: a suite's cases and reports, each available or skipped with a reason.

A requirement is a short string: ``bench:FLAG:VALUE`` (``perfkit bench`` accepts
that choice), ``nginx``, ``notebook:STEM``, ``module:NAME`` or ``which:PROGRAM``.
Those a package provides (:data:`PACKAGES`) can be installed the way ``.ci/run``
installs them (``apt-get``, as root or with passwordless sudo): :func:`install_missing`;
otherwise :func:`enable_command` is the one command a person runs to enable the case.
"""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Sequence

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


#: Requirements a Debian package provides: requirement -> package (as ``.ci/run`` installs them).
PACKAGES: dict[str, str] = {"nginx": "nginx"}


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def enable_command(requires: Sequence[str]) -> str | None:
    """The one command that provides the missing requirements a package provides, or None (none does)."""
    wanted = sorted({PACKAGES[r] for r in requires if r in PACKAGES and capability_missing(r)})
    if not wanted:
        return None
    return f"{'' if _as_root() else 'sudo '}apt-get install -y {' '.join(wanted)}"


def install_prefix() -> list[str] | None:
    """How this process can run ``apt-get`` without a password: ``[]`` as root, ``["sudo", "-n"]`` with
    passwordless sudo; None when it cannot (or there is no apt-get)."""
    if not shutil.which("apt-get"):
        return None
    if _as_root():
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False,
                                               stdin=subprocess.DEVNULL).returncode == 0:
        return ["sudo", "-n"]
    return None


def install_missing(requires: Iterable[str], log: Path) -> list[str]:
    """Install the packages of the missing requirements with apt-get when root or passwordless sudo allows
    (output appended to ``log``); one line per outcome, empty when nothing was missing."""
    wanted = sorted({PACKAGES[r] for r in requires if r in PACKAGES and capability_missing(r)})
    if not wanted:
        return []
    prefix = install_prefix()
    if prefix is None:
        return [f"could not install {', '.join(wanted)}: apt-get needs root or passwordless sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with log.open("a", encoding="utf-8") as fh:
        for cmd in ([*prefix, "apt-get", "update", "-q"],
                    [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *wanted]):
            fh.write(f"\n$ {' '.join(cmd)}\n")
            fh.flush()
            code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                  check=False).returncode
            if code:
                return [f"could not install {', '.join(wanted)}: `{' '.join(cmd)}` exited {code} (see suite.log)"]
    return [f"installed {', '.join(wanted)} with apt-get"]


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
        enable = enable_command(case.requires) if why else None
        lines.append(f"  case   {case.name:<18} {'SKIP: ' + why if why else 'ok'}  {case.about}"
                     + (f" (enable: {enable})" if enable else ""))
    for rep in suite.reports:
        why = comparison_problem(rep)
        lines.append(f"  report {rep.name:<18} {'SKIP: ' + why if why else 'ok'}  {rep.about}")
    return lines
