"""A real Fapiao Vault server for fault tests and benchmarks: gunicorn in its own process group.

Each :class:`LiveServer` has its own var dir (keys, witness file, SQLite database) or its own
throwaway PostgreSQL database, listens on a free port and is started the way `make run`
starts it (``migrate``, ``demo``, then gunicorn with ``FAPIAO_WRITE_BATCHING=1``).  Because
gunicorn runs in a new session, ``kill()`` can SIGKILL the master *and* every worker at once
with ``os.killpg``, which is what a power cut or an OOM kill of the whole service looks like.

gunicorn ≥ 25 opens a control socket at ``~/.gunicorn/gunicorn.ctl`` by default: several
servers on one machine would take it from each other (each start unlinks the last one's
socket), so these servers run with ``--no-control-socket``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

PG_ADMIN_URL = os.environ.get("FAPIAO_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerError(RuntimeError):
    """The server did not start (or a management command failed); the message holds its log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_reachable(admin_url: str = PG_ADMIN_URL) -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import psycopg

        with psycopg.connect(admin_url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


@contextlib.contextmanager
def throwaway_postgres(prefix: str = "fapiao_fault", admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped (forcibly) afterwards; yields its URL."""
    import psycopg

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ..." — comm may hold spaces, so split after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


class LiveServer:
    """One gunicorn server (``workers`` × ``threads``, gthread) on a var dir and a database."""

    def __init__(
        self,
        var_dir: Path,
        *,
        database_url: str | None = None,
        workers: int = 2,
        threads: int = 16,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.var_dir = Path(var_dir)
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.workers = workers
        self.threads = threads
        self.extra_env = dict(env or {})
        self.python = python
        self.port = free_port()
        self.log_path = self.var_dir / "gunicorn.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # --- environment and management commands -------------------------------------------------
    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        return self.var_dir / "fapiao.sqlite3"

    @property
    def keys_file(self) -> Path:
        return self.var_dir / "keys" / "keys.json"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("FAPIAO_")
            and name not in {"DJANGO_SETTINGS_MODULE", "PYTEST_CURRENT_TEST"}
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "fapiao.settings",
                "FAPIAO_VAR_DIR": str(self.var_dir),
                "FAPIAO_BIND": f"127.0.0.1:{self.port}",
                "FAPIAO_WORKERS": str(self.workers),
                "FAPIAO_THREADS": str(self.threads),
                "FAPIAO_WRITE_BATCHING": "1",
                "FAPIAO_LOG_LEVEL": "WARNING",
            }
        )
        if self.database_url:
            env["FAPIAO_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def manage(self, *args: str, timeout: float = 120) -> str:
        """Run ``fapiao ARGS`` against this server's var dir and database; return its stdout."""
        done = subprocess.run(
            [self.python, "-m", "fapiao.cli", *args],
            env=self.environment(),
            cwd=self.var_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise ServerError(f"fapiao {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout

    def prepare(self) -> None:
        """What `make run` does before gunicorn: migrate and load the demo data."""
        self.manage("migrate", "--noinput")
        self.manage("demo")

    def token(self, username: str = "clerk", scope: str = "write") -> str:
        return self.manage("token", "create", username, "--scope", scope).strip().splitlines()[-1]

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> float:
        """Start gunicorn and wait until a worker answers /healthz; return the seconds it took."""
        if self.running:
            raise ServerError("already running")
        began = time.monotonic()
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start #{self.starts} on port {self.port} ===\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    "gunicorn",
                    "--config",
                    "python:fapiao.gunicorn_conf",
                    "--no-control-socket",
                    "fapiao.wsgi",
                ],
                env=self.environment(),
                cwd=self.var_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            if self._healthy():
                return time.monotonic() - began
            time.sleep(0.05)
        self.kill()
        raise ServerError(f"gunicorn did not answer /healthz within {timeout} s:\n{self.log_tail()}")

    def _healthy(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, timeout: float = 10) -> None:
        """SIGKILL the whole process group (master and workers) and wait until all are gone."""
        if self.process is None:
            return
        pgid = self.process.pid  # start_new_session: the master leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.process.wait(timeout=timeout)
        self._wait_group_gone(pgid, timeout)
        self.process = None

    def stop(self, timeout: float = 15) -> None:
        """Graceful stop (SIGTERM to the group), SIGKILL if it takes too long."""
        if self.process is None:
            return
        pgid = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        self.kill()

    @staticmethod
    def _wait_group_gone(pgid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while _group_members(pgid):
            if time.monotonic() > deadline:
                raise ServerError(f"processes of group {pgid} survived SIGKILL: {_group_members(pgid)}")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.01)

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
