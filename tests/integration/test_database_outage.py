"""A database that is down or locked gives a clean 503 (problem+json, Retry-After) and no
half-written invoice; once it is back, the same request (same Idempotency-Key) succeeds once.

(a) PostgreSQL crashes (``pg_ctl stop -m immediate``) under a real gunicorn server, then
    comes back.  (b) SQLite stays locked by another process past the busy timeout, under a
    real gunicorn server.  (c) The connection raises ``OperationalError`` at a chosen
    statement in the middle of an issue, through Django's test client.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import OperationalError, connection

from fapiao.accounts.models import NumberSegment
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead
from fapiao.platform.models import IdempotencyRecord
from tests.integration.pg_cluster import (
    Answer,
    fapiao_command,
    file_backed_sqlite,
    gunicorn_server,
    http,
    private_group_commit_writer,
    server_env,
    throwaway_cluster,
)

PROBLEM = "application/problem+json"


def assert_unavailable(answer: Answer) -> dict[str, Any]:
    """A 503 problem document that says nothing was saved and when to come back."""
    assert answer.status == 503, answer.body
    assert answer.headers["Content-Type"].startswith(PROBLEM)
    assert int(answer.headers["Retry-After"]) > 0
    body = answer.json()
    assert body["status"] == 503
    assert body["type"].startswith("https://fapiao-vault.invalid/problems/")
    assert body["type"].rsplit("/", 1)[1] in {"database_unavailable", "unavailable"}
    assert body["detail"]
    return body


# Checked from outside the server, in plain SQL.  Every invoice has its lines and its ledger
# entry; every entry its invoice; the log size, the entries and the serials consumed from the
# segments all equal the invoices.
TABLES = {
    Invoice: "invoices_invoice",
    InvoiceLine: "invoices_invoiceline",
    LogEntry: "ledger_logentry",
    Log: "ledger_log",
    NumberSegment: "accounts_numbersegment",
    IdempotencyRecord: "platform_idempotencyrecord",
}
INTEGRITY_QUERIES = {
    "invoices": "SELECT count(*) FROM invoices_invoice",
    "invoices without lines": """
        SELECT count(*) FROM invoices_invoice i
        WHERE NOT EXISTS (SELECT 1 FROM invoices_invoiceline l WHERE l.invoice_id = i.id)""",
    "invoices without their ledger entry": """
        SELECT count(*) FROM invoices_invoice i WHERE NOT EXISTS (
            SELECT 1 FROM ledger_logentry e
            WHERE e.merchant_id = i.merchant_id AND e.seq = i.ledger_seq AND e.invoice_number = i.number)""",
    "entries without their invoice": """
        SELECT count(*) FROM ledger_logentry e WHERE NOT EXISTS (
            SELECT 1 FROM invoices_invoice i
            WHERE i.merchant_id = e.merchant_id AND i.number = e.invoice_number)""",
    "entries": "SELECT count(*) FROM ledger_logentry",
    "log size": "SELECT coalesce(sum(size), 0) FROM ledger_log",
    "serials used": "SELECT sum(next_serial - first_serial) FROM accounts_numbersegment",
    "idempotency records": "SELECT count(*) FROM platform_idempotencyrecord",
}


def test_the_integrity_queries_name_the_real_tables():
    assert {model: model._meta.db_table for model in TABLES} == TABLES


def integrity(cursor: Any) -> dict[str, int]:
    found = {}
    for name, sql in INTEGRITY_QUERIES.items():
        cursor.execute(sql)
        found[name] = int(cursor.fetchone()[0])
    return found


def expected_integrity(invoices: int, idempotency_records: int) -> dict[str, int]:
    return {
        "invoices": invoices,
        "invoices without lines": 0,
        "invoices without their ledger entry": 0,
        "entries without their invoice": 0,
        "entries": invoices,
        "log size": invoices,
        "serials used": invoices,
        "idempotency records": idempotency_records,
    }


def wait_until_ready(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while http("GET", base + "/readyz").status != 200:
        assert time.monotonic() < deadline, "the server did not become ready again"
        time.sleep(0.2)


# --- (a) PostgreSQL goes down under a running server and comes back ------------------------


@pytest.mark.postgres
def test_postgres_outage_is_a_clean_503_and_nothing_partial(tmp_path, valid_invoice):
    with throwaway_cluster() as cluster:
        env = server_env(var_dir=tmp_path / "var", database_url=cluster.url())
        fapiao_command(env, "migrate", "--noinput")
        fapiao_command(env, "demo")
        token = fapiao_command(env, "token", "create", "clerk", "--scope", "write").strip()
        auth = {"Authorization": f"Bearer {token}"}
        with gunicorn_server(env, tmp_path / "gunicorn.log") as server:
            url = server.base + "/api/v1/invoices"
            first = http("POST", url, valid_invoice, auth)
            assert first.status == 201, (first.body, server.log_tail())

            cluster.stop("immediate")
            retry = {**auth, "Idempotency-Key": "during-the-outage"}
            down = http("POST", url, valid_invoice, retry)
            assert_unavailable(down)
            assert down.elapsed < 15, "an outage must be answered promptly (connect_timeout)"
            ready = http("GET", server.base + "/readyz")
            assert ready.status == 503 and ready.json()["checks"]["database"] == "unavailable"
            assert int(ready.headers["Retry-After"]) > 0
            # Reads fail the same clean way.
            assert_unavailable(http("GET", url, headers=auth))

            cluster.start()
            wait_until_ready(server.base)
            again = http("POST", url, valid_invoice, retry)
            assert again.status == 201, (again.body, server.log_tail())
            replay = http("POST", url, valid_invoice, retry)
            assert replay.status == 201 and replay.headers["Idempotent-Replayed"] == "true"
            assert replay.json()["number"] == again.json()["number"]
            third = http("POST", url, valid_invoice, auth)
            assert third.status == 201
            numbers = [answer.json()["number"] for answer in (first, again, third)]
            assert [int(n[5:]) for n in numbers] == list(range(int(numbers[0][5:]), int(numbers[0][5:]) + 3))
            assert "Traceback" not in server.log_tail(200)

        with psycopg.connect(cluster.url(), connect_timeout=5) as conn, conn.cursor() as cursor:
            assert integrity(cursor) == expected_integrity(invoices=3, idempotency_records=1)


# --- (b) SQLite locked by another process past the busy timeout ------------------------------

LOCK_HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
db.close()
"""


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str], Path]]:
    from django.conf import settings

    if connection.vendor != "sqlite":
        pytest.skip("the SQLite lock test runs in the SQLite pass")
    path = tmp_path / "fapiao.sqlite3"
    env = server_env(
        var_dir=tmp_path / "var", database_url=f"sqlite:///{path}", FAPIAO_SQLITE_BUSY_TIMEOUT_MS="300"
    )
    assert settings.SQLITE_BUSY_TIMEOUT_MS != 300  # the server's own setting, not the tests'
    fapiao_command(env, "migrate", "--noinput")
    fapiao_command(env, "demo")
    token = fapiao_command(env, "token", "create", "clerk", "--scope", "write").strip()
    with gunicorn_server(env, tmp_path / "gunicorn.log") as server:
        yield server, {"Authorization": f"Bearer {token}"}, path


