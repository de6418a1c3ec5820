"""``run --sweep`` and ``--repeat``: variants over a diamond graph, skips, seeds, refusals."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from aeromancy.errors import UsageError
from aeromancy.experiments.sweeps import split_values
from aeromancy.launcher.precheck import check_request
from aeromancy.run_options import RunOptions

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Project

SWEEP = ("--sweep", "train.lr=0.1,0.2", "--sweep", "train.optimizer.beta=0.5,0.6,0.7")
RUN = ("run", "--dev", "--tracker", "none")


def digest(record: dict[str, Any], name: str, side: str = "outputs") -> str:
    [entry] = [e for e in record[side] if e["name"] == name]
    return str(entry["digest"])


def test_a_2x3_sweep_runs_upstream_once_and_each_variant_reads_its_own(project: Project) -> None:
    project.ok(*RUN, *SWEEP, "-j", "2")

    [prepare] = project.records_of("prepare")
    [baseline] = project.records_of("baseline")
    trains = project.records_of("train")
    reports = project.records_of("report")
    assert len(trains) == len(reports) == 6
    points = {tuple(sorted(r["variant"]["point"].items())) for r in trains}
    assert points == {
        (("train.lr", lr), ("train.optimizer.beta", beta))
        for lr, beta in itertools.product((0.1, 0.2), (0.5, 0.6, 0.7))
    }
    train_of = {r["variant"]["index"]: r for r in trains}
    for train in trains:
        assert train["config"]["lr"] == train["variant"]["point"]["train.lr"]
        assert (
            train["config"]["optimizer"]["beta"]
            == train["variant"]["point"]["train.optimizer.beta"]
        )
        assert train["config_sources"]["lr"] == "--sweep"
        assert digest(train, "data", "inputs") == digest(prepare, "data")
    assert len({digest(t, "model") for t in trains}) == 6
    for report in reports:
        own = train_of[report["variant"]["index"]]
        assert digest(report, "model", "inputs") == digest(own, "model")
        assert digest(report, "baseline", "inputs") == digest(baseline, "baseline")
    # One invocation: one W&B group for every variant.
    assert len({r["group"] for r in project.records()}) == 1

    before = len(project.records())
    again = project.ok(*RUN, *SWEEP)
    assert len(project.records()) == before
    assert again.stdout.count("skipped (up to date)") == 14
    assert " ran " not in again.stdout


REPEATED = """\
from aeromancy import Context, task


@task(outputs=["noisy"])
def noisy(ctx: Context) -> None:
    path = ctx.workdir / "noisy.txt"
    path.write_text(f"seed {ctx.seed}")
    ctx.log({"score": ctx.seed * 0.5})
    ctx.save("noisy", path)


@task(inputs=["noisy"], outputs=["stable"])
def stable(ctx: Context, scale: int = 2) -> None:
    path = ctx.workdir / "stable.txt"
    path.write_text(f"constant {scale}")
    ctx.save("stable", path)
