"""The rate limiter: fixed windows in the database, one count for every process (issue 13, finding 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from fapiao.platform import ratelimit
from fapiao.platform.models import RateCounter
from fapiao.platform.ratelimit import ClosedWindow, Decision, hit, peek, purge
from tests.integration.pg_cluster import file_backed_sqlite

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = 1_800_000_000.0  # on the hour (UTC)


def test_a_window_counts_until_the_limit_then_refuses_until_it_closes() -> None:
    decisions = [hit("test", "203.0.113.7", 2, 60, now=HOUR + second) for second in range(3)]
    assert decisions == [Decision(True, 1, 60), Decision(True, 2, 59), Decision(False, 3, 58)]
    assert peek("test", "203.0.113.7", 2, 60, now=HOUR + 30) == Decision(False, 3, 30)
    assert peek("test", "203.0.113.7", 5, 60, now=HOUR + 30) == Decision(True, 3, 30)  # room for one more
    assert hit("test", "203.0.113.7", 2, 60, now=HOUR + 60) == Decision(True, 1, 60)  # the next window
    assert hit("other-scope", "203.0.113.7", 2, 60, now=HOUR).count == 1
    assert hit("test", "203.0.113.8", 2, 60, now=HOUR).count == 1
    assert peek("test", "203.0.113.9", 2, 60, now=HOUR) == Decision(True, 0, 60)
    assert RateCounter.objects.count() == 4  # peeking writes nothing


def test_long_keys_are_stored_as_their_digest() -> None:
    key = "token:" + "x" * 300
    assert [hit("test", key, 5, 60, now=HOUR).count for _ in range(2)] == [1, 2]
    (row,) = RateCounter.objects.all()
    assert row.key.startswith("sha256:") and len(row.key) == 71


def test_purge_hands_closed_windows_to_their_scope_then_deletes_them(monkeypatch: Any) -> None:
    seen: list[ClosedWindow] = []
    monkeypatch.setitem(ratelimit._hooks, "watched", ratelimit._Hook(seen.extend, lambda: 3))
    for _ in range(3):
        hit("watched", "a", 10, 60, now=HOUR)
    hit("watched", "b", 10, 60, now=HOUR)  # below the hook's threshold: deleted unseen
    hit("plain", "a", 10, 60, now=HOUR)
    hit("plain", "a", 10, 60, now=HOUR + 60)  # still open at the purge
    assert purge(now=HOUR + 60) == 3
    assert [(w.scope, w.key, w.count, w.end.timestamp() - w.start.timestamp()) for w in seen] == [
        ("watched", "a", 3, 60)
    ]
    assert list(RateCounter.objects.values_list("scope", "window_start")) == [("plain", int(HOUR) + 60)]


def test_a_failing_close_hook_keeps_its_windows_for_the_next_purge(monkeypatch: Any) -> None:
    def broken(windows: list[ClosedWindow]) -> None:
        raise RuntimeError("audit trail unavailable")

    monkeypatch.setitem(ratelimit._hooks, "watched", ratelimit._Hook(broken, lambda: 1))
    hit("watched", "a", 10, 60, now=HOUR)
    assert purge(now=HOUR + 120) == 0
    assert RateCounter.objects.filter(scope="watched").exists()
    seen: list[ClosedWindow] = []
    monkeypatch.setitem(ratelimit._hooks, "watched", ratelimit._Hook(seen.extend, lambda: 1))
    assert purge(now=HOUR + 120) == 1 and [w.key for w in seen] == ["a"]


# --- Shared by every process ----------------------------------------------------------------------

HITTER = """
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fapiao.settings")
django.setup()
from django.db import connection
from fapiao.platform.ratelimit import hit
now, count = float(sys.argv[1]), int(sys.argv[2])
# Connect before the race: the race is between the two processes' hits, not their connection setup
# (SQLite's journal_mode pragma on connect can answer "database is locked" without waiting).
connection.ensure_connection()
print("ready", flush=True)
sys.stdin.readline()
allowed = sum(hit("pooled", "198.51.100.4", 150, 3600, now=now).allowed for _ in range(count))
print(json.dumps({"allowed": allowed}), flush=True)
"""


@pytest.fixture
def shared_database(tmp_path: Path) -> Iterator[str]:
    """A URL other processes open to reach this test's database."""
    if connection.vendor == "sqlite":
        with file_backed_sqlite(tmp_path / "shared.sqlite3") as path:
            yield f"sqlite:///{path}"
        return
    settings = connection.settings_dict
    yield f"postgresql://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


def test_two_processes_hitting_one_key_share_one_count(shared_database: str, tmp_path: Path) -> None:
    """Two server processes, 100 hits each, limit 150: 150 allowed in all, not 150 each."""
    env = {**os.environ, "FAPIAO_DATABASE_URL": shared_database, "FAPIAO_VAR_DIR": str(tmp_path / "var")}
    processes = [
        subprocess.Popen(  # our own interpreter and script
            [sys.executable, "-c", HITTER, str(HOUR), "100"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        for process in processes:  # both start hitting together
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = [json.loads(process.communicate(timeout=120)[0]) for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [process.returncode for process in processes] == [0, 0]
    assert sum(result["allowed"] for result in results) == 150
    assert all(result["allowed"] > 0 for result in results)
    assert peek("pooled", "198.51.100.4", 150, 3600, now=HOUR).count == 200
