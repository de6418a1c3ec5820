"""A no-op run of a 4-task pipeline that imports pandas and scikit-learn, next to DVC.

    .venv/bin/python bench/bench_noop.py [--repeat 7] [--keep DIR] [--tracked]

Makes, in a temporary directory:

- the project's venv (pandas and scikit-learn from PyPI), named by ``.pdm-python`` as
  pdm records it: Aeromancy's own environment (this checkout's ``.venv``) lacks both;
- a separate venv with DVC from PyPI (the DVC column is skipped, with a note, when it
  cannot be installed);
- one git repository with the pipeline twice over: ``pipeline.py`` for Aeromancy and
  ``dvc.yaml`` with the same four stages (``python stages.py NAME`` in the project's
  venv, each stage's deps and outs declared), both run once.

Then times, interleaved, ``aeromancy run --dev`` and ``dvc repro`` when everything is
up to date (the median of ``--repeat`` runs each, with ``python -c pass`` and importing
the task module's dependencies in the project's python for scale). Bytecode caching is
on for every interpreter (each command runs once before timing). Targets: Aeromancy's
no-op <= 0.5 s and at least 1.8x faster than ``dvc repro``. With ``--tracked`` (needs
Docker and pdm) it also times a tracked no-op ``aeromancy run --tracker none`` of the
same pipeline as a locked, committed project (``--base-image`` sets its base image;
the image is built once, untimed). Target <= 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AEROMANCY = Path(sys.executable).with_name("aeromancy")
TARGET_S = 0.5
TARGET_RATIO = 1.8
TRACKED_TARGET_S = 1.5

STAGES = '''\
"""The pipeline's work, shared by the Aeromancy tasks and the DVC stages."""

import sys
from pathlib import Path

import pandas
from sklearn.linear_model import LogisticRegression


def ingest(out: Path, rows: int = 400) -> None:
    frame = pandas.DataFrame({"x": range(rows), "y": [i % 2 for i in range(rows)]})
    frame.to_csv(out, index=False)


def split(raw: Path, train: Path, test: Path) -> None:
    frame = pandas.read_csv(raw)
    frame.iloc[::4].to_csv(test, index=False)
    frame.drop(frame.index[::4]).to_csv(train, index=False)


def train(data: Path, out: Path) -> None:
    frame = pandas.read_csv(data)
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    out.write_text(f"{model.coef_[0][0]} {model.intercept_[0]}")


def evaluate(data: Path, model: Path, out: Path) -> None:
    frame = pandas.read_csv(data)
    out.write_text(f"rows={len(frame)} model={model.read_text()}")


if __name__ == "__main__":
    name, *paths = sys.argv[1:]
    globals()[name](*map(Path, paths))
