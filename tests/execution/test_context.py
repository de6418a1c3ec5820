"""The Context handed to tasks: declared inputs and outputs only, one save per output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aeromancy import Context, UsageError


def make(tmp_path: Path, logged: list[Any] | None = None) -> Context:
    def loader(ref: str) -> Path:
        return tmp_path / "loaded" / ref

    def logger(metrics: Any, step: int | None) -> None:
        if logged is not None:
            logged.append((metrics, step))

    return Context(
        task="train",
        run_id="r1",
        config={"n": 1},
        workdir=tmp_path,
        inputs={"other/raw": object(), "extra": object()},
        outputs={"model": "model", "notes": "artifact"},
        loader=loader,
        logger=logger,
    )


def test_load_resolves_declared_inputs_by_ref_or_name(tmp_path: Path) -> None:
    ctx = make(tmp_path)
    assert ctx.load("other/raw") == tmp_path / "loaded" / "other/raw"
    assert ctx.load("raw") == tmp_path / "loaded" / "other/raw"
    with pytest.raises(UsageError, match="not one of its inputs"):
        ctx.load("model")


def test_save_accepts_each_declared_output_once(tmp_path: Path) -> None:
    ctx = make(tmp_path)
    (tmp_path / "m.txt").write_text("m")
    ctx.save("model", tmp_path / "m.txt", metadata={"epochs": 3})
    with pytest.raises(UsageError, match="saves 'model' twice"):
        ctx.save("model", tmp_path / "m.txt")
    with pytest.raises(UsageError, match="not one of its outputs"):
        ctx.save("weights", tmp_path / "m.txt")
    with pytest.raises(UsageError, match="does not exist"):
        ctx.save("notes", tmp_path / "absent")
    saved = ctx.saved_outputs()
    assert list(saved) == ["model"]
    assert saved["model"].type == "model"
    assert dict(saved["model"].metadata) == {"epochs": 3}


def test_config_is_a_copy_and_log_forwards(tmp_path: Path) -> None:
    logged: list[Any] = []
    ctx = make(tmp_path, logged)
    ctx.config["n"] = 99
    assert ctx.config == {"n": 1}
    ctx.log({"loss": 0.5}, step=2)
    assert logged == [({"loss": 0.5}, 2)]
    assert ctx.run_id == "r1"
    assert ctx.workdir == tmp_path
