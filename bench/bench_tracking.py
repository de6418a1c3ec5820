"""Benchmark: the overhead a tracker adds per task run: none vs W&B offline vs MLflow.

Two scenarios, each run as fresh processes so a tracker's one-off costs (importing it,
W&B starting its wandb-core service) are counted the way a user pays them:

- ``quickstart``: ``aeromancy run --dev --force --tracker none|wandb|mlflow`` on a copy
  of examples/quickstart (three tasks, 60 logged steps in train).
- ``synthetic``: the tracker driven directly through its protocol for a three-task
  pipeline shaped like the quickstart (ingest -> train with 60 logged steps ->
  evaluate), publishing real outputs to a local store.

W&B runs offline (no network here). MLflow talks to a real ``mlflow server`` that the
benchmark starts on a free loopback port (SQLite backend, served local artifacts), so
its figures include the HTTP round trips of a server on the same machine.

Python bytecode is cached (in a temporary PYTHONPYCACHEPREFIX, so nothing is written
into the tree), as in any normal installation, even where PYTHONDONTWRITEBYTECODE is
set; ``--no-bytecode-cache`` measures with every module compiled at each import.
One untimed run per tracker warms the caches first; then the trackers take turns
(none, wandb, mlflow, none, ...), so a burst of load on the machine hits all alike.

Usage: .venv/bin/python bench/bench_tracking.py [--repeats N] [--scenario NAME]
Target: overhead per task run below 1.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart"
TASKS_PER_RUN = 3
TARGET_SECONDS = 1.5
PYCACHE = Path(tempfile.gettempdir()) / "aeromancy-bench-pycache"
TRACKER_NAMES = ("none", "wandb", "mlflow")
SERVER_START_SECONDS = 300.0


def synthetic_pipeline(tracker_name: str, workdir: Path) -> None:
    """Run three tasks through the tracker protocol, publishing outputs to a local store."""
    from aeromancy.identity import RunIdentity
    from aeromancy.store import open_store
    from aeromancy.tracking import make_tracker
    from aeromancy.tracking.base import TaskRunInfo
    from aeromancy.tracking.environment import capture_environment

    store = open_store(str(workdir / "store"))
    tracker = make_tracker(tracker_name)
    identity = RunIdentity(git_commit="0" * 40, git_branch="main", git_message="bench")
    environment = capture_environment(identity)
    produced: dict[str, object] = {}
    plan = [("ingest", [], 0), ("train", ["dataset"], 60), ("evaluate", ["dataset", "model"], 1)]
    outputs = {"ingest": "dataset", "train": "model", "evaluate": "report"}
    for number, (task, input_names, steps) in enumerate(plan):
        run_id = f"bench-{os.getpid()}-{number}"
        inputs = tuple(produced[name] for name in input_names)
        info = TaskRunInfo(run_id, "bench", task, "g", {"epochs": steps}, (), identity, inputs)  # type: ignore[arg-type]
        run = tracker.start(info)
        for step in range(steps):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        source = workdir / task
        source.mkdir()
        (source / "part-1.csv").write_text("x,y\n" * 200)
        (source / "part-2.csv").write_text("y,z\n" * 100)
        version = store.publish("bench", outputs[task], source, run_id=run_id)
        produced[outputs[task]] = version
        run.log_outputs([version], {f.sha256: store.blob_uri(f.sha256) for f in version.files})
        run.finish({"run_id": run_id, "status": "succeeded", "environment": environment}, True)
    tracker.close()


def quickstart_command(tracker_name: str, workdir: Path) -> tuple[list[str], Path]:
    """Return the ``aeromancy run`` argv and cwd for one quickstart run in ``workdir``."""
    project = workdir / "quickstart"
    shutil.copytree(QUICKSTART, project)
    aeromancy = Path(sys.executable).with_name("aeromancy")
    argv = [str(aeromancy), "--store", str(workdir / "store"), "run", "--dev", "--force"]
    return [*argv, "--tracker", tracker_name], project


def bytecode_env(bytecode_cache: bool) -> dict[str, str]:
    """Return os.environ with Python bytecode cached in PYCACHE, or never written."""
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@contextlib.contextmanager
def mlflow_server(bytecode_cache: bool) -> Iterator[str]:
    """Run ``mlflow server`` on a free loopback port (SQLite, local artifacts); yield its URL."""
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        argv = [
            str(Path(sys.executable).with_name("mlflow")),
            *("server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            *("--backend-store-uri", f"sqlite:///{tmp}/mlflow.db"),
            *("--artifacts-destination", f"{tmp}/artifacts"),
        ]
        env = {**bytecode_env(bytecode_cache), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        server = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(url, server)
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def _wait_for(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise RuntimeError(f"mlflow server did not start on {url}")


def time_one(
    scenario: str, tracker_name: str, bytecode_cache: bool, mlflow_url: str
) -> tuple[float, float]:
    """Return (wall, CPU) seconds of one fresh process running the scenario.

    CPU time (user + system of the process and of the children it waited for) is
    much less sensitive than wall time to other load on the machine.
    """
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        workdir = Path(tmp)
        env = {
            **bytecode_env(bytecode_cache),
            "WANDB_MODE": "offline",
            "WANDB_DIR": str(workdir / "wandb-dir"),
            "AEROMANCY_CACHE": str(workdir / "cache"),
            "MLFLOW_TRACKING_URI": mlflow_url,
        }
        env.pop("WANDB_API_KEY", None)
        if scenario == "quickstart":
            argv, cwd = quickstart_command(tracker_name, workdir)
        else:
            argv = [sys.executable, __file__, "--child", tracker_name, "--workdir", str(workdir)]
            cwd = workdir
        cpu_before = _children_cpu()
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        return time.perf_counter() - started, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def quickstart_available() -> bool:
    """Return True when the quickstart example is present."""
    return (QUICKSTART / "pipeline.py").is_file()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scenario", choices=["quickstart", "synthetic", "both"], default="both")
    parser.add_argument("--no-bytecode-cache", dest="bytecode_cache", action="store_false")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        synthetic_pipeline(args.child, args.workdir)
        return
    scenarios = ["synthetic", "quickstart"] if args.scenario == "both" else [args.scenario]
    if "quickstart" in scenarios and not quickstart_available():
        print("quickstart: examples/quickstart missing, skipped", file=sys.stderr)
        scenarios.remove("quickstart")
    cache = "cached" if args.bytecode_cache else "not cached"
    print(f"{TASKS_PER_RUN} task runs per process, median of {args.repeats} fresh processes;")
    print(f"Python bytecode {cache}; W&B offline; MLflow against a loopback mlflow server")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    header = (
        f"{'scenario':<11} {'measure':<8} {'none s':>7} {'wandb s':>8} {'mlflow s':>9} "
        f"{'wandb +/task':>13} {'mlflow +/task':>14}"
    )
    lines = [header, "-" * len(header)]
    with mlflow_server(args.bytecode_cache) as url:
        for scenario in scenarios:
            samples: dict[str, list[tuple[float, float]]] = {n: [] for n in TRACKER_NAMES}
            for name in TRACKER_NAMES:
                time_one(scenario, name, args.bytecode_cache, url)  # warm-up, not timed
            # Round-robin, so a burst of load on the machine hits every tracker alike.
            for _ in range(args.repeats):
                for name in TRACKER_NAMES:
                    samples[name].append(time_one(scenario, name, args.bytecode_cache, url))
            for column, measure in enumerate(("wall", "cpu")):
                median = {n: statistics.median(s[column] for s in samples[n]) for n in samples}
                lines.append(row(scenario, measure, median))
    print("\n".join(lines))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"target: overhead per task run below {TARGET_SECONDS} s")


def row(scenario: str, measure: str, median: dict[str, float]) -> str:
    """Return one table line: the medians and each tracker's overhead per task run."""
    none = median["none"]
    extra = {n: (median[n] - none) / TASKS_PER_RUN for n in ("wandb", "mlflow")}
    flags = {n: "" if extra[n] < TARGET_SECONDS else " OVER" for n in extra}
    return (
        f"{scenario:<11} {measure:<8} {none:>7.2f} {median['wandb']:>8.2f} "
        f"{median['mlflow']:>9.2f} {extra['wandb']:>13.2f}{flags['wandb']} "
        f"{extra['mlflow']:>14.2f}{flags['mlflow']}"
    )


if __name__ == "__main__":
    main()
