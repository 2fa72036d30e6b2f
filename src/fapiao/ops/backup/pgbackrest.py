"""PostgreSQL backups with pgBackRest (docs/operations/backup.md, PostgreSQL).

pgBackRest does what it is made for: full, differential and incremental backups of the cluster
and continuous WAL archiving into a repository encrypted with its own cipher (AES-256), so a
restore can stop at any moment.  Around it, ``fapiao backup`` keeps what only it knows:

- **a consistent point** per backup: after pgBackRest's backup, one REPEATABLE READ transaction
  locks the tables the manifest summarises (``SHARE``: writers wait, for the length of the
  summary), computes the summary and creates a named restore point — so restoring to that name
  gives exactly the summarised data, while writes continued during the backup itself;
- the signed, encrypted manifest and the witness and evidence copies, in ``FAPIAO_BACKUP_DIR``
  beside the repository, like a SQLite backup;
- the cluster's own controls (``pg_ctl`` as the database's OS user), to start a throwaway
  cluster on a pgBackRest restore into a scratch data directory (``verify``), and to restore the
  live cluster to a backup's consistent point or to ``--target-time`` (``restore``).

It runs on the database host: ``fapiao backup setup`` records the data directory, the server's
binaries and its OS user (``$FAPIAO_VAR_DIR/pgbackrest-cluster.json``), and writes the stanza's
configuration and the ``archive_command``.  As root, pgBackRest and ``pg_ctl`` run as that user
(``runuser``); otherwise as the caller, who must then be that user.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from fapiao.accounts.models import Merchant
from fapiao.audit.models import AuditHead, AuditLog, AuditRecord
from fapiao.core.canonical import utc_stamp
from fapiao.core.errors import ConflictError, FapiaoError, InvalidValueError
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.ledger.models import Log, LogEntry, TreeHead
from fapiao.ops.backup.summary import summarise
from fapiao.recovery.models import Evidence

CLUSTER_FILE = "pgbackrest-cluster.json"
ARCHIVE_WAIT = 120  # seconds for a WAL segment to reach the repository
START_WAIT = 300  # seconds for a restored cluster to finish its recovery


class PgBackRestError(FapiaoError):
    """pgBackRest failed ({step}): {reason}"""

    status = 502
    code = "pgbackrest_failed"


class RepositoryCipherError(PgBackRestError):
    """pgBackRest could not decrypt its repository with the cipher pass in {config} ({step}): a wrong or changed pass? Nothing was restored. The pass is kept in the key directory (pgbackrest-cipher-pass)."""  # noqa: E501

    code = "pgbackrest_cipher"


class PgBackRestNotSetUpError(ConflictError):
    """pgBackRest is not set up for this database ({path} is missing): run `fapiao backup setup` on the database host first."""  # noqa: E501

    code = "pgbackrest_not_set_up"


class ClusterNotLocalError(ConflictError):
    """The database's data directory {path} is not on this machine: run `fapiao backup setup` on the database host."""  # noqa: E501

    code = "cluster_not_local"


class ClusterControlError(FapiaoError):
    """PostgreSQL failed ({action}): {reason}"""

    status = 502
    code = "cluster_control_failed"


class TargetTimeError(InvalidValueError):
    """--target-time takes an ISO 8601 time with its zone, such as 2026-12-05T14:30:00+08:00, not {value}."""

    code = "target_time_invalid"


class TargetTimeTooEarlyError(InvalidValueError):
    """--target-time {target} is before backup {backup_id} is consistent ({at}): restore an older backup."""

    code = "target_time_too_early"


class ArchivingError(ConflictError):
    """WAL segment {wal} did not reach the pgBackRest repository within {seconds} s (archive_command failing? see the PostgreSQL log and pg_stat_archiver)."""  # noqa: E501

    code = "archiving_failed"


@dataclass(frozen=True)
class Cluster:
    """What setup learned about the database's cluster (on the database host)."""

    data_dir: str
    bin_dir: str
    os_user: str
    port: int
    socket_dir: str
    config_file: str  # postgresql.conf: Debian keeps it outside the data directory
    database: str
    user: str
    version: int  # server_version_num

    @property
    def log_file(self) -> Path:
        data = Path(self.data_dir)
        return data.parent / f"{data.name}-fapiao-restore.log"


