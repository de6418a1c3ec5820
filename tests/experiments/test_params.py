"""Task config: typed --set (nested keys, ints for floats, annotations), params layers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from aeromancy import Context, UsageError, task
from aeromancy.experiments.params import Layer, parse_value, resolve_configs
from aeromancy.tasks import SPEC_ATTRIBUTE, TaskSpec

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Project


@pytest.mark.parametrize(
    ("raw", "allowed", "expected"),
    [
        ("true", (bool,), True),
        ("No", (bool,), False),
        ("0", (bool,), False),
        ("7", (int,), 7),
        ("-3", (int,), -3),
        ("0.01", (float, int), 0.01),
        ("5", (float, int), 5),
        ("hello world", (str,), "hello world"),
        ("[1, 2]", (list,), [1, 2]),
        ('{"a": 1}', (dict,), {"a": 1}),
        ("3", None, 3),
        ("plain", None, "plain"),
        ("null", (str, type(None)), None),
        ("x", (str, type(None)), "x"),
    ],
)
def test_parse_value_follows_the_allowed_types(raw: str, allowed: Any, expected: Any) -> None:
    value = parse_value(raw, allowed)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "allowed"),
    [
        ("maybe", (bool,)),
        ("1.5", (int,)),
        ("abc", (float, int)),
        ("{}", (list,)),
        ("[1]", (dict,)),
        ("[1,", (list,)),
        ("nan", (float, int)),
        ("inf", (float, int)),
    ],
)
def test_parse_value_refuses_what_does_not_fit(raw: str, allowed: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json and int raise plain ValueError
        parse_value(raw, allowed)


def _spec(fn: Any) -> TaskSpec:
    spec = getattr(fn, SPEC_ATTRIBUTE)
    assert isinstance(spec, TaskSpec)
    return spec


def _specs() -> dict[str, TaskSpec]:
    @task(outputs=["a"])
    def first(ctx: Context, n: int = 1, flag: bool = False, name: str | None = None) -> None:
        pass

    @task(inputs=["a"], outputs=["b"])
    def second(
        ctx: Context,
        rate: float = 0.5,
        either: float | int = 1,
        optimizer: dict[str, Any] = {"lr": 0.1, "betas": {"b1": 0.9}},  # noqa: B006
    ) -> None:
        pass

    return {"first": _spec(first), "second": _spec(second)}


def test_set_nested_keys_numbers_and_annotations() -> None:
    resolved = resolve_configs(
        _specs(),
        [
            ("first.n", "5"),
            ("first.flag", "yes"),
            ("first.name", "bob"),
            ("second.rate", "2"),
            ("second.either", "2.5"),
            ("second.optimizer.lr", "0.01"),
            ("second.optimizer.betas.b1", "1"),
            ("second.optimizer.fresh", "[1, 2]"),
        ],
    )
    first, second = resolved.configs["first"], resolved.configs["second"]
    assert first == {"n": 5, "flag": True, "name": "bob"}
    assert second["rate"] == 2
    assert type(second["rate"]) is int  # an int given for a float stays an int
    assert second["either"] == 2.5
    assert second["optimizer"] == {"lr": 0.01, "betas": {"b1": 1}, "fresh": [1, 2]}
    assert resolved.sources["second"]["optimizer.lr"] == "--set"
    assert resolved.sources["second"]["rate"] == "--set"
    untouched = resolve_configs(_specs()).configs["second"]
    assert untouched["optimizer"] == {"lr": 0.1, "betas": {"b1": 0.9}}, "defaults never change"


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("nope.n", "1", "unknown task 'nope'"),
        ("first.m", "1", "has no parameter 'm'"),
        ("first.n", "x", "not a valid int"),
        ("first", "1", "expected TASK.PARAM=VALUE"),
        ("first.n.deeper", "1", "first.n is not a dict"),
        ("second.rate", "nan", "not a finite number"),
        ("second.optimizer.betas.b1", "fast", "not a valid float"),
    ],
)
def test_bad_set_is_refused(key: str, raw: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_configs(_specs(), [(key, raw)])


def test_layers_override_in_order_and_name_their_source() -> None:
    pyproject = Layer("pyproject.toml", {"second": {"rate": 0.7, "optimizer": {"lr": 0.2}}})
    params = Layer("params.toml", {"second": {"rate": 0.8}, "first": {"n": 3}})
    resolved = resolve_configs(_specs(), [("first.n", "9")], [pyproject, params])
    assert resolved.configs["second"]["rate"] == 0.8
    assert resolved.configs["second"]["optimizer"] == {"lr": 0.2, "betas": {"b1": 0.9}}
    assert resolved.configs["first"]["n"] == 9
    assert resolved.sources["second"] == {
        "rate": "params.toml",
        "either": "default",
        "optimizer.lr": "pyproject.toml",
        "optimizer.betas.b1": "default",
    }
    assert resolved.sources["first"]["n"] == "--set"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"nope": {"n": 1}}, "params.toml: nope.n: unknown task 'nope'"),
        ({"first": {"n": "three"}}, 'params.toml: first.n is "three", not a int'),
        ({"first": {"flag": 1}}, "params.toml: first.flag is 1, not a bool"),
        ({"first": 3}, "first must be a table"),
    ],
)
def test_bad_layer_values_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve_configs(_specs(), [], [Layer("params.toml", values)])


def test_nested_and_numeric_set_reach_the_task_and_its_record(project: Project) -> None:
    project.ok(
        "run", "--dev", "--tracker", "none",
        "--set", "train.optimizer.beta=0.5",
        "--set", "train.lr=1",
        "--set", "prepare.rows=3",
    )  # fmt: skip
    [train] = project.records_of("train")
    assert train["config"] == {"lr": 1, "optimizer": {"name": "sgd", "beta": 0.5}}
    assert type(train["config"]["lr"]) is int
    assert train["config_sources"] == {
        "lr": "--set",
        "optimizer.name": "default",
        "optimizer.beta": "--set",
    }
    model = project.store().resolve("model", "exp", namespace="dev")
    written = json.loads(
        (project.store().materialize(model, project.root.parent / "m") / "model.json").read_text()
    )
    assert written == {"w": 3, "opt": {"name": "sgd", "beta": 0.5}}  # sum(0..2) * 1


def test_a_params_file_change_reruns_only_the_task_whose_config_changed(project: Project) -> None:
    project.write(
        "pyproject.toml",
        (project.root / "pyproject.toml").read_text()
        + '\n[tool.aeromancy.params.train]\nlr = 0.3\noptimizer = { name = "adam" }\n',
    )
    project.write("params.toml", "[prepare]\nrows = 6\n")
    project.commit("params")
    project.ok("run", "--dev", "--tracker", "none")
    [prepare] = project.records_of("prepare")
    [train] = project.records_of("train")
    assert prepare["config"] == {"rows": 6}
    assert prepare["config_sources"] == {"rows": "params.toml"}
    assert train["config"] == {"lr": 0.3, "optimizer": {"name": "adam", "beta": 0.9}}
    assert train["config_sources"]["optimizer.name"] == "pyproject.toml"

    project.write("params.toml", "[prepare]\nrows = 6\n[train]\nlr = 0.4\n")
    project.commit("tune lr")
    before = {r["run_id"] for r in project.records()}
    project.ok("run", "--dev", "--tracker", "none")
    new = [r for r in project.records() if r["run_id"] not in before]
    # report reads train's new model, so it runs too; prepare and baseline are untouched.
    assert sorted(r["task"] for r in new) == ["report", "train"]
    [again] = [r for r in new if r["task"] == "train"]
    assert again["config"]["lr"] == 0.4
    assert again["config_sources"]["lr"] == "params.toml"
    listed = project.ok("list", "--dev").stdout
    assert "up to date" in listed
    assert "config" not in listed


def test_a_bad_params_file_exits_2_before_anything_runs(project: Project) -> None:
    project.write("params.toml", "[train]\nlr = 'fast'\n")
    project.commit("bad")
    result = project.cli("run", "--dev", "--tracker", "none")
    assert result.exit_code == 2
    assert 'params.toml: train.lr is "fast", not a float | int' in result.output
    assert project.records() == []
