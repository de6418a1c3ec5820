"""Experiment trackers (W&B, none) behind one protocol, and environment capture."""

from __future__ import annotations

from aeromancy.errors import UsageError
from aeromancy.tracking.base import Tracker

TRACKERS = ("wandb", "none")


def make_tracker(name: str) -> Tracker:
    """Return the tracker called ``name`` (``wandb`` or ``none``); raise UsageError for another."""
    if name == "none":
        from aeromancy.tracking.none import NoneTracker

        return NoneTracker()
    if name == "wandb":
        from aeromancy.tracking.wandb import WandbTracker

        return WandbTracker()
    raise UsageError(f"unknown tracker {name!r}", f"use one of: {', '.join(TRACKERS)}")
