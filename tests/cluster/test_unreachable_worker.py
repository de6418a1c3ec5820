"""A worker that joined but that the scheduler cannot reach (it advertises an address
nobody listens on, as a host-network worker advertising loopback to a scheduler in
another network namespace does) is exit 3 in one line on connect, not a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dask
import pytest
from distributed import LocalCluster

from aeromancy.cluster.session import connect
from aeromancy.errors import InfrastructureError

if TYPE_CHECKING:
    from conftest import DaskWorker


def test_a_worker_the_scheduler_cannot_reach_is_an_infrastructure_error(
    tmp_path: Path, dask_worker: DaskWorker
) -> None:
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
        args = ("--listen-address", "tcp://127.0.0.1:0", "--contact-address", "tcp://127.0.0.1:9")
        with (
            dask_worker(cluster.scheduler_address, *args),
            pytest.raises(InfrastructureError) as caught,
            connect(cluster.scheduler_address, "", str(tmp_path / "store")),
        ):
            pass
    message = caught.value.message
    assert message.startswith("the cluster's workers could not be asked about their environment (")
    assert "tcp://127.0.0.1:9" in message
    assert "\n" not in str(caught.value)