def sqlite_integrity(path: Path) -> dict[str, int]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return integrity(db.cursor())
    finally:
        db.close()


def test_sqlite_locked_past_the_busy_timeout_is_a_clean_503(sqlite_server, valid_invoice):
    server, auth, path = sqlite_server
    url = server.base + "/api/v1/invoices"
    # Use the token once, so the request under the lock gets past authentication (which
    # records last use) and fails where it matters: taking the write lock to issue.
    assert http("GET", url, headers=auth).status == 200
    retry = {**auth, "Idempotency-Key": "while-locked"}

    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        locked = http("POST", url, valid_invoice, retry)
        assert_unavailable(locked)
        assert locked.elapsed >= 0.25, "the writer should have waited for the busy timeout first"
        # Readers are not blocked (WAL): the service still answers reads.
        assert http("GET", url, headers=auth).json()["total"] == 0
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=10)

    assert sqlite_integrity(path) == expected_integrity(invoices=0, idempotency_records=0)
    again = http("POST", url, valid_invoice, retry)
    assert again.status == 201, (again.body, server.log_tail())
    replay = http("POST", url, valid_invoice, retry)
    assert replay.status == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == again.json()
    assert sqlite_integrity(path) == expected_integrity(invoices=1, idempotency_records=1)


# --- (c) The connection fails in the middle of an issue (test client) ----------------------

