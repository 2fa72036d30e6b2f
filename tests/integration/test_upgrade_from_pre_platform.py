"""An installation made by the code before issue 12 upgrades with `fapiao migrate` and loses nothing.

The fixture (tests/fixtures/pre_platform, made by tests/fixtures/make_pre_platform_db.py at 771c05c)
is a whole var directory: the SQLite database, the keys, the witness files, the evidence.  A copy
of it is upgraded by the `fapiao` command in a subprocess, as an operator would, and then:

- every row of every table is still there, unchanged: compared by a hash of each row's values
  (over the columns the table had), per table for tables that kept their name; a table the new
  layout moved or renamed (the idempotency record going to the platform app, say) must reappear
  as a new table holding exactly its rows;
- `fapiao ledger verify --deep` and `fapiao audit verify --deep` pass;
- the API still serves the old invoices, their receipts verify offline against the installation's
  keys, an individual buyer's encrypted fields still decrypt, and a POST retried with the
  Idempotency-Key the fixture used gets the stored answer (no second invoice, no second case).

SQLite only: the fixture is a SQLite database (the PostgreSQL pass skips it).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "pre_platform"
FAPIAO = Path(sys.executable).parent / "fapiao"
# Django's own bookkeeping, which `migrate` rewrites: checked for what must survive, not row by row.
BOOKKEEPING = {"django_migrations", "django_content_type", "auth_permission"}

pytestmark = pytest.mark.skipif(
    os.environ.get("FAPIAO_TEST_BACKEND", "sqlite") != "sqlite",
    reason="the fixture is a SQLite database: runs in the SQLite pass",
)


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def hashes(self, columns: tuple[str, ...]) -> Counter[str]:
        """The multiset of the rows' hashes over ``columns`` (a row's values, tagged with their types)."""
        where = [self.columns.index(column) for column in columns]
        return Counter(
            hashlib.sha256(
                json.dumps(
                    [
                        [column, type(row[i]).__name__, row[i].hex() if isinstance(row[i], bytes) else row[i]]
                        for column, i in zip(columns, where, strict=True)
                    ],
                    ensure_ascii=False,
                ).encode()
            ).hexdigest()
            for row in self.rows
        )

    def values(self, column: str) -> set[Any]:
        i = self.columns.index(column)
        return {row[i] for row in self.rows}


def snapshot(database: Path) -> dict[str, Table]:
    """Every row of every table (raw SQL over sqlite_master; SQLite's own tables left out)."""
    tables = {}
    with closing(sqlite3.connect(database)) as db:
        names = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for name in names:
            columns = tuple(row[1] for row in db.execute(f'PRAGMA table_info("{name}")'))
            rows = tuple(db.execute(f'SELECT * FROM "{name}"').fetchall())  # noqa: S608  names from sqlite_master
            tables[name] = Table(columns, rows)
    return tables


def differences(before: dict[str, Table], after: dict[str, Table]) -> list[str]:
    """What the upgrade lost or changed; empty when every row is still there."""
    problems = []
    added = {name: table for name, table in after.items() if name not in before}
    for name, old in before.items():
        if name in BOOKKEEPING:
            continue
        wanted = old.hashes(old.columns)
        if name in after:
            new = after[name]
            dropped = [column for column in old.columns if column not in new.columns]
            if dropped:
                problems.append(f"{name}: columns {dropped} are gone")
            elif new.hashes(old.columns) != wanted:
                lost = sum((wanted - new.hashes(old.columns)).values())
                problems.append(f"{name}: {lost} of its {len(old.rows)} rows lost or changed")
            continue
        # Moved or renamed: a table the upgrade made must hold exactly these rows.
        homes = [
            other
            for other, new in added.items()
            if set(old.columns) <= set(new.columns) and new.hashes(old.columns) == wanted
        ]
        if not homes:
            problems.append(f"{name}: gone, and no new table holds its {len(old.rows)} rows")
    old, new = before["django_migrations"], after["django_migrations"]
    if old.hashes(old.columns) - new.hashes(old.columns):
        problems.append("django_migrations: applied migrations were forgotten")
    for name, column in (("django_content_type", "model"), ("auth_permission", "codename")):
        if missing := before[name].values(column) - after[name].values(column):
            problems.append(f"{name}: no row for {sorted(missing)}")
    return problems


def environment(var: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FAPIAO_", "DJANGO_SETTINGS_MODULE"))}
    return {**clean, "FAPIAO_VAR_DIR": str(var)}


def run(*command: str, var: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, env=environment(var), cwd=REPO, timeout=300, check=False
    )


def fapiao(*args: str, var: Path) -> subprocess.CompletedProcess[str]:
    return run(str(FAPIAO), *args, var=var)


@pytest.fixture
def installation(tmp_path: Path) -> Path:
    """A copy of the pre-platform var directory, as an operator would have it before upgrading."""
    with tarfile.open(FIXTURE / "var.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    var = tmp_path / "var"
    for key in (var / "keys").iterdir():
        key.chmod(0o600)  # as the installation wrote them
    return var


def test_upgrade_keeps_every_row_and_the_logs_verify(installation: Path, tmp_path: Path) -> None:
    var = installation
    database = var / "fapiao.sqlite3"
    manifest = json.loads((FIXTURE / "manifest.json").read_text(encoding="utf-8"))
    before = snapshot(database)
    assert sum(len(table.rows) for table in before.values()) > 500  # the fixture is not empty

    migrated = fapiao("migrate", "--noinput", var=var)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "迁移前后数据一致" in migrated.stdout  # the data check ran over the old schema, and passed

    after = snapshot(database)
    assert differences(before, after) == []
    with closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []

    for log in ("ledger", "audit"):
        verified = fapiao(log, "verify", "--deep", "--lang", "en", var=var)
        assert verified.returncode == 0, f"{log} verify:\n{verified.stdout}\n{verified.stderr}"

    probed = run(
        sys.executable, "-m", "tests.integration.upgrade_probe", str(FIXTURE / "manifest.json"), var=var
    )
    assert probed.returncode == 0, probed.stderr
    answers = json.loads(probed.stdout)

    # The old invoices are served, and each receipt verifies offline against the installation's keys.
    for name, number in manifest["invoices"].items():
        fetched, receipt = answers["invoices"][name], answers["receipts"][name]
        assert (fetched["status"], fetched["body"]["number"]) == (200, number), fetched
        assert receipt["status"] == 200, receipt
        path = tmp_path / f"receipt-{number}.json"
        path.write_text(json.dumps(receipt["body"], ensure_ascii=False), encoding="utf-8")
        checked = fapiao(
            "receipt",
            "verify",
            str(path),
            "--public-key",
            str(var / "keys" / "keys.json"),
            "--lang",
            "en",
            var=var,
        )
        assert checked.returncode == 0 and number in checked.stdout, checked.stdout + checked.stderr
    assert answers["invoices"]["restored"]["body"]["origin"] == "restored"
    assert answers["reveal"]["status"] == 200 and answers["reveal"]["body"]["buyer"] == manifest["person"]
    assert answers["case"]["status"] == 200 and answers["case"]["body"]["state"] == "confirmed"

    # A retried POST gets the answer stored before the upgrade: the same invoice, the same case.
    for item, retry in zip(manifest["idempotent"], answers["retries"], strict=True):
        assert retry["status"] == 201, (item["key"], retry)
        if item["path"] == "/api/v1/cases":  # the case as it is now: the same case is what counts here
            assert retry["body"]["case_id"] == item["answer"]["case_id"]
        else:
            assert (retry["replayed"], retry["body"]) == ("true", item["answer"]), item["key"]
    assert answers["totals_after"] == answers["totals_before"]
