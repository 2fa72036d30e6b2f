"""Failover under load on a real pg_auto_failover cluster: nothing acknowledged is lost or doubled.

Sixteen clients issue invoices through two application servers (the multi-host URL, group
commit on), each retrying its invoice with the same Idempotency-Key until it is acknowledged.
Meanwhile the cluster goes through two planned switchovers (``pg_autoctl perform switchover``)
and two unplanned losses (SIGKILL of the primary's whole ``pg_autoctl`` process group).  After
each loss the killed node is started again and must come back as a standby; while it does,
a prober tries to write to it directly, and no write may succeed (no split brain).

Afterwards every acknowledged invoice is present exactly once with the acknowledged content,
every receipt verifies, numbers are gap-free, ``ledger verify`` (against both hosts' witness
files) and ``audit verify`` are clean.  The seconds without writes during each failover and the
write throughput against a single node are measured and written to artifacts/ha/measurements.json
(docs/operations/high-availability.md quotes them).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest

from fapiao.platform.replication import SYNC_STANDBYS_SQL
from tests.faults.server import LiveServer
from tests.faults.test_kill_server import check_outcome
from tests.ha.cluster import HACluster
from tests.ha.conftest import THROUGHPUT_SECONDS, Deployment, measure_throughput
from tests.ha.load import Load

pytestmark = pytest.mark.timeout(600)

LOAD_SECONDS_BEFORE = 2.0  # load before each failover (seconds)


class Prober:
    """Tries a write on one node every 20 ms; counts the writes it accepted (there must be none)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.accepted = 0
        self.refused: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=1) as connection:
                    connection.execute("INSERT INTO ha_probe (at) VALUES (now())")
                    self.accepted += 1
            except psycopg.Error as error:
                name = type(error).__name__
                self.refused[name] = self.refused.get(name, 0) + 1
            time.sleep(0.02)

    def __enter__(self) -> Prober:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def count_probes(cluster: HACluster) -> int:
    with psycopg.connect(cluster.url(), autocommit=True, connect_timeout=5) as connection:
        row = connection.execute("SELECT count(*) FROM ha_probe").fetchone()
    return int(row[0]) if row else 0


def wait_primary_elected(cluster: HACluster, old: str) -> float:
    return cluster.wait_for("a new primary", lambda: cluster.primary() not in (None, old), timeout=90)


def verify_clean(server: LiveServer, witnesses: list[str]) -> None:
    args = ["ledger", "verify", "--json", "--lang", "en"]
    for path in witnesses:
        args += ["--witness", path]
    report = json.loads(server.manage(*args, timeout=300))
    assert report["ok"], json.dumps(report, ensure_ascii=False)[:3000]
    audit = server.manage("audit", "verify", timeout=300)
    assert audit, "audit verify printed nothing"


def test_sync_replication_is_in_place(deployment: Deployment) -> None:
    cluster = deployment.cluster
    assert cluster.stable(), cluster.describe()
    names = cluster.sync_standby_names()
    assert names.startswith("ANY 1 ("), f"synchronous_standby_names is {names!r}"
    primary = cluster.primary()
    assert primary is not None
    with psycopg.connect(cluster.node_url(primary), autocommit=True) as connection:
        assert connection.execute("SHOW synchronous_commit").fetchone() == ("on",)
        (synchronous, _hidden) = connection.execute(SYNC_STANDBYS_SQL).fetchone() or (0, 0)
        assert synchronous == 2
        # The cost of the application's check (uncached): one round trip to the primary.
        rounds = 500
        began = time.perf_counter()
        for _ in range(rounds):
            connection.execute(SYNC_STANDBYS_SQL).fetchone()
        per_check_ms = (time.perf_counter() - began) / rounds * 1000
    deployment.record("sync_standby_check_ms_uncached", round(per_check_ms, 3))
    for server in deployment.servers:  # every CLI command reads the same multi-host URL
        assert "PASSED" in server.manage("ledger", "verify", "--lang", "en")


