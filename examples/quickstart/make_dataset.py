"""Regenerate data/flowers.csv (run once; the CSV is committed so every run reads the same)."""

import csv
import random
from pathlib import Path

ROWS_PER_CLASS = 150
SEED = 20261122


def main() -> None:
    rng = random.Random(SEED)
    rows = []
    for label, (length, width) in enumerate([(4.2, 1.3), (5.6, 2.0)]):
        for _ in range(ROWS_PER_CLASS):
            rows.append((round(rng.gauss(length, 0.55), 2), round(rng.gauss(width, 0.3), 2), label))
    rng.shuffle(rows)
    path = Path(__file__).parent / "data" / "flowers.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["petal_length", "petal_width", "species"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