"""


def test_repeat_gives_seeds_and_reports_determinism(project: Project) -> None:
    project.write("pipeline.py", REPEATED)
    project.commit("seeded")
    result = project.ok(*RUN, "--repeat", "3")

    noisy = project.records_of("noisy")
    stable = project.records_of("stable")
    assert sorted(r["config"]["seed"] for r in noisy) == [0, 1, 2]
    assert sorted(r["variant"]["seed"] for r in stable) == [0, 1, 2]
    assert all(r["config"] == {"scale": 2, "seed": r["variant"]["seed"]} for r in stable)
    assert "noisy: nondeterministic (differ across seeds: noisy/noisy.txt)" in result.stdout
    assert "stable: deterministic (identical outputs across seeds)" in result.stdout

    import json

    rows = json.loads(
        project.ok("results", "noisy", "--group-by-config", "--format", "json").stdout
    )
    assert rows == [{"task": "noisy", "n": 3, "score.mean": 0.5, "score.std": 0.5}]


def test_values_split_outside_json_brackets_and_quotes() -> None:
    assert split_values('[1, 2],[3],"a,b", 4') == ["[1, 2]", "[3]", '"a,b"', "4"]


def test_a_sweep_of_json_values_and_nested_keys(project: Project) -> None:
    project.ok(
        *RUN,
        "--sweep",
        'train.optimizer={"name": "adam"}, {"name": "sgd", "beta": 1.5}',
        "--sweep",
        "train.optimizer.beta=0.1, 0.2",
    )
    trains = project.records_of("train")
    # Axes apply in the order given: the nested key lands in the swept dict.
    assert sorted(
        (t["config"]["optimizer"]["name"], t["config"]["optimizer"]["beta"]) for t in trains
    ) == [
        ("adam", 0.1),
        ("adam", 0.2),
        ("sgd", 0.1),
        ("sgd", 0.2),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sweep", "nope.lr=1,2"), "--sweep nope.lr: unknown task 'nope'"),
        (("--sweep", "train.nope=1,2"), "task train has no parameter 'nope'"),
        (("--sweep", "train.lr="), "--sweep train.lr=: no values"),
        (("--sweep", "train.lr=,"), "no values"),
        (("--sweep", "train.lr=a,b"), "not a valid float | int"),
        (("--sweep", "train.lr=1,2", "--set", "train.lr=3"), "train.lr is both swept and --set"),
        (("--sweep", "train.lr=1", "--sweep", "train.lr=2"), "train.lr is given twice"),
        (("--repeat", "0"), "--repeat 0: needs at least 1"),
        (("--sweep", "train.lr=1,2", "--only", "prepare"), "which --only leaves out"),
        (
            (
                "--sweep",
                "train.lr=" + ",".join(str(i) for i in range(101)),
                "--sweep",
                "prepare.rows=" + ",".join(str(i) for i in range(100)),
            ),
            "the sweep has 10100 variants, more than 10000 (add --yes to run them)",
        ),
    ],
)
def test_bad_sweeps_exit_2_with_one_line_and_run_nothing(
    project: Project, args: tuple[str, ...], message: str
) -> None:
    result = project.cli(*RUN, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert project.records() == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sweeps": ("train.lr=",)}, "--sweep train.lr=: no values"),
        ({"repeat": 0}, "--repeat 0: needs at least 1"),
        (
            {"sweeps": ("train.lr=1,2",), "overrides": (("train.lr", "3"),)},
            "train.lr is both swept and --set",
        ),
    ],
)
def test_a_tracked_sweep_is_refused_by_the_host_precheck(
    project: Project, options: dict[str, Any], message: str
) -> None:
    # The launcher runs this check before it builds any image (launch_tracked_run).
    with pytest.raises(UsageError, match=re.escape(message)):
        check_request(RunOptions(tasks="pipeline.py", **options), project.root)


def test_a_sweep_declared_in_pyproject(project: Project) -> None:
    project.write(
        "pyproject.toml",
        (project.root / "pyproject.toml").read_text()
        + '\n[tool.aeromancy.sweeps.grid]\n"train.lr" = [0.1, 2]\n'
        + '"train.optimizer.name" = ["adam", "sgd, fast"]\n',
    )
    project.commit("declare a sweep")
    project.ok(*RUN, "--sweep-from", "grid")
    configs = sorted(
        (t["config"]["lr"], t["config"]["optimizer"]["name"]) for t in project.records_of("train")
    )
    assert configs == [(0.1, "adam"), (0.1, "sgd, fast"), (2, "adam"), (2, "sgd, fast")]
    assert len(project.records_of("prepare")) == 1

    result = project.cli(*RUN, "--sweep-from", "nope")
    assert result.exit_code == 2
    assert "pyproject.toml has no [tool.aeromancy.sweeps.nope] (sweeps: grid)" in result.output
    result = project.cli(*RUN, "--sweep-from", "grid", "--sweep", "train.lr=3")
    assert result.exit_code == 2
    assert "--sweep train.lr is given twice" in result.output


BARRIER = """\
import os
import time
from pathlib import Path

from aeromancy import Context, task


@task(outputs=["out"])
def wait(ctx: Context, n: int = 0) -> None:
    # Each variant checks in, then waits until the other one has: only variants that
    # run at the same time both get past this.
    barrier = Path(os.environ["BARRIER_DIR"])
    (barrier / f"{n}").write_text("here")
    deadline = time.monotonic() + 120
    while len(list(barrier.iterdir())) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("the other variant never ran alongside")
        time.sleep(0.05)
    path = ctx.workdir / "out.txt"
    path.write_text(str(n))
    ctx.save("out", path)
"""


def test_j_runs_variants_at_the_same_time(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write("pipeline.py", BARRIER)
    project.commit("barrier")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    monkeypatch.setenv("BARRIER_DIR", str(barrier))
    project.ok(*RUN, "--sweep", "wait.n=1,2", "-j", "2")
    runs = project.records_of("wait")
    assert sorted(r["config"]["n"] for r in runs) == [1, 2]
    assert {r["status"] for r in runs} == {"succeeded"}
    first, second = sorted(runs, key=lambda r: r["started"])
    assert second["started"] < first["ended"]  # the two runs overlap
