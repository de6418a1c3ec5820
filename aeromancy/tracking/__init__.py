"""Experiment trackers (W&B, MLflow, none) behind one protocol, and environment capture."""

from __future__ import annotations

from aeromancy.errors import UsageError
from aeromancy.tracking.base import Tracker

TRACKERS = ("wandb", "mlflow", "none")
# Aeromancy's extras each tracker needs beside Aeromancy's runtime (in a tracked run's image).
TRACKER_EXTRAS: dict[str, tuple[str, ...]] = {"mlflow": ("mlflow",)}


def tracker_extras(name: str) -> tuple[str, ...]:
    """Return the extras of Aeromancy that tracker ``name`` needs (``("mlflow",)`` or none)."""
    return TRACKER_EXTRAS.get(name, ())


def make_tracker(name: str) -> Tracker:
    """Return the tracker called ``name`` (``wandb``, ``mlflow`` or ``none``).

    Raises UsageError for an unknown name, or when the tracker's library or settings
    are missing (``mlflow`` without the ``aeromancy[mlflow]`` extra or a tracking URI).
    """
    if name == "none":
        from aeromancy.tracking.none import NoneTracker

        return NoneTracker()
    if name == "wandb":
        from aeromancy.tracking.wandb import WandbTracker

        return WandbTracker()
    if name == "mlflow":
        from aeromancy.tracking.mlflow import MlflowTracker

        return MlflowTracker()
    raise UsageError(f"unknown tracker {name!r}", f"use one of: {', '.join(TRACKERS)}")
