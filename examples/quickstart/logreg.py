"""Logistic regression by batch gradient descent, in plain Python (no dependencies)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

Row = tuple[list[float], int]


def read_rows(path: Path) -> list[Row]:
    """Return (features, label) pairs from a CSV whose last column is the 0/1 label."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [([float(v) for v in line[:-1]], int(line[-1])) for line in reader]


def write_rows(path: Path, header: Sequence[str], rows: Sequence[Row]) -> None:
    """Write rows in the format read_rows reads."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([*features, label] for features, label in rows)


def sigmoid(z: float) -> float:
    """Return the logistic function of z, without overflow for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)


def standardiser(rows: Sequence[Row]) -> tuple[list[float], list[float]]:
    """Return the per-feature mean and standard deviation of the rows."""
    columns = list(zip(*(features for features, _ in rows), strict=True))
    means = [sum(c) / len(c) for c in columns]
    stds = [
        max(1e-9, (sum((v - m) ** 2 for v in c) / len(c)) ** 0.5)
        for c, m in zip(columns, means, strict=True)
    ]
    return means, stds


def scale(model: dict, features: Sequence[float]) -> list[float]:
    """Return the features standardised with the model's means and deviations."""
    pairs = zip(model["means"], model["stds"], strict=True)
    return [(v - m) / s for v, (m, s) in zip(features, pairs, strict=True)]


def probability(model: dict, features: Sequence[float]) -> float:
    """Return the model's probability that the label is 1."""
    weighted = zip(model["weights"], scale(model, features), strict=True)
    return sigmoid(model["bias"] + sum(w * x for w, x in weighted))


def log_loss(model: dict, rows: Sequence[Row]) -> float:
    """Return the mean cross-entropy of the model on the rows."""
    eps = 1e-12
    total = 0.0
    for features, label in rows:
        p = min(max(probability(model, features), eps), 1 - eps)
        total -= label * math.log(p) + (1 - label) * math.log(1 - p)
    return total / len(rows)


def gradient_step(model: dict, rows: Sequence[Row], learning_rate: float) -> None:
    """Move the model's weights and bias one batch gradient step downhill."""
    grad_w = [0.0] * len(model["weights"])
    grad_b = 0.0
    for features, label in rows:
        error = probability(model, features) - label
        grad_w = [g + error * x for g, x in zip(grad_w, scale(model, features), strict=True)]
        grad_b += error
    n = len(rows)
    model["weights"] = [
        w - learning_rate * g / n for w, g in zip(model["weights"], grad_w, strict=True)
    ]
    model["bias"] -= learning_rate * grad_b / n


def accuracy(model: dict, rows: Sequence[Row]) -> float:
    """Return the fraction of rows the model labels correctly at threshold 0.5."""
    hits = sum((probability(model, f) >= 0.5) == bool(label) for f, label in rows)
    return hits / len(rows)