# --- running pgBackRest and pg_ctl --------------------------------------------------------------


def as_owner(argv: list[str], owner: str) -> list[str]:
    """Run ``argv`` as the cluster's OS user: through runuser when we are root and it is not."""
    if os.geteuid() == 0 and owner != "root":
        return ["runuser", "-u", owner, "--", *argv]
    return argv


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def pgbackrest(cluster: Cluster, *args: str, step: str | None = None, timeout: float = 3600) -> str:
    argv = [
        *shlex.split(settings.FAPIAO_PGBACKREST),
        f"--config={settings.FAPIAO_PGBACKREST_CONFIG}",
        f"--stanza={settings.FAPIAO_PGBACKREST_STANZA}",
        *args,
    ]
    try:
        done = subprocess.run(
            as_owner(argv, cluster.os_user),
            capture_output=True,
            text=True,
            errors="replace",  # a wrong cipher pass makes pgBackRest print decrypted garbage
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PgBackRestError(step=step or args[0], reason=str(error)) from None
    if done.returncode != 0:
        said = done.stderr + done.stdout
        if "\ufffd" in said:  # bytes that are not text: what it "decrypted" with a wrong pass
            raise RepositoryCipherError(step=step or args[0], config=settings.FAPIAO_PGBACKREST_CONFIG)
        raise PgBackRestError(step=step or args[0], reason=_tail(said))
    return done.stdout


def pg_ctl(cluster: Cluster, *args: str, action: str, timeout: float = START_WAIT) -> None:
    argv = [str(Path(cluster.bin_dir) / "pg_ctl"), *args]
    try:
        done = subprocess.run(
            as_owner(argv, cluster.os_user),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ClusterControlError(action=action, reason=str(error)) from None
    if done.returncode != 0:
        log = ""
        if "-l" in args:
            with contextlib.suppress(OSError):
                log = Path(args[args.index("-l") + 1]).read_text(errors="replace")
        raise ClusterControlError(action=action, reason=_tail(done.stderr + done.stdout + "\n" + log, 10))


def _chown(path: Path, owner: str) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user=owner, group=pwd.getpwnam(owner).pw_gid)


# --- setup ----------------------------------------------------------------------------------------


def cluster_file() -> Path:
    return Path(settings.VAR_DIR) / CLUSTER_FILE


def load_cluster() -> Cluster:
    path = cluster_file()
    try:
        return Cluster(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        raise PgBackRestNotSetUpError(path=path) from None


def describe_cluster() -> Cluster:
    """The live cluster, as the database connection and this machine's file system see it."""
    with connection.cursor() as cursor:
        values = {}
        for name in (
            "data_directory",
            "unix_socket_directories",
            "port",
            "server_version_num",
            "config_file",
        ):
            cursor.execute(f"SHOW {name}")
            values[name] = str(cursor.fetchone()[0])
        cursor.execute("SELECT current_database(), current_user")
        database, user = cursor.fetchone()
    data_dir = Path(values["data_directory"])
    try:
        owner = pwd.getpwuid(data_dir.stat().st_uid).pw_name
    except OSError:
        raise ClusterNotLocalError(path=data_dir) from None
    version = int(values["server_version_num"])
    bin_dir = Path(f"/usr/lib/postgresql/{version // 10000}/bin")
    if not (bin_dir / "pg_ctl").exists():
        found = shutil.which("pg_ctl")
        bin_dir = Path(found).parent if found else bin_dir
    return Cluster(
        data_dir=str(data_dir),
        bin_dir=str(bin_dir),
        os_user=owner,
        port=int(values["port"]),
        socket_dir=values["unix_socket_directories"].split(",")[0].strip(),
        config_file=values["config_file"],
        database=str(database),
        user=str(user),
        version=version,
    )


def _cipher_pass() -> str:
    """The repository cipher pass: kept in the key directory (backed up with the other keys)."""
    path = Path(settings.KEYS_DIR) / "pgbackrest-cipher-pass"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = base64.b64encode(secrets.token_bytes(48)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def configuration(cluster: Cluster, cipher_pass: str) -> str:
    repo = settings.FAPIAO_PGBACKREST_REPO
    return "\n".join(
        [
            "# Written by `fapiao backup setup` (docs/operations/backup.md). Holds the repository",
            "# cipher pass: readable by the database's OS user only, never beside the backups.",
            "[global]",
            f"repo1-path={repo}",
            "repo1-cipher-type=aes-256-cbc",
            f"repo1-cipher-pass={cipher_pass}",
            f"repo1-retention-full={settings.FAPIAO_PGBACKREST_RETENTION_FULL}",
            "start-fast=y",
            "compress-type=zst",
            "log-level-console=warn",
            "log-level-file=off",
            f"lock-path={repo}/lock",
            f"spool-path={repo}/spool",
            "",
            f"[{settings.FAPIAO_PGBACKREST_STANZA}]",
            f"pg1-path={cluster.data_dir}",
            f"pg1-port={cluster.port}",
            f"pg1-socket-path={cluster.socket_dir}",
            f"pg1-user={cluster.user}",
            "",
        ]
    )


def archive_command() -> str:
    binary = shutil.which(shlex.split(settings.FAPIAO_PGBACKREST)[0]) or "pgbackrest"
    return (
        f"{binary} --config={settings.FAPIAO_PGBACKREST_CONFIG} "
        f"--stanza={settings.FAPIAO_PGBACKREST_STANZA} archive-push %p"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class SetUp:
    cluster: Cluster
    config: Path
    archive_command: str
    needs_restart: bool
    checked: bool


def setup() -> SetUp:
    """Write the stanza's configuration and the cluster's ``archive_command``; create the stanza
    and check archiving once ``archive_mode`` is on (switching it on needs a restart)."""
    cluster = describe_cluster()
    repo = Path(settings.FAPIAO_PGBACKREST_REPO)
    repo.mkdir(parents=True, exist_ok=True, mode=0o700)
    _chown(repo, cluster.os_user)
    config = Path(settings.FAPIAO_PGBACKREST_CONFIG)
    if not config.parent.exists():
        config.parent.mkdir(parents=True, mode=0o700)
        _chown(config.parent, cluster.os_user)  # archive-push reads it as that user
    temporary = config.with_name(f".{config.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(configuration(cluster, _cipher_pass()))
    _chown(temporary, cluster.os_user)
    os.replace(temporary, config)
    path = cluster_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(json.dumps(asdict(cluster), indent=2) + "\n")
    command = archive_command()
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER SYSTEM SET archive_command = {_literal(command)}")
        cursor.execute("SHOW archive_mode")
        mode = str(cursor.fetchone()[0])
        if mode == "off":
            cursor.execute("ALTER SYSTEM SET archive_mode = 'on'")
        cursor.execute("SELECT pg_reload_conf()")
    if mode == "off":
        return SetUp(cluster, config, command, needs_restart=True, checked=False)
    time.sleep(0.5)  # the reload reaches the archiver
    pgbackrest(cluster, "stanza-create", step="stanza-create", timeout=300)
    pgbackrest(cluster, "check", step="check", timeout=300)
    return SetUp(cluster, config, command, needs_restart=False, checked=True)


# --- backup ---------------------------------------------------------------------------------------

#: What the manifest summarises; locked (SHARE) while it is computed and the restore point made.
SUMMARISED = (
    Merchant,
    Invoice,
    InvoiceLine,
    Log,
    LogEntry,
    TreeHead,
    AuditLog,
    AuditHead,
    AuditRecord,
    Evidence,
)


@dataclass(frozen=True)
class PgBackup:
    label: str
    kind: str
    restore_point: str
    lsn: str
    wal: str
    consistent_at: str
    summary: dict[str, Any]

    def manifest_part(self) -> dict[str, Any]:
        return {
            "stanza": settings.FAPIAO_PGBACKREST_STANZA,
            "label": self.label,
            "type": self.kind,
            "restore_point": self.restore_point,
            "lsn": self.lsn,
            "wal": self.wal,
            "consistent_at": self.consistent_at,
        }


def backup(backup_id: str, kind: str) -> PgBackup:
    """pgBackRest's backup (writes go on), then the consistent point the manifest describes."""
    cluster = load_cluster()
    pgbackrest(cluster, "backup", f"--type={kind}", f"--annotation=fapiao-backup={backup_id}", step="backup")
    label = label_of(cluster, backup_id)
    summary, restore_point, lsn, wal, at = consistent_point(backup_id)
    wait_archived(wal)
    return PgBackup(label, kind, restore_point, lsn, wal, at, summary)


def label_of(cluster: Cluster, backup_id: str) -> str:
    info = json.loads(pgbackrest(cluster, "info", "--output=json", step="info", timeout=300) or "[]")
    for stanza in info:
        for item in reversed(stanza.get("backup", [])):
            if (item.get("annotation") or {}).get("fapiao-backup") == backup_id:
                return str(item["label"])
    raise PgBackRestError(step="info", reason=f"no backup annotated fapiao-backup={backup_id}")


def consistent_point(backup_id: str) -> tuple[dict[str, Any], str, str, str, str]:
    """The summary and a restore point at the same moment: (summary, name, lsn, WAL file, time)."""
    name = f"fapiao-{backup_id}"
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in SUMMARISED)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute(f"LOCK TABLE {tables} IN SHARE MODE")  # before any query: the snapshot follows it
        summary = summarise(cursor)
        cursor.execute("SELECT pg_create_restore_point(%s), clock_timestamp()", [name])
        lsn, at = cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_walfile_name(%s::pg_lsn)", [str(lsn)])
        wal = str(cursor.fetchone()[0])
        cursor.execute("SELECT pg_switch_wal()")
    return summary, name, str(lsn), wal, utc_stamp(at)


def switch_and_wait() -> None:
    """Close the current WAL segment and wait until it is in the repository."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")
        wal = str(cursor.fetchone()[0])
        cursor.execute("SELECT pg_switch_wal()")
    wait_archived(wal)


def wait_archived(wal: str, timeout: float = ARCHIVE_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_archived_wal FROM pg_stat_archiver")
            last = cursor.fetchone()[0]
        if last is not None and str(last)[8:] >= wal[8:]:
            return
        if time.monotonic() > deadline:
            raise ArchivingError(wal=wal, seconds=timeout)
        time.sleep(0.2)


# --- a throwaway cluster on a scratch restore -------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_promoted(connect: dict[str, Any], timeout: float = START_WAIT) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(**connect, connect_timeout=5) as db:
                if not db.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                    return
        except psycopg.Error as error:
            last = error
        time.sleep(0.3)
    raise ClusterControlError(action="pg_ctl start", reason=str(last or "still in recovery"))


#: A standby (a restore replaying WAL) must have at least the primary's values of these.
RECOVERY_MINIMUMS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def _recovery_minimums() -> list[str]:
    """The live cluster's values of :data:`RECOVERY_MINIMUMS` (the server defaults when it is down)."""
    found = []
    with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
        for name in RECOVERY_MINIMUMS:
            cursor.execute(f"SHOW {name}")
            found.append(f"{name} = {int(cursor.fetchone()[0])}")
    return found


@dataclass(frozen=True)
class Scratch:
    url: str  # a FAPIAO_DATABASE_URL for the fapiao commands
    connect: dict[str, Any]  # psycopg.connect keywords


_DAMAGED = re.compile(r"INFO: (invalid checksum|invalid size|file missing|invalid file) '([^']+)'")


def damaged_files(cluster: Cluster) -> list[str]:
    """The repository files ``pgbackrest verify`` finds damaged (checksum, size, missing), named as
    the repository holds them (``<backup label>/pg_data/…``): a failed restore's own message names
    none (``zst error: Data corruption detected``).  Empty when verify cannot run either."""
    try:
        said = pgbackrest(cluster, "verify", "--log-level-console=info", step="verify", timeout=600)
    except PgBackRestError:
        return []
    return [f"{path} ({what})" for what, path in _DAMAGED.findall(said)]


@contextlib.contextmanager
def scratch_cluster(part: dict[str, Any]) -> Iterator[Scratch]:
    """pgBackRest restores the backup into a scratch data directory, to its consistent point; a
    throwaway cluster runs there (its own socket directory, no TCP, archiving off) until exit."""
    cluster = load_cluster()
    root = Path(tempfile.mkdtemp(prefix="fapiao-verify-", dir=settings.FAPIAO_BACKUP_PG_SCRATCH))
    _chown(root, cluster.os_user)
    data = root / "data"
    started = False
    try:
        try:
            pgbackrest(
                cluster,
                "restore",
                f"--pg1-path={data}",
                f"--set={part['label']}",
                "--type=name",
                f"--target={part['restore_point']}",
                "--target-action=promote",
                "--archive-mode=off",
                step="restore",
            )
        except PgBackRestError as error:
            damaged = damaged_files(cluster)
            if damaged:
                raise PgBackRestError(
                    step="restore", reason=f"{error.params['reason']} | damaged: {', '.join(damaged)}"
                ) from None
            raise
        config, hba = root / "postgresql.conf", root / "pg_hba.conf"
        port = free_port()
        config.write_text(
            "\n".join(
                [
                    f"hba_file = '{hba}'",
                    f"port = {port}",
                    f"unix_socket_directories = '{root}'",
                    "listen_addresses = ''",
                    "archive_mode = off",
                    "shared_buffers = 64MB",
                    "shared_preload_libraries = ''",
                    *_recovery_minimums(),
                    "",
                ]
            )
        )
        hba.write_text("local all all trust\n")
        for path in (config, hba):
            _chown(path, cluster.os_user)
        pg_ctl(
            cluster,
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-o",
            f"-c config_file={config}",
            "-w",
            "-t",
            str(START_WAIT),
            "start",
            action="pg_ctl start",
        )
        started = True
        connect = {"host": str(root), "port": port, "user": cluster.user, "dbname": cluster.database}
        _wait_promoted(connect)
        url = (
            f"postgresql://{quote(cluster.user)}@{quote(str(root), safe='')}:{port}/{quote(cluster.database)}"
        )
        yield Scratch(url, connect)
    finally:
        try:
            if started:
                pg_ctl(cluster, "-D", str(data), "-m", "immediate", "-w", "stop", action="pg_ctl stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)


def scratch_summary(scratch: Scratch) -> dict[str, Any]:
    with psycopg.connect(**scratch.connect) as db, db.cursor() as cursor:
        return summarise(cursor)


# --- restoring the live cluster ---------------------------------------------------------------------


def parse_target_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TargetTimeError(value=repr(value)) from None
    if moment.tzinfo is None:
        raise TargetTimeError(value=repr(value))
    return moment.astimezone(UTC)


def restore_live(part: dict[str, Any], target: datetime | None) -> None:
    """Stop the live cluster, restore it in place (``--delta``) to the backup's consistent point or
    to ``target``, start it and wait until it has promoted."""
    cluster = load_cluster()
    with contextlib.suppress(FapiaoError, DatabaseError):
        switch_and_wait()  # the WAL up to now reaches the repository (the live cluster may be down)
    connection.close()
    data = Path(cluster.data_dir)
    if (data / "postmaster.pid").exists():
        pg_ctl(cluster, "-D", str(data), "-m", "fast", "-w", "-t", "120", "stop", action="pg_ctl stop")
    recovery = (
        ["--type=time", f"--target={target.strftime('%Y-%m-%d %H:%M:%S.%f')}+00"]
        if target is not None
        else ["--type=name", f"--target={part['restore_point']}"]
    )
    pgbackrest(
        cluster,
        "restore",
        "--delta",
        f"--set={part['label']}",
        *recovery,
        "--target-action=promote",
        step="restore",
    )
    options = f"-c config_file={cluster.config_file}"
    pg_ctl(
        cluster,
        "-D",
        str(data),
        "-l",
        str(cluster.log_file),
        "-o",
        f"{options} -p {cluster.port} -c unix_socket_directories='{cluster.socket_dir}'",
        "-w",
        "-t",
        str(START_WAIT),
        "start",
        action="pg_ctl start",
    )
    deadline = time.monotonic() + START_WAIT
    while True:
        connection.close()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_is_in_recovery()")
                if not cursor.fetchone()[0]:
                    return
        except Exception:  # noqa: S110  still starting: ask again
            pass
        if time.monotonic() > deadline:
            raise ClusterControlError(action="pg_ctl start", reason="still in recovery")
        time.sleep(0.3)
