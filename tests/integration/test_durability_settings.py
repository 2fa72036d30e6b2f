"""The durability settings hold on every connection, and a 201 is built only after the commit.

SQLite: WAL, synchronous=FULL, the configured busy timeout, IMMEDIATE transactions (the write
lock is taken at BEGIN, not at the first write).  PostgreSQL: synchronous_commit=on.  Each
is checked on the request thread's connection, on a connection opened by another thread and
on a connection reopened after close.  Backend-specific checks skip on the other backend.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from fapiao.invoices.models import Invoice
from tests.integration.pg_cluster import file_backed_sqlite, private_group_commit_writer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database(transactional_db: None, tmp_path: Path) -> Iterator[Path | None]:
    """On SQLite, a file database (the test database is in memory, where WAL cannot exist)."""
    if connection.vendor == "sqlite":
        with file_backed_sqlite(tmp_path / "fapiao.sqlite3") as path:
            yield path
    else:
        yield None


def in_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a new thread, on that thread's own new connection (closed afterwards)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as error:  # re-raised in the caller
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def observe() -> dict[str, Any]:
    """The durability-relevant settings of this thread's connection, as the server reports them."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            found: dict[str, Any] = {"transaction_mode": connection.transaction_mode}
            for pragma in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys"):
                cursor.execute(f"PRAGMA {pragma}")
                found[pragma] = cursor.fetchone()[0]
            return found
        cursor.execute("SHOW synchronous_commit")
        return {"synchronous_commit": cursor.fetchone()[0]}


def expected() -> dict[str, Any]:
    if connection.vendor == "sqlite":
        return {
            "transaction_mode": "IMMEDIATE",
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "busy_timeout": settings.SQLITE_BUSY_TIMEOUT_MS,
            "foreign_keys": 1,
        }
    return {"synchronous_commit": "on"}


def reopened() -> dict[str, Any]:
    observe()
    connection.close()
    assert connection.connection is None
    return observe()


def test_settings_hold_on_the_default_connection(database):
    assert observe() == expected()


def test_settings_hold_on_a_connection_opened_by_another_thread(database):
    observe()
    main = connection.connection
    assert main is not None
    assert in_thread(lambda: (observe(), connection.connection is not main)) == (expected(), True)


def test_settings_hold_after_close_and_reconnect(database):
    assert reopened() == expected()
    assert in_thread(reopened) == expected()


def test_requests_are_not_wrapped_in_a_transaction(database):
    # ATOMIC_REQUESTS would put every view (and its response) inside one transaction and make
    # the unit of work's commit a savepoint release: an acknowledgement before the commit.
    assert connection.settings_dict["ATOMIC_REQUESTS"] is False
    assert settings.DATABASES["default"]["ATOMIC_REQUESTS"] is False
    assert connection.get_autocommit() is True


# --- SQLite ---------------------------------------------------------------------------------


def sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite setting; this pass runs on " + connection.vendor)


def test_sqlite_configuration_asks_for_the_durable_settings(database):
    sqlite_only()
    options = connection.settings_dict["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] * 1000 == settings.SQLITE_BUSY_TIMEOUT_MS
    assert "PRAGMA journal_mode=WAL" in options["init_command"]
    assert "PRAGMA synchronous=FULL" in options["init_command"]


def test_sqlite_atomic_takes_the_write_lock_at_begin(database):
    """BEGIN IMMEDIATE: inside atomic(), before any write (indeed before any query of ours),
    another connection can no longer start a write transaction; it can still read (WAL)."""
    sqlite_only()
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the control: nothing holds the lock yet
        other.execute("ROLLBACK")
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            assert connection.in_atomic_block
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            # Readers are not blocked by the writer in WAL mode.
            assert other.execute("SELECT count(*) FROM invoices_invoice").fetchone() == (0,)
            # The only statement so far is the one that took the lock.
            assert [q["sql"] for q in queries.captured_queries] == ["BEGIN IMMEDIATE"]
        assert [q["sql"] for q in queries.captured_queries] == ["BEGIN IMMEDIATE", "COMMIT"]
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_sqlite_a_second_django_connection_waits_then_gives_up_at_the_busy_timeout(database, settings):
    """A writer queues for the lock (busy timeout) and then fails cleanly; it never writes."""
    sqlite_only()
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        connections_settings = connection.settings_dict
        saved = connections_settings["OPTIONS"]
        # A short wait keeps the test fast; the mechanism is the one configured above.
        connections_settings["OPTIONS"] = {
            **saved,
            "timeout": 0.2,
            "init_command": saved["init_command"].replace(
                f"busy_timeout={settings.SQLITE_BUSY_TIMEOUT_MS}", "busy_timeout=200"
            ),
        }
        try:

            def try_to_write() -> str:
                import time

                from django.db import OperationalError

                started = time.monotonic()
                try:
                    with transaction.atomic():
                        pass
                except OperationalError as error:
                    assert time.monotonic() - started >= 0.15
                    return str(error)
                return "acquired"

            assert "locked" in in_thread(try_to_write)
        finally:
            connections_settings["OPTIONS"] = saved
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# --- PostgreSQL -------------------------------------------------------------------------------


def test_postgres_connection_options(database):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL setting; this pass runs on " + connection.vendor)
    assert "synchronous_commit=on" in connection.settings_dict["OPTIONS"]["options"]
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    # Also inside the transactions that carry the writes.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


# --- The acknowledgement follows the commit -----------------------------------------------------


@pytest.fixture(params=[False, True], ids=["direct", "group-commit"])
def batching(request: pytest.FixtureRequest, settings: Any, database: Path | None) -> Iterator[bool]:
    settings.FAPIAO_WRITE_BATCHING = request.param
    if request.param:
        with private_group_commit_writer():
            yield True
    else:
        yield False


def test_201_is_built_after_the_commit_and_outside_any_transaction(
    batching, client_for, valid_invoice, monkeypatch
):
    import fapiao.api  # first: fapiao.invoices.api imported on its own is a circular import
    import fapiao.invoices.api
    import fapiao.ledger.services

    events: list[tuple[str, dict[str, Any]]] = []
    real_witness = fapiao.ledger.services.witness
    real_response = fapiao.invoices.api.JsonResponse

    def snapshot() -> dict[str, Any]:
        # Another thread's connection sees only what is committed.
        return {"in_atomic_block": connection.in_atomic_block, "visible": in_thread(Invoice.objects.count)}

    def witness(heads: list[dict[str, Any]]) -> None:
        events.append(("witness", snapshot()))
        real_witness(heads)

    class Response(real_response):  # type: ignore[misc, valid-type]
        def __init__(self, data: Any, *args: Any, **kwargs: Any) -> None:
            if kwargs.get("status") == 201:
                events.append(("response", snapshot()))
            super().__init__(data, *args, **kwargs)

    monkeypatch.setattr(fapiao.ledger.services, "witness", witness)
    monkeypatch.setattr(fapiao.invoices.api, "JsonResponse", Response)

    response = client_for("clerk").post(
        "/api/v1/invoices", data=json.dumps(valid_invoice), content_type="application/json"
    )

    assert response.status_code == 201, response.content
    assert events == [
        ("witness", {"in_atomic_block": False, "visible": 1}),
        ("response", {"in_atomic_block": False, "visible": 1}),
    ]
    assert Invoice.objects.get().number == response.json()["number"]
