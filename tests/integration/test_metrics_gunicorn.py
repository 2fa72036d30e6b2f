"""``GET /metrics`` under a real gunicorn with two workers (``fapiao.gunicorn_conf``, as `make run`).

Each worker counts in its own file under ``$FAPIAO_VAR_DIR/metrics``; a scrape, whichever worker
answers it, adds them all up.  So after N invoices the counter says N — also after the worker
that served some of them died — and a restarted server begins again from nothing.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import VALID_INVOICE
from tests.faults.server import LiveServer, _group_members
from tests.integration.pg_cluster import PG_USER, PgCluster, free_port, throwaway_cluster

TOKEN = "gunicorn-metrics-token-8c1d5e"
ISSUED = "fapiao_invoices_issued_total"


def request(server: LiveServer, method: str, path: str, token: str, body: object = None) -> tuple[int, bytes]:
    """One request on a connection of its own (so the workers share them out)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        payload = None
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def scrape(server: LiveServer) -> dict[str, float]:
    status, body = request(server, "GET", "/metrics", TOKEN)
    assert status == 200, body[:300]
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True)
        if sample.labels
        else sample.name: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def issued_per_worker(metrics_dir: Path) -> dict[int, float]:
    """What each worker's own file says it issued (the files the scrape adds up)."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        pid = int(path.stem.rsplit("_", 1)[1])
        counts[pid] = sum(value for key, value, *_rest in values if json.loads(key)[1] == ISSUED)
    return counts


def workers_of(server: LiveServer) -> list[int]:
    assert server.process is not None
    return [pid for pid in _group_members(server.process.pid) if pid != server.process.pid]


def test_counts_add_up_across_workers_and_survive_a_dead_worker(tmp_path: Path):
    server = LiveServer(tmp_path / "var", workers=2, threads=4, env={"FAPIAO_METRICS_TOKEN": TOKEN})
    metrics_dir = server.var_dir / "metrics"
    server.prepare()
    clerk = server.token("clerk")
    with server:
        server.start()
        assert request(server, "GET", "/metrics", "wrong")[0] == 401
        issued = 0
        # Enough concurrent requests that both workers serve some (the kernel hands out the
        # connections); bounded, and checked below from the workers' own files.
        for _round in range(5):
            with ThreadPoolExecutor(8) as pool:
                results = list(
                    pool.map(
                        lambda _n: request(server, "POST", "/api/v1/invoices", clerk, VALID_INVOICE),
                        range(16),
                    )
                )
            assert [status for status, _body in results] == [201] * 16
            issued += 16
            if sum(1 for count in issued_per_worker(metrics_dir).values() if count) >= 2:
                break
        per_worker = issued_per_worker(metrics_dir)
        assert sum(1 for count in per_worker.values() if count) >= 2, per_worker
        assert sum(per_worker.values()) == issued

        # Every scrape says the total, whichever worker answers it.
        for _scrape in range(6):
            found = scrape(server)
            assert found[ISSUED] == issued
        assert found["fapiao_ledger_entries_appended_total"] == issued
        assert found["fapiao_group_commit_batch_writes_sum"] >= issued
        assert (
            1
            <= found["fapiao_group_commit_duration_seconds_count"]
            <= found["fapiao_group_commit_batch_writes_sum"]
        )
        route = json.dumps({"method": "POST", "route": "/api/v1/invoices", "status": "201"}, sort_keys=True)
        assert found["fapiao_http_requests_total" + route] == issued
        assert found["fapiao_database_up"] == 1

        # A worker dies: what it counted stays in the total; gunicorn starts another.
        victim = max(per_worker, key=lambda pid: per_worker[pid])
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (victim in workers_of(server) or len(workers_of(server)) < 2):
            time.sleep(0.1)
        assert victim not in workers_of(server)
        for _scrape in range(4):
            assert scrape(server)[ISSUED] == issued

        # A restart begins again: the directory is emptied when the server starts.
        server.stop()
        server.start()
        assert ISSUED not in scrape(server) or scrape(server)[ISSUED] == 0
        assert request(server, "POST", "/api/v1/invoices", clerk, VALID_INVOICE)[0] == 201
        assert scrape(server)[ISSUED] == 1


@pytest.mark.postgres
def test_a_real_standby_is_counted_and_its_lag_exported(tmp_path: Path):
    """A private primary with a streaming standby (pg_basebackup -R): one standby streaming, its lag
    series named after it; the standby stopped: none streaming, no lag series, the alert's condition."""
    with throwaway_cluster() as primary:
        standby_root = Path(tempfile.mkdtemp(prefix="fapiao-pg-standby-"))
        if os.geteuid() == 0:  # the server runs as postgres
            shutil.chown(standby_root, user=PG_USER, group=PG_USER)
        standby = PgCluster(root=standby_root, port=free_port(), bin_dir=primary.bin_dir)
        try:
            conninfo = f"host=127.0.0.1 port={primary.port} user={PG_USER} application_name=fapiao-standby"
            standby._run("pg_basebackup", "-d", conninfo, "-D", str(standby.data_dir), "-R", "-X", "stream")
            standby.start()
            with psycopg.connect(primary.url(), autocommit=True) as admin:
                admin.execute("CREATE DATABASE fapiao")
            server = LiveServer(
                tmp_path / "var",
                database_url=primary.url("fapiao"),
                workers=1,
                threads=2,
                env={"FAPIAO_METRICS_TOKEN": TOKEN, "FAPIAO_EXPECTED_STANDBYS": "1"},
            )
            server.prepare()
            with server:
                server.start()
                lag = 'fapiao_database_replication_lag_seconds{"standby": "fapiao-standby"}'
                deadline = time.monotonic() + 30
                found = scrape(server)
                while found.get("fapiao_database_standbys") != 1 and time.monotonic() < deadline:
                    time.sleep(0.2)
                    found = scrape(server)
                assert found["fapiao_database_standbys"] == 1
                assert found["fapiao_database_standbys_expected"] == 1
                assert found[lag] >= 0
                assert 'fapiao_database_replication_lag_bytes{"standby": "fapiao-standby"}' in found
                standby.stop("immediate")
                deadline = time.monotonic() + 30
                while lag in found and time.monotonic() < deadline:
                    time.sleep(0.2)
                    found = scrape(server)
                assert found["fapiao_database_standbys"] == 0
                assert lag not in found
        finally:
            if standby.running():
                standby.stop("immediate")
            shutil.rmtree(standby_root, ignore_errors=True)
