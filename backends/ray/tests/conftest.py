"""A real two-node Ray cluster on loopback, shared by every test of this folder.

The environment is set before Ray is imported (node IP 127.0.0.1, no auth token, no usage
stats); the temp dir is short (AF_UNIX socket paths are limited to 107 bytes); the cluster is
Ray's own ``cluster_utils.Cluster`` (separate GCS and raylet processes) and is stopped by its
own ``shutdown()`` -- never ``ray stop``, which would kill other people's Ray on this machine.

Nodes (small: the machine has 2 cores shared with others):

* head: 1 CPU, a custom resource ``head``, ``memory`` resource 4 GiB, object store
  capped at 1.5 GiB (a cap, not an allocation) so the 1 GB-intermediate test can keep
  its array there -- its tasks ask for 2 GiB of ``memory``, which only the head offers;
* worker: 1 CPU, 1 (fake) GPU, ``memory`` 1 GiB, object store 256 MiB.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

# Before anything imports ray (test modules import it after this conftest is loaded).
for _k, _v in {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
    # Serve's proxy must say it is ready within 5 s by default, or the controller kills it:
    # with two shared cores under a full test run it sometimes cannot
    "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60",
    "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "60",
}.items():
    os.environ.setdefault(_k, _v)

from raycluster import GiB, MiB, RayCluster, _free_port  # noqa: E402


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    import ray
    from ray.cluster_utils import Cluster

    tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    client_port = _free_port()
    cluster = Cluster(
        initialize_head=True,
        shutdown_at_exit=True,
        head_node_args={
            "num_cpus": 1,
            "resources": {"head": 1},
            "memory": 4 * GiB,
            "object_store_memory": 1536 * MiB,
            "temp_dir": tmp,
            "include_dashboard": False,
            "ray_client_server_port": client_port,
        },
    )
    try:
        worker = cluster.add_node(
            num_cpus=1, num_gpus=1, memory=1 * GiB, object_store_memory=256 * MiB
        )
        cluster.wait_for_nodes(timeout=60)
        ray.init(address=cluster.address, log_to_driver=False)
        yield RayCluster(
            address=cluster.address,
            client=f"ray://127.0.0.1:{client_port}",
            head_node_id=cluster.head_node.node_id,
            worker_node_id=worker.node_id,
            cluster=cluster,
            temp_dir=tmp,
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Ray's node start-up leaves its client-server log files open (Popen output files);
    # they surface as ResourceWarnings at garbage collection, under filterwarnings=error.
    # Every test here starts or reaches a Ray cluster: the `services` marker (CONTRIBUTING.md).
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"))
            item.add_marker(pytest.mark.services)
