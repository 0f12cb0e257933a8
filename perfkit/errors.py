"""Errors that the CLI turns into exit codes: 2 for bad input, 1 for a failed check.

This module imports nothing heavy, so the command line can name these errors
without loading DuckDB, pandas or numpy.
"""
from __future__ import annotations


class UsageError(Exception):
    """Bad input (a flag, a URL, a file): one line on stderr, exit 2."""

    exit_code = 2


class InputError(UsageError):
    """A malformed file: ``path:line: what is wrong``, exit 2, nothing written."""

    def __init__(self, path: str, line: int | None, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class CheckFailed(Exception):
    """A check that ran and failed (an SLO missed, a regression found): exit 1."""

    exit_code = 1


class StoreError(Exception):
    """A store that cannot be used as asked (newer schema, lock not released...): exit 2."""

    exit_code = 2