'''

PIPELINE = """\
import pandas  # noqa: F401  (imported at module level, as real pipelines do)
import sklearn  # noqa: F401

import stages
from aeromancy import Context, task


@task(outputs={"raw": "dataset"})
def ingest(ctx: Context, rows: int = 400) -> None:
    stages.ingest(ctx.workdir / "raw.csv", rows)
    ctx.save("raw", ctx.workdir / "raw.csv")


@task(inputs=["raw"], outputs={"train_set": "dataset", "test_set": "dataset"})
def split(ctx: Context) -> None:
    train, test = ctx.workdir / "train.csv", ctx.workdir / "test.csv"
    stages.split(ctx.load("raw") / "raw.csv", train, test)
    ctx.save("train_set", train)
    ctx.save("test_set", test)


@task(inputs=["train_set"], outputs={"model": "model"})
def train(ctx: Context) -> None:
    stages.train(ctx.load("train_set") / "train.csv", ctx.workdir / "model.txt")
    ctx.save("model", ctx.workdir / "model.txt")


@task(inputs=["test_set", "model"], outputs=["report"])
def evaluate(ctx: Context) -> None:
    out = ctx.workdir / "report.txt"
    stages.evaluate(ctx.load("test_set") / "test.csv", ctx.load("model") / "model.txt", out)
    ctx.save("report", out)
"""

DVC_YAML = """\
stages:
  ingest:
    cmd: {python} stages.py ingest out/raw.csv
    deps: [stages.py]
    outs: [out/raw.csv]
  split:
    cmd: {python} stages.py split out/raw.csv out/train.csv out/test.csv
    deps: [stages.py, out/raw.csv]
    outs: [out/train.csv, out/test.csv]
  train:
    cmd: {python} stages.py train out/train.csv out/model.txt
    deps: [stages.py, out/train.csv]
    outs: [out/model.txt]
  evaluate:
    cmd: {python} stages.py evaluate out/test.csv out/model.txt out/report.txt
    deps: [stages.py, out/test.csv, out/model.txt]
    outs: [out/report.txt]
"""

PYPROJECT = """\
[project]
name = "noop-bench"
version = "0.1.0"
requires-python = ">=3.10"

[tool.aeromancy]
project = "noop-bench"
tasks = "pipeline.py"
"""


def make_venv(where: Path, *packages: str) -> Path:
    """Return the python of a new venv at ``where`` with ``packages`` from PyPI."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-input", *packages],
        check=True,
    )
    return python


def make_project(root: Path, python: Path) -> None:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "stages.py").write_text(STAGES)
    (root / "pipeline.py").write_text(PIPELINE)
    (root / ".pdm-python").write_text(f"{python}\n")
    (root / "dvc.yaml").write_text(DVC_YAML.format(python=python))
    (root / ".gitignore").write_text("/out/\n.pdm-python\n")
    (root / "out").mkdir()
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "init", "--quiet"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "pipeline"], cwd=root, check=True)


def make_tracked_project(root: Path, base_image: str | None, pdm: str, env: dict[str, str]) -> None:
    """Make the same pipeline as a tracked project (locked deps, committed), run it once."""
    root.mkdir(parents=True)
    dependencies = 'dependencies = ["pandas", "scikit-learn"]\n'
    pyproject = PYPROJECT.replace(
        'requires-python = ">=3.10"\n', f'requires-python = ">=3.10"\n{dependencies}'
    )
    if base_image:
        pyproject += f'base_image = "{base_image}"\n'
    (root / "pyproject.toml").write_text(pyproject)
    (root / "stages.py").write_text(STAGES)
    (root / "pipeline.py").write_text(PIPELINE)
    (root / ".gitignore").write_text(".venv/\n.pdm-python\n")
    subprocess.run([pdm, "lock", "--quiet"], cwd=root, check=True, env=env)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "init", "--quiet"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "pipeline"], cwd=root, check=True)
    timed([str(AEROMANCY), "run", "--tracker", "none"], root, env)


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Return (wall s, CPU s of the command and its children) of one successful run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="keep the venvs and project here")
    parser.add_argument("--tracked", action="store_true", help="also time a tracked no-op")
    parser.add_argument("--base-image", help="[tool.aeromancy] base_image of the tracked project")
    parser.add_argument("--pdm", default=shutil.which("pdm") or "pdm", help="pdm to lock with")
    args = parser.parse_args()
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="aeromancy-bench-noop-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        run(scratch, args)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


def run(scratch: Path, args: argparse.Namespace) -> None:
    # Bytecode caching on, as on a user's machine (this container turns it off).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env |= {
        "AEROMANCY_STORE": str(scratch / "store"),
        "AEROMANCY_CACHE": str(scratch / "cache"),
        "DVC_NO_ANALYTICS": "1",
    }
    python = scratch / "project-venv" / "bin" / "python"
    if not python.exists():
        print("installing pandas and scikit-learn into the project's venv ...", flush=True)
        make_venv(scratch / "project-venv", "pandas", "scikit-learn")
    dvc = scratch / "dvc-venv" / "bin" / "dvc"
    dvc_note = ""
    if not dvc.exists():
        print("installing dvc into its own venv ...", flush=True)
        try:
            make_venv(scratch / "dvc-venv", "dvc")
        except subprocess.CalledProcessError as exc:
            dvc_note = f"DVC column skipped: installing dvc failed ({exc})"
    project = scratch / "project"
    if not project.exists():
        make_project(project, python)
        if not dvc_note:
            subprocess.run([str(dvc), "init", "--quiet"], cwd=project, check=True, env=env)
            timed([str(dvc), "repro", "--quiet"], project, env)
        timed([str(AEROMANCY), "run", "--dev"], project, env)

    commands: dict[str, list[str]] = {
        "python -c pass (project's python)": [str(python), "-c", "pass"],
        "import pandas, sklearn (what is no longer imported)": [
            str(python),
            "-c",
            "import pandas, sklearn.linear_model",
        ],
        "aeromancy run --dev (all up to date)": [str(AEROMANCY), "run", "--dev"],
    }
    if not dvc_note:
        commands["dvc repro (all up to date)"] = [str(dvc), "repro"]
    where = dict.fromkeys(commands, project)
    if args.tracked:
        tracked = scratch / "tracked-project"
        if not tracked.exists():
            print("locking and building the tracked image ...", flush=True)
            make_tracked_project(tracked, args.base_image, args.pdm, env)
        label = "aeromancy run (tracked, all up to date)"
        commands[label] = [str(AEROMANCY), "run", "--tracker", "none"]
        where[label] = tracked
    for label, command in commands.items():  # warm: bytecode written, caches filled
        timed(command, where[label], env)
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in commands}
    before = load()
    for _ in range(args.repeat):
        for label, command in commands.items():
            times[label].append(timed(command, where[label], env))
    after = load()
    print_table(times, args.repeat, before, after, dvc_note)


def print_table(
    times: dict[str, list[tuple[float, float]]], repeat: int, before: str, after: str, note: str
) -> None:
    def median(label: str, column: int) -> float:
        return statistics.median(sample[column] for sample in times[label])

    ours = "aeromancy run --dev (all up to date)"
    dvc = "dvc repro (all up to date)"
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(f"load average before: {before}; after: {after}")
    print(f"median of {repeat} interleaved runs; CPU: user + system of the process tree")
    print()
    print("| command | wall s | min wall s | CPU s | wall vs aeromancy's no-op |")
    print("|---|---|---|---|---|")
    for label, samples in times.items():
        wall = median(label, 0)
        low = min(sample[0] for sample in samples)
        ratio = wall / median(ours, 0)
        print(f"| {label} | {wall:.3f} | {low:.3f} | {median(label, 1):.3f} | {ratio:.2f}x |")
    print()
    wall = median(ours, 0)
    verdict = "meets" if wall <= TARGET_S else "misses"
    print(f"aeromancy no-op {wall:.3f} s wall: {verdict} the {TARGET_S} s target")
    if dvc in times:
        ratio = median(dvc, 0) / wall
        verdict = "meets" if ratio >= TARGET_RATIO else "misses"
        print(f"dvc repro / aeromancy = {ratio:.2f}x (wall): {verdict} the {TARGET_RATIO}x target")
    else:
        print(note)
    tracked = "aeromancy run (tracked, all up to date)"
    if tracked in times:
        value = median(tracked, 0)
        verdict = "meets" if value <= TRACKED_TARGET_S else "misses"
        print(f"tracked no-op {value:.3f} s: {verdict} the {TRACKED_TARGET_S} s target")


if __name__ == "__main__":
    main()
