"""Sub-commands of perfkit.analyze for hardware and TCO (filled in by the hardware work)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's sub-commands to `perfkit`."""
    return None
