"""Sub-commands registered into `rulebook` by service/cli.py (filled in by their owners)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the `rulebook` parser."""