def test_write_throughput_against_a_single_node(deployment: Deployment) -> None:
    """Synchronous replication to a standby against the same primary measured alone (the fixture
    measured it before the standbys joined): same PostgreSQL, same machine, same run."""
    rate, load = measure_throughput(deployment.servers[0], deployment.token)
    deployment.earlier_loads.append(load)
    single = deployment.single_node_rate
    deployment.record(
        "write_throughput",
        {
            "sync_replication_per_s": round(rate, 1),
            "single_node_per_s": round(single, 1),
            "ratio": round(rate / single, 3),
            "clients": 16,
            "seconds": THROUGHPUT_SECONDS,
        },
    )
    assert rate > 0 and single > 0


def test_failovers_under_load_lose_nothing(deployment: Deployment) -> None:
    cluster, servers, token = deployment.cluster, deployment.servers, deployment.token
    load = Load([server.port for server in servers], token, clients=16, prefix="failover")
    events: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    receipts: list[dict[str, Any]] = []
    with psycopg.connect(cluster.url(), autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS ha_probe (id bigserial PRIMARY KEY, at timestamptz)")
    probes_before = count_probes(cluster)
    load.start()
    try:
        for kind in ("switchover", "switchover", "kill", "kill"):
            time.sleep(LOAD_SECONDS_BEFORE)
            old = cluster.primary()
            assert old is not None, cluster.describe()
            with load.lock:  # the last invoice acknowledged before the failover: its receipt must still prove
                receipts += [body["receipt"] for body in list(load.acked.values())[-1:]]
            began = time.monotonic()
            if kind == "switchover":
                cluster.switchover()
                wait_primary_elected(cluster, old)
            else:
                cluster.kill(old)
                wait_primary_elected(cluster, old)
            elected = time.monotonic()
            # Writes resume once the new primary has a synchronous standby again.
            if kind == "kill":
                with Prober(cluster.node_url(old)) as prober:
                    cluster.start(cluster.nodes[old])  # the old primary comes back ...
                    cluster.wait_stable(timeout=120)  # ... as a standby
                    time.sleep(1.0)
                probes.append({"node": old, "accepted": prober.accepted, "refused": prober.refused})
            else:
                cluster.wait_stable(timeout=120)
            stable = time.monotonic()
            time.sleep(1.0)
            gap = load.longest_gap(began - 0.5, time.monotonic())
            events.append(
                {
                    "kind": kind,
                    "old_primary": old,
                    "new_primary": cluster.primary(),
                    "seconds_to_new_primary": round(elected - began, 2),
                    "seconds_to_stable": round(stable - began, 2),
                    "seconds_without_writes": round(gap, 2),
                }
            )
        time.sleep(1.0)
    finally:
        load.stop()
    deployment.record("failovers", events)
    deployment.record("old_primary_probes", probes)
    deployment.record(
        "failover_load",
        {
            "acknowledged": len(load.acked),
            "answers": dict(load.statuses),
            "503_codes": dict(load.problem_codes),
        },
    )

    # No split brain: the old primary never took a write while it came back.
    assert all(probe["accepted"] == 0 for probe in probes), probes
    assert count_probes(cluster) == probes_before, "a probe write reached the cluster"
    for probe in probes:  # it was tried: refused as unreachable or read-only
        assert sum(probe["refused"].values()) > 0, probe

    for earlier in deployment.earlier_loads:  # the throughput runs' invoices are checked too
        load.acked.update(earlier.acked)
        load.attempts.update(earlier.attempts)
        load.unexpected += earlier.unexpected
    problems = check_outcome(servers[0], load, token, "artifacts/ha/measurements.json")  # type: ignore[arg-type]
    assert not problems, "\n".join(problems[:20])
    assert len(load.acked) >= 200, f"too little load to mean anything: {len(load.acked)}"
    assert load.statuses.get("503", 0) + load.statuses.get("no answer", 0) > 0, "no failover was felt"
    verify_clean(servers[0], [str(server.var_dir / "witness" / "heads.jsonl") for server in servers])
    for number, receipt in enumerate(receipts):  # the current log, through the other host, proves them
        path = deployment.root / f"receipt-{number}.json"
        path.write_text(json.dumps(receipt, ensure_ascii=False))
        servers[1].manage("ledger", "check-receipt", str(path), "--lang", "en")
