"""A worker that joined but that the scheduler cannot reach (it advertises an address
nobody listens on, as a host-network worker advertising loopback to a scheduler in
another network namespace does) is exit 3 in one line on connect, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask
import pytest
from distributed import LocalCluster

from aeromancy.cluster.session import connect
from aeromancy.errors import InfrastructureError


def test_a_worker_the_scheduler_cannot_reach_is_an_infrastructure_error(tmp_path: Path) -> None:
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "3s"}),
        LocalCluster(
            n_workers=0,
            processes=False,
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
    ):
        dask_cli = Path(sys.executable).with_name("dask")
        argv = [str(dask_cli), "worker", cluster.scheduler_address, "--no-nanny"]
        argv += ["--listen-address", "tcp://127.0.0.1:0", "--contact-address", "tcp://127.0.0.1:9"]
        worker = subprocess.Popen(
            argv, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            with (
                pytest.raises(InfrastructureError) as caught,
                connect(cluster.scheduler_address, "", str(tmp_path / "store")),
            ):
                pass
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    message = caught.value.message
    assert message.startswith("the cluster's workers could not be asked about their environment (")
    assert "tcp://127.0.0.1:9" in message
    assert "\n" not in str(caught.value)
