"""A pg_auto_failover cluster on loopback ports: a monitor, a primary and two standbys.

This is the layout of docs/operations/high-availability.md on one machine: each node is a
``pg_autoctl run`` service (it starts and supervises its own PostgreSQL) in its own directory
and its own process group, so :meth:`HACluster.kill` can SIGKILL a node's whole service at once
(``pg_autoctl`` and PostgreSQL with every backend) the way a power cut does.  Killing only the
postmaster would not do: ``pg_autoctl`` would restart it.

PostgreSQL and ``pg_autoctl`` refuse to run as root, so under root everything runs as the
``postgres`` OS user in a temporary directory it owns; ``pg_autoctl`` keeps its configuration
and state under that directory too (``XDG_*``), never in the postgres user's home.

The monitor's health checks are tuned down (a check every second, a node unhealthy after two
seconds without contact instead of twenty) so that a failover takes seconds, not half a minute:
the same settings a deployment may choose (docs/operations/high-availability.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.faults.server import free_port

PG_USER = "postgres"
DATABASE = "fapiao"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin/pg_ctl"

# The monitor's health checks (milliseconds), tuned for a failover in seconds.  Defaults in brackets.
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "1000",  # [5000] between two checks of a node
    "pgautofailover.health_check_timeout": "1000",  # [5000] connect timeout of one check
    "pgautofailover.health_check_max_retries": "1",  # [2]
    "pgautofailover.health_check_retry_delay": "500",  # [2000]
    "pgautofailover.node_considered_unhealthy_timeout": "2000",  # [20000] without a report from its keeper
    "pgautofailover.startup_grace_period": "2000",  # [10000]
    # How long an unreachable primary is given to notice and demote itself before a standby is
    # promoted; longer than the keepers' network_partition_timeout below.
    "pgautofailover.primary_demote_timeout": "4000",  # [30000]
}
# Each node's keeper (seconds).
KEEPER_SETTINGS = {
    # A primary that reaches neither the monitor nor a standby for this long stops itself.
    "timeout.network_partition_timeout": "2",  # [20]
    "timeout.prepare_promotion_walreceiver": "1",  # [5] wait for the WAL receiver to stop
    "timeout.prepare_promotion_catchup": "10",  # [30]
    "timeout.postgresql_restart_failure_timeout": "5",  # [20]
}


class ClusterError(RuntimeError):
    pass


def missing_tools() -> str | None:
    """Why this machine cannot run the cluster, or None when it can."""
    if shutil.which("pg_autoctl") is None:
        return "pg_autoctl is not installed (Debian: pg-auto-failover-cli, postgresql-15-auto-failover)"
    pg_ctls = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")))
    if not pg_ctls:
        return "no PostgreSQL server binaries (pg_ctl) under /usr/lib/postgresql"
    if os.geteuid() == 0:
        try:
            subprocess.run(["id", PG_USER], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            return "running as root and there is no postgres OS user to run PostgreSQL as"
    return None


def pg_ctl_path() -> Path:
    found = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), key=lambda p: int(p.parts[-3]))
    return found[-1]


def _group_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@dataclass
class Node:
    name: str
    port: int
    pgdata: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class HACluster:
    root: Path
    monitor: Node
    nodes: dict[str, Node] = field(default_factory=dict)
    pg_ctl: Path = field(default_factory=pg_ctl_path)

    # --- running pg_autoctl ----------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        return {
            "PATH": f"{self.pg_ctl.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.root),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "share"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "LANG": "C.UTF-8",
        }

    def command(self, *argv: str) -> list[str]:
        env = [f"{name}={value}" for name, value in self.environment().items()]
        prefix = ["runuser", "-u", PG_USER, "--"] if os.geteuid() == 0 else []
        return [*prefix, "env", *env, *argv]

    def autoctl(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                self.command("pg_autoctl", *args),
                capture_output=True,
                text=True,
                errors="replace",  # pg_autoctl's messages are not always valid UTF-8
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as expired:
            # Say everything the run would need to tell why: what the command printed, what the
            # monitor thinks, its events and every service's log (CI keeps only this message).
            raise ClusterError(
                f"pg_autoctl {' '.join(args)} did not finish within {timeout} s:\n"
                f"{_text(expired.stdout)[-3000:]}\n{_text(expired.stderr)[-3000:]}\n"
                f"{self.diagnosis()}"
            ) from None
        if check and done.returncode != 0:
            raise ClusterError(
                f"pg_autoctl {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            )
        return done

    @property
    def monitor_url(self) -> str:
        return f"postgres://autoctl_node@127.0.0.1:{self.monitor.port}/pg_auto_failover?sslmode=disable"

    def url(self, database: str = DATABASE, **options: str) -> str:
        """The application's libpq multi-host URL: every node, writes to whichever is primary."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes.values())
        query = "&".join(f"{k}={v}" for k, v in {"target_session_attrs": "read-write", **options}.items())
        return f"postgresql://{PG_USER}@{hosts}/{database}?{query}"

    def node_url(self, name: str, database: str = DATABASE) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.nodes[name].port}/{database}"

    # --- life cycle ------------------------------------------------------------------------
    def start(self, node: Node) -> None:
        if node.running:
            return
        log = (self.root / f"{node.name}.log").open("ab")
        node.process = subprocess.Popen(
            self.command("pg_autoctl", "run", "--pgdata", str(node.pgdata)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group: kill() takes the whole service
        )
        log.close()

    def kill(self, name: str, timeout: float = 15) -> None:
        """SIGKILL the node's whole service: pg_autoctl, its PostgreSQL and every backend."""
        node = self.nodes.get(name) or self.monitor
        if node.process is None:
            return
        pgid = node.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        node.process.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while _group_alive(pgid):
            if time.monotonic() > deadline:
                raise ClusterError(f"processes of {name}'s group {pgid} survived SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.02)
        node.process = None

    def stop(self, name: str, timeout: float = 30) -> None:
        """A clean stop (SIGTERM: pg_autoctl stops PostgreSQL fast), SIGKILL when it takes too long."""
        node = self.nodes.get(name) or self.monitor
        if node.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.process.wait(timeout=timeout)
        self.kill(name)

    def add_node(self) -> Node:
        """Register and start a PostgreSQL node: the first becomes the primary, the others standbys
        (``pg_autoctl create postgres`` takes a base backup of the primary)."""
        node = Node(f"node{len(self.nodes) + 1}", free_port(), self.root / f"node{len(self.nodes) + 1}")
        self.nodes[node.name] = node
        self.autoctl(
            "create", "postgres",
            "--pgdata", str(node.pgdata),
            "--pgport", str(node.port),
            "--listen", "127.0.0.1",
            "--hostname", "127.0.0.1",
            "--name", node.name,
            "--dbname", DATABASE,
            "--monitor", self.monitor_url,
            "--auth", "trust",
            "--no-ssl",
            "--pgctl", str(self.pg_ctl),
            timeout=300,  # a base backup of the primary; 180 s once ran out in CI (see diagnosis())
        )  # fmt: skip
        for setting, value in KEEPER_SETTINGS.items():
            self.autoctl("config", "set", "--pgdata", str(node.pgdata), setting, value)
        self.start(node)
        return node

    def close(self) -> None:
        for name in [*self.nodes, self.monitor.name]:
            with contextlib.suppress(Exception):
                self.kill(name)

    # --- the monitor's view ----------------------------------------------------------------
    def states(self) -> dict[str, dict[str, Any]]:
        """Each node's row on the monitor: reported and assigned state, health."""
        with psycopg.connect(self.monitor_url, autocommit=True, connect_timeout=3) as connection:
            rows = connection.execute(
                "SELECT nodename, reportedstate::text, goalstate::text, health, reportedlsn::text "
                "FROM pgautofailover.node ORDER BY nodeid"
            ).fetchall()
        return {
            name: {"reported": reported, "assigned": goal, "health": health, "lsn": lsn}
            for name, reported, goal, health, lsn in rows
        }

    def primary(self) -> str | None:
        """The node reported and assigned primary, if any."""
        for name, state in self.states().items():
            if state["reported"] == state["assigned"] == "primary":
                return name
        return None

    def standbys(self) -> list[str]:
        primary = self.primary()
        return [name for name in self.nodes if name != primary]

    def stable(self) -> bool:
        """One primary and every other node a secondary, all reported as assigned."""
        states = self.states()
        if len(states) != len(self.nodes):
            return False
        # Healthy too: the monitor's view.  Settings changes (number_sync_standbys) stall in
        # apply_settings while no standby is healthy in the monitor's eyes.
        roles = sorted(
            s["reported"] for s in states.values() if s["reported"] == s["assigned"] and s["health"] == 1
        )
        return roles == ["primary"] + ["secondary"] * (len(self.nodes) - 1)

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 90) -> float:
        """Poll ``predicate`` until true; the seconds it took."""
        began = time.monotonic()
        last: Exception | None = None
        while time.monotonic() - began < timeout:
            try:
                if predicate():
                    return time.monotonic() - began
            except (psycopg.Error, OSError) as error:
                last = error
            time.sleep(0.2)
        raise ClusterError(f"not {what} within {timeout} s (last error: {last});\n{self.diagnosis()}")

    def wait_stable(self, timeout: float = 120) -> float:
        return self.wait_for("stable (one primary, all others secondary)", self.stable, timeout)

    def diagnosis(self) -> str:
        """The monitor's states and last events, and the tail of every service's log."""
        parts = [f"states: {self.describe()}"]
        with contextlib.suppress(Exception):
            events = subprocess.run(
                self.command("pg_autoctl", "show", "events", "--count", "30", "--monitor", self.monitor_url),
                capture_output=True, text=True, errors="replace", timeout=20, check=False,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            parts.append(f"events:\n{events.stdout[-4000:]}{events.stderr[-1000:]}")
        for log in sorted(self.root.glob("*.log")):
            with contextlib.suppress(OSError):
                parts.append(f"--- {log.name} (last lines)\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def describe(self) -> str:
        try:
            return json.dumps(self.states())
        except Exception as error:  # the monitor itself may be what is broken
            return f"(monitor unreachable: {error})"

    def sync_standby_names(self, node: str | None = None) -> str:
        """``synchronous_standby_names`` on ``node`` (default: the primary; "?" when there is none)."""
        primary = node or self.primary()
        if primary is None:
            return "?"
        with psycopg.connect(
            self.node_url(primary, "postgres"), autocommit=True, connect_timeout=3
        ) as connection:
            row = connection.execute("SHOW synchronous_standby_names").fetchone()
        return str(row[0]) if row else ""

    def switchover(self) -> None:
        self.autoctl("perform", "switchover", "--monitor", self.monitor_url, timeout=120)

    def set_number_sync_standbys(self, count: int, timeout: float = 60) -> None:
        """Set it on the monitor; retried while the primary is busy applying settings (the monitor
        refuses the change then)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.autoctl(
                    "set", "formation", "number-sync-standbys", str(count),
                    "--monitor", self.monitor_url, timeout=60,
                )  # fmt: skip
                return
            except ClusterError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def reported(self, name: str) -> str:
        state = self.states().get(name) or {}
        return str(state.get("reported")) if state.get("reported") == state.get("assigned") else ""


def _owned_tempdir() -> Path:
    root = Path(tempfile.mkdtemp(prefix="fapiao-ha-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=PG_USER, group=PG_USER)
    return root


def _tune_monitor(cluster: HACluster) -> None:
    with psycopg.connect(
        f"postgresql://{PG_USER}@127.0.0.1:{cluster.monitor.port}/pg_auto_failover",
        autocommit=True,
        connect_timeout=5,
    ) as connection:
        for name, value in MONITOR_SETTINGS.items():
            connection.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        connection.execute("SELECT pg_reload_conf()")


@contextlib.contextmanager
def ha_cluster(logs_to: Path | None = None) -> Iterator[HACluster]:
    """A started monitor and primary (in state ``single``: no standby yet); :meth:`HACluster.add_node`
    adds standbys.  Everything is killed and deleted afterwards; the services' logs are copied to
    ``logs_to`` first."""
    root = _owned_tempdir()
    monitor = Node("monitor", free_port(), root / "monitor")
    cluster = HACluster(root=root, monitor=monitor)
    try:
        cluster.autoctl(
            "create", "monitor",
            "--pgdata", str(monitor.pgdata),
            "--pgport", str(monitor.port),
            "--hostname", "127.0.0.1",
            "--auth", "trust",
            "--no-ssl",
            "--pgctl", str(cluster.pg_ctl),
        )  # fmt: skip
        cluster.autoctl(
            "config", "set", "--pgdata", str(monitor.pgdata), "postgresql.listen_addresses", "127.0.0.1"
        )
        cluster.start(monitor)
        cluster.wait_for("monitor up", lambda: bool(cluster.states() is not None), timeout=30)
        _tune_monitor(cluster)
        cluster.add_node()
        cluster.wait_for("primary up (single)", lambda: _reported(cluster, "single"), timeout=120)
        yield cluster
    finally:
        cluster.close()
        if logs_to is not None:
            logs_to.mkdir(parents=True, exist_ok=True)
            for log in root.glob("*.log"):
                shutil.copyfile(log, logs_to / log.name)
        shutil.rmtree(root, ignore_errors=True)


def _text(output: bytes | str | None) -> str:
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output or ""


def _reported(cluster: HACluster, state: str) -> bool:
    states = cluster.states()
    return bool(states) and all(s["reported"] == s["assigned"] == state for s in states.values())