# Where the connection fails: (verb, table, which occurrence of that statement).
FAILING_STATEMENTS = [
    pytest.param(("INSERT", IdempotencyRecord._meta.db_table, 1), id="claiming-the-key"),
    pytest.param(("UPDATE", NumberSegment._meta.db_table, 1), id="after-taking-the-number"),
    pytest.param(("INSERT", InvoiceLine._meta.db_table, 1), id="writing-the-lines"),
    pytest.param(("INSERT", LogEntry._meta.db_table, 1), id="writing-the-ledger-entry"),
    pytest.param(("INSERT", TreeHead._meta.db_table, 1), id="signing-the-head"),
    # The claim is one INSERT ... ON CONFLICT; the only UPDATE stores the answer, the last
    # write before COMMIT.
    pytest.param(("UPDATE", IdempotencyRecord._meta.db_table, 1), id="storing-the-answer"),
]


class FailAt:
    """An execute wrapper: raises OperationalError once, at the n-th matching statement."""

    def __init__(self) -> None:
        self.target: tuple[str, str, int] | None = None
        self.seen = 0
        self.hits: list[str] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.target:
            verb, table, occurrence = self.target
            if sql.lstrip().upper().startswith(verb) and f'"{table}"' in sql:
                self.seen += 1
                if self.seen == occurrence:
                    self.target = None
                    self.hits.append(sql)
                    raise OperationalError("simulated: server closed the connection unexpectedly")
        return execute(sql, params, many, context)


@pytest.fixture(params=[False, True], ids=["direct", "group-commit"])
def failing_connection(
    request: pytest.FixtureRequest, settings: Any, transactional_db: None, tmp_path: Path
) -> Iterator[FailAt]:
    """A FailAt on the connection that runs the writes: the request thread's, or the writer's."""
    fail = FailAt()
    settings.FAPIAO_WRITE_BATCHING = request.param
    if not request.param:
        with connection.execute_wrapper(fail):
            yield fail
        return
    database = (
        file_backed_sqlite(tmp_path / "fapiao.sqlite3")
        if connection.vendor == "sqlite"
        else contextlib.nullcontext()
    )
    with database, private_group_commit_writer() as writer:
        writer.submit(lambda unit: connection.execute_wrappers.append(fail))  # in the writer's thread
        yield fail


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("statement", FAILING_STATEMENTS)
def test_operational_error_mid_issue_is_a_503_with_nothing_written(
    failing_connection, statement, client_for, valid_invoice
):
    client = client_for("clerk")

    def post() -> Any:
        return client.post(
            "/api/v1/invoices",
            data=json.dumps(valid_invoice),
            content_type="application/json",
            headers={"Idempotency-Key": "mid-issue"},
        )

    serials = sum(NumberSegment.objects.values_list("next_serial", flat=True))
    failing_connection.target = statement
    response = post()

    assert len(failing_connection.hits) == 1
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith(PROBLEM)
    assert int(response["Retry-After"]) > 0
    assert response.json()["status"] == 503
    assert sum(NumberSegment.objects.values_list("next_serial", flat=True)) == serials
    for model in (Invoice, InvoiceLine, LogEntry, LogNode, TreeHead, IdempotencyRecord):
        assert model.objects.count() == 0, model.__name__
    assert not Log.objects.filter(size__gt=0).exists()

    again = post()  # the same request, the same key: issued once
    assert again.status_code == 201, again.content
    assert post().json() == again.json()
    assert Invoice.objects.count() == LogEntry.objects.count() == IdempotencyRecord.objects.count() == 1
    assert sum(NumberSegment.objects.values_list("next_serial", flat=True)) == serials + 1
