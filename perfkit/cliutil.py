"""What every ``perfkit`` sub-command shares: the argument parser class and common flags.

Stage ``cli`` modules import this (never :mod:`perfkit.cli`, which imports them),
and nothing else at module level but the standard library: registering the
commands must stay cheap, so ``perfkit --help`` answers at once. A command's
heavy imports happen inside its handler.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    """The shared ``--db`` flag (``PERFKIT_DB`` when absent, then data/perfkit.duckdb)."""
    parser.add_argument(
        "--db", metavar="PATH", default=None,
        help="DuckDB file, or a Parquet export (a folder or parquet:URL; read-only) "
             "(default: $PERFKIT_DB or data/perfkit.duckdb)",
    )


def add_command(sub: argparse._SubParsersAction, name: str, handler: Callable[[argparse.Namespace], int],
                *, help: str, description: str) -> argparse.ArgumentParser:
    """Add ``perfkit NAME``, run by ``handler(args)`` (which returns the exit code); its parser."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(func=handler)
    return parser
