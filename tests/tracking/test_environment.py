"""Environment capture: complete, fast, and free of secrets."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aeromancy.identity import RunIdentity
from aeromancy.tracking import environment
from aeromancy.tracking.environment import capture_environment
from aeromancy.tracking.secrets import RECORDABLE_VARIABLES, recordable_environment, redact_url


def test_capture_describes_interpreter_machine_and_code() -> None:
    identity = RunIdentity(
        git_commit="c" * 40,
        git_branch="main",
        git_remote="https://bob:hunter2@example.com/r.git",
        git_dirty=True,
        image_id="sha256:" + "a" * 64,
    )
    captured = capture_environment(identity)

    assert captured["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert captured["python"]["implementation"]
    assert captured["platform"]
    assert captured["host"]
    assert captured["cpu"]["count"] >= 1
    assert captured["memory_bytes"] > 0
    assert captured["aeromancy_version"] == importlib.metadata.version("aeromancy")
    assert captured["git"] == {
        "commit": "c" * 40,
        "branch": "main",
        "remote": "https://***@example.com/r.git",
        "dirty": True,
    }
    assert captured["container"]["image_id"] == identity.image_id
    assert captured["python_packages"]["wandb"] == importlib.metadata.version("wandb")
    assert captured["python_packages"]["aeromancy"] == importlib.metadata.version("aeromancy")
    json.dumps(captured)  # a run record is JSON


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system")
def test_debian_packages_match_dpkg() -> None:
    packages = capture_environment()["debian_packages"]
    listed = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Version}", "dpkg"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert packages["dpkg"] == listed
    assert len(packages) > 10


def test_without_dpkg_debian_packages_are_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dpkg-query, no nvidia-smi
    environment.debian_packages.cache_clear()
    environment.gpu_models.cache_clear()
    try:
        captured = capture_environment()
        assert captured["debian_packages"] is None
        assert captured["gpus"] == []
    finally:
        environment.debian_packages.cache_clear()
        environment.gpu_models.cache_clear()


def test_gpu_models_come_from_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A stand-in nvidia-smi executable on PATH: the real one needs an NVIDIA GPU.
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA A100-SXM4-80GB'\necho 'NVIDIA A100-SXM4-80GB'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    environment.gpu_models.cache_clear()
    try:
        assert capture_environment()["gpus"] == ["NVIDIA A100-SXM4-80GB"] * 2
    finally:
        environment.gpu_models.cache_clear()


def test_capture_is_fast_after_the_first_call() -> None:
    capture_environment()
    started = time.perf_counter()
    for _ in range(10):
        capture_environment()
    assert (time.perf_counter() - started) / 10 < 0.05


def test_no_environment_variable_is_captured_except_the_allow_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "wJalrXUtnFEMI-unique-secret-7f3a9c"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("WANDB_API_KEY", secret + "-wandb")
    monkeypatch.setenv("MY_PASSTHROUGH", secret + "-passthrough")
    monkeypatch.setenv("AEROMANCY_STORE", f"s3://AKIAEXAMPLE:{secret}@bucket/prefix")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:9000/?token={secret}")
    monkeypatch.setenv("WANDB_MODE", "offline")

    captured = capture_environment()

    assert secret not in json.dumps(captured)
    settings = captured["settings"]
    assert set(settings) <= set(RECORDABLE_VARIABLES)
    assert settings["AEROMANCY_STORE"] == "s3://***@bucket/prefix"
    assert settings["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000/?***"
    assert settings["WANDB_MODE"] == "offline"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/data/store", "/data/store"),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
        ("s3://key:secret@bucket/p", "s3://***@bucket/p"),
        ("https://token@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("https://h/x?X-Amz-Signature=abc", "https://h/x?***"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("", ""),
    ],
)
def test_redact_url(value: str, expected: str) -> None:
    assert redact_url(value) == expected


def test_recordable_environment_ignores_everything_else() -> None:
    env = {"HOME": "/root", "AWS_ACCESS_KEY_ID": "AKIA", "WANDB_ENTITY": "team", "PATH": "/bin"}
    assert recordable_environment(env) == {"WANDB_ENTITY": "team"}


def test_without_an_identity_the_launchers_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    passed_in = RunIdentity(git_commit="d" * 40, git_branch="main", image_id="sha256:" + "b" * 64)
    for name, value in passed_in.to_environ().items():
        monkeypatch.setenv(name, value)
    captured = capture_environment()
    assert captured["container"]["image_id"] == passed_in.image_id
    assert captured["git"]["commit"] == passed_in.git_commit
    assert captured["git"]["branch"] == "main"
