"""Sub-commands of perfkit.analyze (filled in by the analyze work)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's sub-commands to `perfkit`."""
    return None
