"""A ``--sweep --repeat`` run tracked in W&B (real SDK, offline): one group, the point in configs.

The run is a real ``aeromancy`` subprocess in a real git repository; every W&B run is
read back from its offline ``.wandb`` file and matched to Aeromancy's run records.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from aeromancy.store import open_store

AEROMANCY = Path(sys.executable).with_name("aeromancy")

PIPELINE = """\
from aeromancy import Context, task


@task(outputs=["data"])
def prepare(ctx: Context) -> None:
    path = ctx.workdir / "data.txt"
    path.write_text("1 2 3")
    ctx.save("data", path)


@task(inputs=["data"], outputs=["model"])
def train(ctx: Context, lr: float = 0.1, optimizer: dict = {"name": "sgd"}) -> None:
    ctx.log({"loss": lr * 10 + ctx.seed})
    path = ctx.workdir / "model.txt"
    path.write_text(f"{lr} {optimizer} {ctx.seed}")
    ctx.save("model", path)


@task(inputs=["model"], outputs=["report"])
def report(ctx: Context) -> None:
    path = ctx.workdir / "report.txt"
    path.write_text((ctx.load("model") / "model.txt").read_text())
    ctx.save("report", path)
"""


def make_project(root: Path) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "swept"\nversion = "0.1.0"\n\n[tool.aeromancy]\nproject = "swept"\n'
    )
    (root / "pipeline.py").write_text(PIPELINE)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "swept pipeline"], check=True)
    return root


def test_variants_share_one_group_and_carry_their_point(
    tmp_path: Path, wandb_env: Path, read_runs: Any
) -> None:
    project = make_project(tmp_path / "swept")
    store_url = str(tmp_path / "store")
    done = subprocess.run(
        [
            *(str(AEROMANCY), "--store", store_url, "run", "--dev", "--tracker", "wandb"),
            *("--sweep", "train.lr=0.1,0.2", "--sweep", "train.optimizer.name=adam,sgd"),
            *("--repeat", "2"),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    records = {r["run_id"]: r for r in open_store(store_url).list_run_records("swept", "dev")}
    runs = read_runs(wandb_env / "wandb")
    # With --repeat every task is per variant; prepare runs once per seed (then it is
    # up to date), train and report once per variant (2 x 2 points x 2 seeds).
    assert len(runs) == len(records) == 2 + 8 * 2
    [group] = {r["group"] for r in records.values()}
    assert {run.group for run in runs} == {group}

    points, prepared = set(), []
    for run in runs:
        record = records[run.config["aeromancy"]["run_id"]]
        assert run.job_type == record["task"]
        variant = record["variant"]
        point = variant["point"]
        # The sweep point, nested as W&B shows config keys: sweep.train.lr and so on.
        assert run.config["sweep"] == {
            "train": {"lr": point["train.lr"], "optimizer": {"name": point["train.optimizer.name"]}}
        }
        assert run.config["seed"] == variant["seed"]
        assert run.config["aeromancy"]["variant"] == {
            "index": variant["index"],
            "label": variant["label"],
            "seed": variant["seed"],
        }
        if record["task"] == "train":
            assert run.config["lr"] == point["train.lr"]
            assert run.config["optimizer"] == {"name": point["train.optimizer.name"]}
            assert run.summary["loss"] == point["train.lr"] * 10 + variant["seed"]
        if record["task"] == "prepare":
            prepared.append(variant["seed"])
        else:
            lr, name = point["train.lr"], point["train.optimizer.name"]
            points.add((record["task"], lr, name, variant["seed"]))
    assert sorted(prepared) == [0, 1]
    assert len(points) == 16  # every (task, lr, optimizer, seed) once
