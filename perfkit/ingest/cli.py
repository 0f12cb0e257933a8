"""Sub-commands of perfkit.ingest (filled in by the ingest work)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's sub-commands to `perfkit`."""
    return None
