"""Fixtures shared by every test suite.

- Every test gets its own cache and XDG directories, and dummy AWS credentials, so
  nothing reads or writes the real home directory or reaches a real AWS account.
  Environment images are not saved into stores (``AEROMANCY_STORE_IMAGES=0``) except
  in tests/environments.
- ``s3_server``: moto's standalone S3 server, a real HTTP server in a subprocess on a
  free loopback port, started once per session; yields its endpoint URL.
- ``s3_store_url``: a fresh bucket (versioning off) on that server; returns
  ``s3://bucket/store`` and points ``AWS_ENDPOINT_URL`` at the server.
- ``local_store_url``: a store directory under the test's tmp dir.
- ``store_url``: both of the above, ids ``local`` and ``s3``, for backend contract tests.
- ``mlflow_server``: a real ``mlflow server`` (SQLite backend, served local artifacts) on
  a free loopback port, started once per session (tests/tracking, tests/launcher).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SERVER_START_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Point cache, XDG dirs and AWS config at a per-test scratch home; return it."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("AEROMANCY_CACHE", str(home / "aeromancy-cache"))
    for variable in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(variable, str(home / variable.lower()))
    monkeypatch.delenv("AEROMANCY_STORE", raising=False)
    # Saving every test's images into its fresh store would copy ~0.5 GB per tracked run;
    # tests/environments turns it back on where that is what is tested.
    monkeypatch.setenv("AEROMANCY_STORE_IMAGES", "0")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in DUMMY_AWS.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    return home


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer on {endpoint}")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Run moto's S3 server on a free loopback port for the session; yield its URL.

    The server answers one request at a time (see serial_moto_server.py): that makes
    its ``If-None-Match: *`` check atomic, as it is on real S3.
    """
    port = free_port()
    env = {**os.environ, **DUMMY_AWS}
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("serial_moto_server.py")), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(endpoint, process)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3_store_url(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Create a fresh bucket (versioning off) and return ``s3://<bucket>/store``."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    boto3.session.Session().client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/store"


@pytest.fixture
def local_store_url(tmp_path: Path) -> str:
    """Return the path of a not-yet-created local store directory."""
    return str(tmp_path / "store")


@pytest.fixture(params=["local", "s3"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Return a store URL on each backend in turn (ids ``local`` and ``s3``)."""
    if request.param == "s3":
        request.applymarker(pytest.mark.s3)
        return str(request.getfixturevalue("s3_store_url"))
    return str(request.getfixturevalue("local_store_url"))


@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server``: its URL and the directory holding all it stores."""

    url: str
    root: Path

    def stored_files(self) -> list[Path]:
        """Return every file the server wrote: its SQLite database and its artifacts."""
        return [p for p in self.root.rglob("*") if p.is_file() and p.name != "server.log"]


MLFLOW_START_TIMEOUT = 300.0  # importing mlflow's server compiles thousands of modules
# The venv holds no compiled bytecode and this VM sets PYTHONDONTWRITEBYTECODE, so every
# process importing mlflow would compile it again (minutes on a loaded 2-CPU machine).
# Processes started with this environment share one bytecode cache outside the tree.
BYTECODE_CACHE_ENV = {"PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "aeromancy-pycache")}


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """Run ``mlflow server`` on a free loopback port for the session; yield it.

    The backend is SQLite and artifacts are served by the server itself (clients upload
    through it), all under one temp directory, so a test can scan everything it stored.
    """
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    argv = [
        str(Path(sys.executable).with_name("mlflow")),
        *("server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"),
        *("--artifacts-destination", str(root / "artifacts")),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # No background job runner (one process less); bytecode cached, as in a normal install.
    env = {**env, **BYTECODE_CACHE_ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with (root / "server.log").open("wb") as log:
        # Its own session, so that stopping it stops the worker processes it forks.
        process = subprocess.Popen(
            argv, cwd=root, env=env, stdout=log, stderr=log, start_new_session=True
        )
    server = MlflowServer(f"http://127.0.0.1:{port}", root)
    try:
        _wait_for_mlflow(server, process)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for_mlflow(server: MlflowServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + MLFLOW_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (server.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mlflow server exited with code {process.returncode}:\n{log}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"mlflow server did not answer on {server.url}")
