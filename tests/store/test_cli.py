"""The artifact commands in-process with click's CliRunner, on both store backends."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner, Result

from aeromancy.cli import main


class RawAccess(Protocol):
    """Direct object access behind the store's back (see tests/store/conftest.py)."""

    def keys(self, prefix: str = "") -> list[str]: ...


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a project directory named ``demo`` that is the working directory."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.aeromancy]\nproject = "demo"\n')
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("x,y\n1,2\n")
    (root / "data" / "sub" / "b.txt").write_text("bee")
    monkeypatch.chdir(root)
    return root


def run(store_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", store_url, *args])


def test_push_then_show_pull_and_list(store_url: str, project: Path) -> None:
    pushed = run(store_url, "push", "data", "data", "--type", "dataset", "--metadata", '{"n": 2}')
    assert pushed.exit_code == 0, pushed.output
    assert "pushed demo/data:v1: 2 file(s)" in pushed.stdout

    shown = run(store_url, "show", "data:v1")
    assert shown.exit_code == 0, shown.output
    for expected in ("demo/data:v1", "dataset", '{"n": 2}', "a.csv", "sub/b.txt", "hand"):
        assert expected in shown.stdout
    assert "8 " in shown.stdout  # size of a.csv
    assert hashlib.sha256(b"bee").hexdigest() in shown.stdout

    pulled = run(store_url, "pull", "data", "out")
    assert pulled.exit_code == 0, pulled.output
    assert (project / "out" / "sub" / "b.txt").read_text() == "bee"
    assert (project / "out" / "a.csv").read_text() == "x,y\n1,2\n"

    run(store_url, "push", "model", "data/a.csv")
    run(store_url, "push", "model", "data/sub/b.txt")
    listed = run(store_url, "artifacts")
    assert listed.exit_code == 0, listed.output
    rows = [line.replace("│", " ").split() for line in listed.stdout.splitlines()]
    table = [row[:3] for row in rows if row and row[0] in ("data", "model")]
    assert table == [["data", "v1", "dataset"], ["model", "v2", "artifact"]]


def test_pull_of_a_single_file_artifact_holds_the_file(store_url: str, project: Path) -> None:
    run(store_url, "push", "table", "data/a.csv")

    result = run(store_url, "pull", "demo/table:v1", "dest")

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (project / "dest").iterdir()) == ["a.csv"]


def test_artifacts_on_an_empty_store_says_so(store_url: str, project: Path) -> None:
    result = run(store_url, "artifacts")

    assert result.exit_code == 0
    assert "project demo has no artifacts" in result.stdout


# -- bad input: exit 2, one line, nothing written ------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["push", "bad name", "data"], "invalid artifact name 'bad name'"),
        (["push", "data", "missing"], "missing does not exist"),
        (["push", "data", "data", "--metadata", "{oops"], "--metadata is not valid JSON"),
        (["push", "data", "data", "--metadata", "[1, 2]"], "must be a JSON object"),
        (["push", "data", "data", "--type", "a b"], "invalid artifact type name"),
    ],
)
def test_bad_push_exits_2_and_writes_nothing(
    store_url: str, project: Path, raw: RawAccess, args: list[str], message: str
) -> None:
    result = run(store_url, *args)

    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert raw.keys() == []


def test_push_of_a_link_leaving_the_directory_exits_2(
    store_url: str, project: Path, raw: RawAccess
) -> None:
    (project / "data" / "leak").symlink_to(project / "pyproject.toml")

    result = run(store_url, "push", "data", "data")

    assert result.exit_code == 2
    assert "points outside the pushed directory" in result.stderr
    assert raw.keys() == []


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("data:v5", "no artifact version demo/data:v5; demo/data has v1"),
        ("dta", "no artifact demo/dta; project demo has data"),
        ("data:vv", "invalid artifact reference 'data:vv'"),
    ],
)
def test_unknown_or_malformed_reference_exits_2(
    store_url: str, project: Path, ref: str, message: str
) -> None:
    run(store_url, "push", "data", "data")

    for command in (["show", ref], ["pull", ref, "dest"]):
        result = run(store_url, *command)
        assert result.exit_code == 2, result.output
        assert message in result.stderr
    assert not (project / "dest").exists()


def test_pull_over_existing_files_exits_2_and_keeps_them(store_url: str, project: Path) -> None:
    run(store_url, "push", "data", "data")
    (project / "dest").mkdir()
    (project / "dest" / "a.csv").write_text("mine")

    result = run(store_url, "pull", "data", "dest")

    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert (project / "dest" / "a.csv").read_text() == "mine"
    assert not (project / "dest" / "sub").exists()


# -- infrastructure: exit 3 -----------------------------------------------------------


def test_unreachable_store_exits_3_after_retries(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A port that was free a moment ago: connections are refused at once.
    from socket import AF_INET, SOCK_STREAM, socket

    with socket(AF_INET, SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AEROMANCY_S3_MAX_ATTEMPTS", "2")

    started = time.monotonic()
    results = [
        run("s3://bucket/store", *args)
        for args in (["push", "data", "data"], ["artifacts"], ["show", "data"])
    ]

    for result in results:
        assert result.exit_code == 3, result.output
        expected = f"cannot reach s3://bucket/store at http://127.0.0.1:{port} after 2 attempts"
        assert expected in result.stderr
    assert time.monotonic() - started < 30


def test_missing_bucket_exits_3_with_a_hint(
    s3_server: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)

    result = run("s3://no-such-bucket-here/store", "push", "data", "data")

    assert result.exit_code == 3
    assert "NoSuchBucket" in result.stderr
    assert "create the bucket" in result.stderr


def test_show_prints_metadata_as_json(store_url: str, project: Path) -> None:
    metadata = {"rows": 2, "source": "unit test", "nested": {"ok": True}}
    run(store_url, "push", "data", "data", "--metadata", json.dumps(metadata))

    result = run(store_url, "show", "data")

    line = next(x for x in result.stdout.splitlines() if x.startswith("metadata"))
    assert json.loads(line.split(None, 1)[1]) == metadata
