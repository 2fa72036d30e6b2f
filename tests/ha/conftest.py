"""The high-availability deployment of docs/operations/high-availability.md, on loopback ports.

One pg_auto_failover cluster (a monitor, a primary, two standbys, ``number_sync_standbys = 1``)
and two application servers (gunicorn, group commit on, standing in for two machines behind a
load balancer) against its multi-host URL, shared by every test of ``tests/ha``.  The two servers
have their own var dirs (their own witness files) with the same key directory content.

``tests/ha`` runs in ``make test-ha`` (``FAPIAO_TEST_HA=1``), part of ``make test``; a plain
``pytest`` skips it.  Without pg_auto_failover installed it is skipped with the reason, except
under CI (``CI=true``), where that fails the run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.faults.server import REPO_ROOT, LiveServer
from tests.ha.cluster import HACluster, ha_cluster, missing_tools
from tests.ha.load import Load

ARTIFACTS = REPO_ROOT / "artifacts" / "ha"
MEASUREMENTS = ARTIFACTS / "measurements.json"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("FAPIAO_TEST_HA") == "1":
        return
    skip = pytest.mark.skip(reason="high-availability tests: run by `make test-ha` (FAPIAO_TEST_HA=1)")
    for item in items:
        if "tests/ha/" in str(item.fspath):
            item.add_marker(skip)


def require_tools() -> None:
    reason = missing_tools()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: tests/ha must run, but {reason}")
    pytest.skip(f"SKIPPED tests/ha: {reason}. CI installs it (.ci/run).")


@dataclass
class Deployment:
    cluster: HACluster
    servers: list[LiveServer]
    token: str
    root: Path
    measurements: dict[str, Any] = field(default_factory=dict)
    earlier_loads: list[Load] = field(default_factory=list)  # their invoices are checked with the rest
    single_node_rate: float = 0.0

    def record(self, name: str, value: Any) -> None:
        self.measurements[name] = value
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        MEASUREMENTS.write_text(json.dumps(self.measurements, indent=2, sort_keys=True) + "\n")

    def extra_server(self, name: str, **env: str) -> LiveServer:
        """Another application host on the same database, keys copied from the first."""
        server = LiveServer(self.root / name, database_url=self.cluster.url(), workers=1, threads=8, env=env)
        shutil.copytree(self.servers[0].var_dir / "keys", server.var_dir / "keys")
        return server


# `fapiao shell -c`: make the signing key and the data keys now, on the first host, so that the
# other hosts get the same ones with the key directory (docs/operations/high-availability.md).
MAKE_KEYS = "from fapiao.platform import datakeys, keys; keys.signing_key(); datakeys.keyring()"
THROUGHPUT_SECONDS = 8.0


def measure_throughput(
    server: LiveServer, token: str, seconds: float = THROUGHPUT_SECONDS
) -> tuple[float, Load]:
    """Invoices acknowledged per second by 16 clients against one server (after a 1 s warm-up)."""
    load = Load([server.port], token, clients=16, prefix=f"throughput-{server.port}")
    load.start()
    time.sleep(1.0)
    began = time.monotonic()
    time.sleep(seconds)
    rate = load.throughput(began, time.monotonic())
    load.stop()
    assert not load.unexpected, load.unexpected[:5]
    return rate, load


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The cluster and two application hosts.  On the way, while the primary is still alone, the
    write throughput of that single node is measured (the baseline of the synchronous replication
    figure: the same PostgreSQL, machine and run)."""
    require_tools()
    began = time.monotonic()
    root = tmp_path_factory.mktemp("ha")
    with ha_cluster(logs_to=ARTIFACTS / "logs") as cluster:
        first = LiveServer(root / "host-a", database_url=cluster.url(), workers=1, threads=16)
        first.prepare()  # migrate + demo, as `make run` does, on the primary while it is alone
        first.manage("shell", "-c", MAKE_KEYS)
        token = first.token("clerk", "write")
        first.start(timeout=60)
        try:
            single_rate, single_load = measure_throughput(first, token)
        finally:
            first.stop()
        for _ in range(2):
            cluster.add_node()
        cluster.wait_stable(timeout=180)
        first.database_url = cluster.url()  # every node: libpq finds the primary
        second = LiveServer(root / "host-b", database_url=cluster.url(), workers=1, threads=16)
        shutil.copytree(first.var_dir / "keys", second.var_dir / "keys")  # the same key directory content
        servers = [first, second]
        try:
            for server in servers:
                server.start(timeout=60)
            deployment = Deployment(cluster, servers, token, root)
            deployment.earlier_loads.append(single_load)
            deployment.single_node_rate = single_rate
            deployment.record("setup_seconds", round(time.monotonic() - began, 1))
            yield deployment
        finally:
            for server in servers:
                server.stop()
