"""Refusals of ``--cluster`` before anything is built or submitted, each in one line."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from aeromancy.cli import main
from aeromancy.cluster.address import CONNECT_TIMEOUT_S
from aeromancy.cluster.fit import WorkerReport, refusal, versions_digest
from aeromancy.cluster.session import connect
from aeromancy.errors import InfrastructureError, UsageError

PYPROJECT = '[project]\nname = "demo"\nversion = "0"\n\n[tool.aeromancy]\n{extra}\n'


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "demo"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT.format(extra=""))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for sock in held:
        sock.close()
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize(
    "address", ["127.0.0.1:8786", "http://127.0.0.1:8786", "tcp://127.0.0.1", "tcp://:8786"]
)
def test_a_malformed_address_is_a_usage_error(project: Path, address: str) -> None:
    result = CliRunner().invoke(main, ["run", "--cluster", address])
    assert result.exit_code == 2
    assert "tcp://HOST:PORT" in one_line(result.output)


def test_cluster_with_dev_is_refused(project: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--dev", "--cluster", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2
    assert "tracked runs only" in one_line(result.output)


@pytest.mark.parametrize("source", ["option", "environment", "pyproject"])
def test_an_unreachable_scheduler_is_exit_3_in_one_line_before_any_build(
    project: Path, source: str
) -> None:
    address = f"tcp://127.0.0.1:{closed_port()}"
    args, env = ["run"], {}
    if source == "option":
        args += ["--cluster", address]
    elif source == "environment":
        env["AEROMANCY_CLUSTER"] = address
    else:
        (project / "pyproject.toml").write_text(PYPROJECT.format(extra=f'cluster = "{address}"'))
    started = time.monotonic()
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 3
    line = one_line(result.output)
    assert f"the Dask scheduler at {address} cannot be reached" in line
    assert "aeromancy cluster up" in line
    assert time.monotonic() - started < CONNECT_TIMEOUT_S


def test_a_dev_run_ignores_the_cluster_setting(project: Path) -> None:
    (project / "pipeline.py").write_text(
        "from aeromancy import Context, task\n\n\n@task()\ndef noop(ctx: Context) -> None:\n"
        "    pass\n"
    )
    env = {"AEROMANCY_CLUSTER": f"tcp://127.0.0.1:{closed_port()}"}
    result = CliRunner().invoke(main, ["--store", str(project / "store"), "run", "--dev"], env=env)
    assert result.exit_code == 0, result.output


def test_a_scheduler_that_never_answers_fails_within_the_timeout(
    silent_port: int, tmp_path: Path
) -> None:
    started = time.monotonic()
    address = f"tcp://127.0.0.1:{silent_port}"
    with pytest.raises(InfrastructureError) as caught, connect(address, "", str(tmp_path)):
        pass
    assert f"the Dask scheduler at {address} cannot be reached" in str(caught.value)
    assert time.monotonic() - started < 2 * CONNECT_TIMEOUT_S  # distributed's import included


def test_a_store_workers_cannot_share_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught, connect("tcp://127.0.0.1:1", "", "memory://x"):
        pass
    assert "cannot be shared with cluster workers" in str(caught.value)


def test_workers_of_another_environment_are_refused_in_one_line() -> None:
    mine = versions_digest()
    same = WorkerReport("sha256:" + "a" * 64, mine, "probe")
    assert refusal({"tcp://w1": same}, "sha256:" + "a" * 64, "probe") is None
    other_image = WorkerReport("sha256:" + "b" * 64, mine, "probe")
    found = refusal({"tcp://w1": same, "tcp://w2": other_image}, "sha256:" + "a" * 64, "probe")
    assert (
        found == "worker tcp://w2 runs environment image bbbbbbbbbbbb, this run's is aaaaaaaaaaaa"
    )
    other_versions = WorkerReport("", "sha256:other", "probe")
    found = refusal({"tcp://w1": other_versions}, "sha256:" + "a" * 64, "probe")
    assert found == "worker tcp://w1 has other package versions than this run's environment"
    blind = WorkerReport("", mine, None)
    found = refusal({"tcp://w1": blind}, "", "probe")
    assert found == "worker tcp://w1 does not see the store directory at the same path"
    assert refusal({}, "", None) == "the cluster has no workers"
