"""Issue 13 finding 7: the var dir's files — the SQLite database and its WAL (live sessions), keys,
witness files — are 0600 in 0700 directories, whatever umask the service was started with.

The ``fapiao`` command runs in a child process started with the usual umask 022, on a fresh var dir
(SQLite), as an operator would run it: ``migrate``, ``demo``, ``issue``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKEND, VALID_INVOICE

pytestmark = pytest.mark.skipif(BACKEND == "postgres", reason="the SQLite database's own files")

FAPIAO = Path(sys.executable).with_name("fapiao")


def fapiao(var: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FAPIAO_", "DJANGO_"))}
    env.update(FAPIAO_VAR_DIR=str(var), FAPIAO_DEMO_PASSWORD="a-demo-password-for-tests")
    return subprocess.run(  # our own command
        [str(FAPIAO), *args],
        env=env,
        cwd=var.parent,
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
        preexec_fn=lambda: os.umask(0o022),  # what a shell or systemd usually hands over
    )


def modes(var: Path) -> dict[str, str]:
    """Every path under the var dir (the dir itself as ".") with its mode in octal."""
    found = {".": f"{stat.S_IMODE(var.stat().st_mode):04o}"}
    for path in sorted(var.rglob("*")):
        found[str(path.relative_to(var))] = f"{stat.S_IMODE(path.lstat().st_mode):04o}"
    return found


def open_ones(var: Path) -> dict[str, str]:
    """Paths that are not 0600 (files) or 0700 (directories)."""
    wrong = {}
    for name, mode in modes(var).items():
        path = var / name
        expected = "0700" if path.is_dir() else "0600"
        if mode != expected:
            wrong[name] = mode
    return wrong


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    var = tmp_path_factory.mktemp("migrated") / "var"
    fapiao(var, "migrate", "--noinput")
    return var


def copy_of(var: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(var, tmp_path / "var", copy_function=shutil.copy2))  # modes kept


def test_after_migrate_and_issuing_every_file_is_0600_in_0700_directories(
    migrated: Path, tmp_path: Path
) -> None:
    assert {"fapiao.sqlite3", "keys/django-secret"} <= set(modes(migrated))
    assert open_ones(migrated) == {}
    var = copy_of(migrated, tmp_path)

    # SQLite gives the WAL and shared-memory files the database file's mode, whatever the umask.
    umask = os.umask(0o022)
    try:
        with sqlite3.connect(var / "fapiao.sqlite3") as live:
            live.execute("PRAGMA journal_mode=WAL")
            live.execute("CREATE TABLE probe (x)")
            assert {"fapiao.sqlite3-wal", "fapiao.sqlite3-shm"} <= set(modes(var))
            assert open_ones(var) == {}
            live.execute("DROP TABLE probe")
        live.close()
    finally:
        os.umask(umask)

    fapiao(var, "demo")
    invoice = tmp_path / "invoice.json"
    invoice.write_text(json.dumps(VALID_INVOICE, ensure_ascii=False))
    issued = json.loads(fapiao(var, "issue", str(invoice), "--user", "clerk").stdout)
    assert issued["receipt"]["format"] == "fapiao-receipt/1"
    names = set(modes(var))
    assert {"witness/heads.jsonl", "witness/audit-heads.jsonl", "keys/keys.json"} <= names
    assert any(name.endswith(".pem") for name in names)
    assert open_ones(var) == {}


def test_an_installation_left_open_is_closed_at_start_or_refused(migrated: Path, tmp_path: Path) -> None:
    var = copy_of(migrated, tmp_path)
    database = var / "fapiao.sqlite3"
    for path, mode in ((var, 0o755), (var / "keys", 0o755), (database, 0o644)):
        path.chmod(mode)  # as an older version (or a copy with cp -r) left it
    fapiao(var, "check")
    assert open_ones(var) == {}

    if os.geteuid() != 0:
        pytest.skip("handing a file to another user needs root")
    stranger = var / "copied-by-root.sqlite3"
    stranger.write_bytes(b"")
    stranger.chmod(0o644)
    os.chown(stranger, 65534, 65534)  # nobody's: ours to report, not to change
    refused = fapiao(var, "check", check=False)
    assert refused.returncode == 1
    assert str(stranger) in refused.stderr and "0644" in refused.stderr and "uid 65534" in refused.stderr
    assert stat.S_IMODE(stranger.stat().st_mode) == 0o644
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FAPIAO_", "DJANGO_"))}
    server = subprocess.run(  # a gunicorn worker loading the application refuses the same way
        [sys.executable, "-c", "import fapiao.wsgi"],
        env={**env, "FAPIAO_VAR_DIR": str(var)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert server.returncode != 0 and "Refusing to start" in server.stderr and str(stranger) in server.stderr
