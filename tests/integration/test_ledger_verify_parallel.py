"""`fapiao ledger verify` with helper processes (benchmarks/README.md (P5)): the same report as without.

Helpers read committed rows through their own connections, so these tests commit
(``transaction=True``) and shrink the chunk to 4 entries so that the 20-entry log has five
chunks to share out (and three windows of heads).  On PostgreSQL the helpers really run (on
the snapshot verify exported), and on SQLite with ``FAPIAO_TEST_SQLITE_FILE=1``; SQLite's
default test database lives in memory, where no other process can read it, so there verify
must fall back to hashing every chunk itself — with, again, the same report.  Every row of the
tamper table must give exactly the same findings with helpers as without.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction

from fapiao.ledger import verify_log, verify_pool
from fapiao.ledger.verify import VerifyReport, verify_ledger
from tests.faults.test_tamper import TAMPERS, Tamper
from tests.integration.test_ledger_verify import build_log, run_command

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch, witness_file: Any) -> None:
    """Four-entry chunks, helpers from the first chunk on, heads read two chunks at a time."""
    monkeypatch.setattr(verify_log, "CHUNK", 4)
    monkeypatch.setattr(verify_log, "MIN_PARALLEL_CHUNKS", 1)
    monkeypatch.setattr(verify_log, "HEAD_BATCH", 2)


@pytest.fixture
def witness_file(settings: Any, tmp_path: Any) -> Any:
    path = tmp_path / "witness" / "heads.jsonl"
    settings.FAPIAO_WITNESS_FILE = path
    return path


def helpers_can_run() -> bool:
    return connection.vendor == "postgresql" or (
        connection.vendor == "sqlite" and not connection.is_in_memory_db()
    )


def helped(report: VerifyReport) -> int:
    return sum(log.helped_chunks for log in report.logs)


def comparable(report: VerifyReport) -> list[dict[str, Any]]:
    logs = report.to_json("en")["logs"]
    for log in logs:
        del log["elapsed_seconds"]
    return logs


def test_a_clean_log_gives_the_same_report_with_helpers(demo, small_chunks):
    build_log(demo["clerk"])
    alone = verify_ledger(workers=0)
    shared = verify_ledger(workers=2)
    assert shared.ok and comparable(shared) == comparable(alone)
    assert helped(alone) == 0
    if helpers_can_run():
        assert helped(shared) > 0, "no chunk was hashed by a helper"
    else:
        assert helped(shared) == 0


def test_the_command_takes_the_number_of_helpers(demo, small_chunks, monkeypatch):
    build_log(demo["clerk"])
    asked: list[int | None] = []
    verify = verify_log.check_log

    def spy(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["workers"])
        return verify(*args, **kwargs)

    monkeypatch.setattr(verify_log, "check_log", spy)
    monkeypatch.setattr("fapiao.ledger.verify.check_log", spy)
    for args in (["--workers", "0"], ["--workers", "2"], []):
        status, out, _err = run_command(*args, "--json")
        assert status == 0 and '"ok": true' in out
    per_run = len(asked) // 3  # one call per merchant
    assert per_run and asked == [0] * per_run + [2] * per_run + [None] * per_run


def test_no_helper_starts_inside_a_callers_transaction(demo, small_chunks, monkeypatch):
    """Rows the caller has not committed are invisible to other connections."""
    build_log(demo["clerk"])
    started: list[int] = []
    monkeypatch.setattr(verify_pool.WorkerPool, "__init__", lambda self, setup, count: started.append(count))
    with transaction.atomic():
        report = verify_ledger(workers=2)
    assert report.ok and helped(report) == 0 and started == []


def test_deep_takes_no_helpers(demo, small_chunks):
    build_log(demo["clerk"])
    report = verify_ledger(workers=2, deep=True)
    assert report.ok and helped(report) == 0


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.name.replace(" ", "-") for t in TAMPERS])
def test_every_tamper_gives_the_same_findings_with_helpers(demo, small_chunks, tamper: Tamper):
    tamper.apply(build_log(demo["clerk"]))
    alone = verify_ledger(workers=0)
    shared = verify_ledger(workers=2)
    assert shared.codes() == tamper.expected, shared.to_json("en")
    assert comparable(shared) == comparable(alone)
    if helpers_can_run():
        assert helped(shared) > 0, "no chunk was hashed by a helper"
