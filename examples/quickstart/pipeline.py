"""Quickstart: ingest a small flower dataset, train a classifier, evaluate it.

    ingest ──> dataset ──> train ──> model
                  │                    │
                  └──────> evaluate <──┘ ──> report

Run it with `aeromancy run --dev`; change a setting with
`aeromancy run --dev --set train.learning_rate=0.1` (only train and evaluate rerun).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import logreg

from aeromancy import Context, task

SOURCE = Path("data/flowers.csv")
HEADER = ["petal_length", "petal_width", "species"]


@task(outputs={"dataset": "dataset"})
def ingest(ctx: Context, test_fraction: float = 0.25, seed: int = 7) -> None:
    """Split the shipped CSV into train.csv and test.csv."""
    rows = logreg.read_rows(SOURCE)
    random.Random(seed).shuffle(rows)
    cut = int(len(rows) * (1 - test_fraction))
    out = ctx.workdir / "dataset"
    out.mkdir()
    logreg.write_rows(out / "train.csv", HEADER, rows[:cut])
    logreg.write_rows(out / "test.csv", HEADER, rows[cut:])
    ctx.save("dataset", out, metadata={"train_rows": cut, "test_rows": len(rows) - cut})


@task(inputs=["dataset"], outputs={"model": "model"})
def train(ctx: Context, learning_rate: float = 0.5, epochs: int = 60) -> None:
    """Fit logistic regression by gradient descent, logging the loss each epoch."""
    rows = logreg.read_rows(ctx.load("dataset") / "train.csv")
    means, stds = logreg.standardiser(rows)
    model = {"means": means, "stds": stds, "weights": [0.0] * len(means), "bias": 0.0}
    for epoch in range(epochs):
        logreg.gradient_step(model, rows, learning_rate)
        ctx.log({"loss": logreg.log_loss(model, rows)}, step=epoch)
    path = ctx.workdir / "model.json"
    path.write_text(json.dumps(model, indent=2))
    ctx.save("model", path, metadata={"epochs": epochs, "learning_rate": learning_rate})


@task(inputs=["dataset", "model"], outputs={"report": "report"})
def evaluate(ctx: Context) -> None:
    """Score the model on the held-out rows and write a report."""
    test = logreg.read_rows(ctx.load("dataset") / "test.csv")
    model = json.loads((ctx.load("model") / "model.json").read_text())
    metrics = {"accuracy": logreg.accuracy(model, test), "log_loss": logreg.log_loss(model, test)}
    ctx.log(metrics)
    out = ctx.workdir / "report"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "report.md").write_text(
        f"# Quickstart report\n\n"
        f"- test rows: {len(test)}\n"
        f"- accuracy: {metrics['accuracy']:.3f}\n"
        f"- log loss: {metrics['log_loss']:.4f}\n"
    )
    ctx.save("report", out)
