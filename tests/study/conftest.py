"""A real two-node SLURM cluster on this host for the SLURM executor's tests (started once, stopped at the end)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.study.slurm_cluster import LoopbackCluster, missing_binaries


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    missing = missing_binaries()
    if missing:
        message = (f"SLURM is not installed ({', '.join(missing)} missing); "
                   "`bash .ci/system-deps` installs slurmctld, slurmd, slurm-client and munge")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # Two nodes on this host (a slurmd each, on its own port): multi-node jobs run too.
    cluster = LoopbackCluster(tmp_path_factory.mktemp("slurm"), nodes=2)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
