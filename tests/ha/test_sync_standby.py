"""Both standbys down: no acknowledgement of a write that would be on one disk only.

With ``number_sync_standbys = 1`` PostgreSQL itself would wait at COMMIT for a standby that is
not there; ``FAPIAO_REQUIRE_SYNC_STANDBY`` (on by default with a multi-host URL) answers 503
``no_sync_standby`` with Retry-After at once instead, and saves nothing.  In
``wait_primary`` (and with ``number_sync_standbys = 0`` when the standbys are lost)
pg_auto_failover empties ``synchronous_standby_names`` — done here by hand on the primary, as its
keeper does it — and PostgreSQL then acknowledges commits on one disk, and only the
application's check stands between that and a 201.  A server with the check switched off
(the documented trade-off) goes on writing.  When the standbys are back, the refused requests
retried with their keys succeed.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.ha.cluster import HACluster
from tests.ha.conftest import Deployment
from tests.ha.load import post_invoice

pytestmark = pytest.mark.timeout(600)  # the cluster starts in the first test's setup


def invoices(cluster: HACluster) -> int:
    with psycopg.connect(cluster.url(), autocommit=True, connect_timeout=5) as connection:
        row = connection.execute("SELECT count(*) FROM invoices_invoice").fetchone()
    return int(row[0]) if row else 0


def streaming_standbys(cluster: HACluster) -> int:
    with psycopg.connect(cluster.url(), autocommit=True, connect_timeout=5) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ).fetchone()
    return int(row[0]) if row else 0


def assert_refused(status: int, retry_after: str | None, body: dict[str, object]) -> None:
    assert status == 503, body
    assert retry_after and int(retry_after) > 0
    assert str(body["type"]).endswith("/no_sync_standby"), body


def test_both_standbys_down(deployment: Deployment) -> None:
    cluster, (host_a, host_b), token = deployment.cluster, deployment.servers, deployment.token
    cluster.wait_stable()
    standbys = cluster.standbys()
    before = invoices(cluster)
    unguarded = deployment.extra_server("host-c", FAPIAO_REQUIRE_SYNC_STANDBY="0")
    unguarded.start(timeout=60)
    refused_keys: list[str] = []
    emptied, primary, names = False, None, ""
    try:
        for name in standbys:
            cluster.kill(name)
        cluster.wait_for("no standby streaming", lambda: streaming_standbys(cluster) == 0, timeout=30)

        # number_sync_standbys = 1: refused at once, nothing saved.
        answer_seconds = []
        for number, server in enumerate([host_a, host_b] * 3):
            key = f"nosync-1-{number}"
            began = time.monotonic()
            assert_refused(*post_invoice(server.port, token, key))
            answer_seconds.append(time.monotonic() - began)
            refused_keys.append(key)
        assert invoices(cluster) == before

        # What pg_auto_failover does in wait_primary (and always with number_sync_standbys = 0 when
        # the standbys are lost): it empties synchronous_standby_names, and PostgreSQL commits on
        # one disk.  Done here by hand on the primary, as the keeper does it (ALTER SYSTEM): in our
        # runs, changing number_sync_standbys around the standbys' loss stalled the primary in
        # apply_settings (docs/operations/high-availability.md).
        primary = cluster.primary()
        assert primary is not None
        with psycopg.connect(cluster.node_url(primary), autocommit=True) as connection:
            names = connection.execute("SHOW synchronous_standby_names").fetchone()[0]  # type: ignore[index]
            connection.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
            connection.execute("SELECT pg_reload_conf()")
        emptied = True
        for number, server in enumerate([host_a, host_b]):
            key = f"nosync-0-{number}"
            assert_refused(*post_invoice(server.port, token, key))
            refused_keys.append(key)
        assert invoices(cluster) == before
        # Without the check (FAPIAO_REQUIRE_SYNC_STANDBY=0) writes continue, on one disk.
        for number in range(3):
            status, _retry, body = post_invoice(unguarded.port, token, f"unguarded-{number}", timeout=30)
            assert status == 201, (body, cluster.describe(), cluster.sync_standby_names(primary))
        assert invoices(cluster) == before + 3
    finally:
        if emptied:
            with psycopg.connect(cluster.node_url(primary), autocommit=True) as connection:
                connection.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
                connection.execute("SELECT pg_reload_conf()")
        for name in standbys:
            cluster.start(cluster.nodes[name])
        cluster.wait_stable(timeout=120)
        cluster.wait_for(
            "synchronous replication on", lambda: cluster.sync_standby_names().startswith("ANY 1"), timeout=60
        )
        unguarded.stop()
    deployment.record("no_sync_standby_answer_seconds_max", round(max(answer_seconds), 3))

    # Back to normal: the refused requests, retried with their keys, are issued once.
    deadline = time.monotonic() + 30
    for key in refused_keys:
        while True:
            status, _retry, body = post_invoice(host_a.port, token, key)
            if status == 201 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 201, (key, body)
        assert body["remark"] == key
    assert invoices(cluster) == before + 3 + len(refused_keys)
