"""Reading the files a run is described by (scenario, payload template and bodies, trace).

One place turns "cannot read" into the one-line :class:`~perfkit.errors.UsageError`
the command line prints (exit 2), naming the file and what it was meant to be.
"""
from __future__ import annotations

from pathlib import Path


def read_text(path: str | Path, what: str) -> str:
    """The file's text (UTF-8); ``UsageError("PATH: cannot read WHAT: reason")`` if it cannot be read."""
    from perfkit.errors import UsageError

    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what}: {exc.strerror}") from exc
