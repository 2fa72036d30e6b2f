"""No plaintext of a party's sensitive data anywhere on disk (docs/spec/security.md), nor in a log line
or a metric.

A real server (gunicorn, group commit) on its own var dir is fed known values — an individual's
ID number, a phone, an address, a bank and an account — through issuing, idempotent retries,
red-lettering, searching, revealing, refused requests, recovery cases, the audit trail, exports,
verification and a data-key rotation.  Then every file under the var dir (the SQLite database with
its -wal and -shm, logs, keys, witness files, exports; inside XLSX files too) and, on PostgreSQL, a
``pg_dump`` of the database are scanned for the values: as UTF-8, UTF-16 (both byte orders),
GBK and JSON ``\\uXXXX`` escapes.  None may appear.

The logs and a scrape of ``/metrics`` are held to more: the buyer's *name* too (stored in the clear,
so not in the disk scan) must appear in no log line and no label, and every log line the server
wrote is a JSON document; each request's line carries its request id, user id, route, status and
duration.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import urllib.parse
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKEND, VALID_INVOICE
from tests.faults.server import PG_ADMIN_URL, LiveServer, postgres_reachable, throwaway_postgres

SECRETS = {
    "resident_id": "11010519491231037X",
    "phone": "13812345678",
    "address": "北京市朝阳区建国路88号院3号楼",
    "bank": "中国工商银行北京国贸支行",
    "bank_account": "6222021234567890128",
}
BUYER = {
    "name": "张三丰",
    "tax_id": SECRETS["resident_id"],
    **{k: v for k, v in SECRETS.items() if k != "resident_id"},
}


def encodings(value: str) -> set[bytes]:
    """Every way the value could sit in a file."""
    forms = {value.encode("utf-8"), value.encode("utf-16-le"), value.encode("utf-16-be")}
    with contextlib.suppress(UnicodeEncodeError):
        forms.add(value.encode("gbk"))
    escaped = json.dumps(value)[1:-1]  # \u5317… for Chinese text
    forms.update({escaped.encode(), escaped.upper().replace("\\U", "\\u").encode()})
    return forms


NEEDLES = {(name, form) for name, value in SECRETS.items() for form in encodings(value)}
# In the database in the clear (a buyer's name is what a clerk searches by), never in logs or metrics.
NAMES = {"buyer_name": BUYER["name"], "case_buyer_name": "李四光"}
LOG_NEEDLES = NEEDLES | {(name, form) for name, value in NAMES.items() for form in encodings(value)}
METRICS_TOKEN = "scan-metrics-token-5e2f9a1c"


def contents(path: Path) -> Iterator[tuple[str, bytes]]:
    """A file's bytes, and for a zip (XLSX) each member's bytes too."""
    data = path.read_bytes()
    yield str(path), data
    if data[:2] == b"PK":
        with contextlib.suppress(zipfile.BadZipFile), zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                yield f"{path}!{member}", archive.read(member)


def leaks_in(label: str, data: bytes, needles: set[tuple[str, bytes]] = NEEDLES) -> list[str]:
    return [f"{label}: {name} ({form[:12]!r}…)" for name, form in needles if form in data]


def scan(root: Path) -> tuple[list[str], list[str]]:
    found: list[str] = []
    scanned: list[str] = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            for label, data in contents(path):
                scanned.append(label)
                found.extend(leaks_in(label, data))
    return found, scanned


class Api:
    def __init__(self, server: LiveServer) -> None:
        self.server = server

    def raw(self, method: str, path: str, token: str = "") -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            connection.request(method, path, headers={"Authorization": f"Bearer {token}"} if token else {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def call(self, method: str, path: str, body: object = None, token: str = "", **headers: str) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            sent = {**headers}
            if token:
                sent["Authorization"] = f"Bearer {token}"
            payload = None
            if body is not None:
                payload = json.dumps(body, ensure_ascii=False).encode()
                sent["Content-Type"] = "application/json"
            connection.request(method, path, body=payload, headers=sent)
            response = connection.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else None
        finally:
            connection.close()


def exercise(server: LiveServer) -> None:
    """Everything that touches the sensitive values, through the real server and CLI."""
    api = Api(server)
    clerk, admin = server.token("clerk"), server.token("madmin", "read")
    auditor = server.token("auditor", "read")
    invoice = {**VALID_INVOICE, "buyer": BUYER}
    status, first = api.call("POST", "/api/v1/invoices", invoice, clerk, **{"Idempotency-Key": "scan-1"})
    assert status == 201, first
    assert first["buyer"]["phone"] == "138****5678"
    status, again = api.call("POST", "/api/v1/invoices", invoice, clerk, **{"Idempotency-Key": "scan-1"})
    assert status == 201 and again == first
    status, second = api.call("POST", "/api/v1/invoices", invoice, clerk)
    assert status == 201
    status, red = api.call("POST", f"/api/v1/invoices/{second['number']}/red-letter", {"full": True}, clerk)
    assert status == 201, red
    number = first["number"]
    status, found = api.call("GET", f"/api/v1/invoices?buyer={SECRETS['resident_id']}", token=clerk)
    assert status == 200 and found["total"] == 3
    status, revealed = api.call("GET", f"/api/v1/invoices/{number}?reveal=true", token=admin)
    assert status == 200 and revealed["buyer"]["tax_id"] == SECRETS["resident_id"]
    assert api.call("GET", f"/api/v1/invoices/{number}?reveal=true", token=auditor)[0] == 403
    assert api.call("GET", "/api/v1/invoices", token="fpv_not-a-token")[0] == 401
    status, trail = api.call("GET", "/api/v1/audit?action=invoice", token=auditor)
    assert status == 200 and trail["total"] >= 4
    cases_and_searches(api, clerk, number)

    exports = server.var_dir / "exports"
    exports.mkdir(exist_ok=True)
    for suffix in ("csv", "xlsx"):
        server.manage(
            "export",
            "--user",
            "clerk",
            "--from",
            "2000-01-01",
            "--to",
            "2099-12-31",
            str(exports / f"i.{suffix}"),
        )
        server.manage("audit", "export", "--user", "auditor", str(exports / f"audit.{suffix}"))
    assert "PASSED" in server.manage("audit", "verify", "--lang", "en")
    server.manage("ledger", "verify")
    server.manage("keys", "rotate-data", "--batch-size", "1")
    status, after = api.call("GET", f"/api/v1/invoices/{number}?reveal=true", token=admin)
    assert status == 200 and after["buyer"] == revealed["buyer"]


def cases_and_searches(api: Api, clerk: str, number: str) -> None:
    """Recovery cases, searches and wrong addresses that carry the values (in bodies, queries, paths)."""
    claim = {
        "number": "26111000000000099999",
        "issued_on": "2026-11-02",
        "buyer": {"name": NAMES["case_buyer_name"], "tax_id": SECRETS["resident_id"]},
        "total_with_tax": "1060.00",
        "narrative": "上传中断，我的发票里查不到这张发票。",
    }
    status, case = api.call("POST", "/api/v1/cases", claim, clerk, **{"Idempotency-Key": "scan-case"})
    assert status == 201, case
    status, _again = api.call("POST", "/api/v1/cases", claim, clerk, **{"Idempotency-Key": "scan-case"})
    assert status == 201
    bad = {**claim, "buyer": {"name": NAMES["case_buyer_name"], "tax_id": SECRETS["phone"]}}
    assert api.call("POST", "/api/v1/cases", bad, clerk)[0] == 422
    for value in (*SECRETS.values(), *NAMES.values()):
        term = urllib.parse.quote(value)
        assert api.call("GET", f"/api/v1/invoices?buyer={term}", token=clerk)[0] == 200
        assert api.call("GET", f"/api/v1/cases?q={term}", token=clerk)[0] == 200
        assert api.call("GET", f"/api/v1/invoices/{term}", token=clerk)[0] == 404
        assert api.raw("GET", f"/invoices/{term}/")[0] == 302  # a page: sign in first
        assert api.raw("GET", f"/no-such-page/{term}?phone={term}")[0] == 404
    status, found = api.call(
        "GET", f"/api/v1/invoices?buyer={urllib.parse.quote(BUYER['name'])}", token=clerk
    )
    assert status == 200 and found["total"] >= 3 and number in {item["number"] for item in found["items"]}


def scrape(server: LiveServer) -> bytes:
    status, body = Api(server).raw("GET", "/metrics", METRICS_TOKEN)
    assert status == 200, body[:300]
    return body


def log_lines(server: LiveServer) -> list[str]:
    """What the server wrote to standard output and error, less the test harness's own markers."""
    lines = server.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("=== start #")]


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    backend = request.param
    var = tmp_path / "var"
    extra = {
        "FAPIAO_LOG_LEVEL": "INFO",
        "FAPIAO_ACCESS_LOG": str(var / "access.log"),
        "FAPIAO_METRICS_TOKEN": METRICS_TOKEN,
    }
    with contextlib.ExitStack() as stack:
        url = None
        if backend == "postgres":
            if postgres_reachable():
                pytest.skip(f"PostgreSQL is unreachable: {postgres_reachable()}")
            url = stack.enter_context(throwaway_postgres("fapiao_scan"))
        live = LiveServer(var, database_url=url, workers=1, threads=4, env=extra)
        live.prepare()
        live.start()
        stack.callback(live.stop)
        yield live


def pg_dump(url: str, out: Path) -> bytes:
    binary = shutil.which("pg_dump")
    if binary is None:
        pytest.skip("pg_dump is not installed")
    env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
    subprocess.run([binary, "--dbname", url, "--file", str(out)], check=True, env=env, timeout=120)
    return out.read_bytes()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("server", BACKENDS, indirect=True)
def test_no_plaintext_on_disk(server: LiveServer, tmp_path: Path):
    exercise(server)
    leaks, scanned = scan(server.var_dir)
    if server.backend == "sqlite":
        assert {"fapiao.sqlite3", "fapiao.sqlite3-wal"} <= {Path(label).name for label in scanned}
        database = (server.var_dir / "fapiao.sqlite3").read_bytes()
        database += (server.var_dir / "fapiao.sqlite3-wal").read_bytes()
    else:
        assert server.database_url is not None
        database = pg_dump(server.database_url, tmp_path / "dump.sql")
        leaks += leaks_in("pg_dump", database)
    # The scan can see: the buyer's name and the masked phone are there, in the clear.
    assert "张三丰".encode() in database or json.dumps("张三丰")[1:-1].encode() in database
    assert b"138****5678" in database
    assert any(label.endswith("access.log") for label in scanned)
    assert any("!xl/worksheets" in label for label in scanned)
    metrics = scrape(server)
    assert b"fapiao_invoices_issued_total 2.0" in metrics
    leaks += leaks_in("/metrics", metrics, LOG_NEEDLES)
    server.stop()  # a checkpoint folds the WAL into the database file: scan again
    leaks += scan(server.var_dir)[0]
    lines = log_lines(server)
    for index, line in enumerate(lines):
        leaks += leaks_in(f"log line {index + 1}", line.encode(), LOG_NEEDLES)
    assert leaks == [], "\n".join(sorted(set(leaks)))
    documents = []
    for line in lines:
        try:
            documents.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line that is not JSON: {line[:300]}")
    served = [doc for doc in documents if doc["logger"] == "fapiao.request"]
    assert len(served) >= 40, len(served)
    for doc in served:
        assert {"request_id", "user_id", "route", "method", "status", "duration_ms"} <= doc.keys(), doc
        assert doc["request_id"]
    assert any(doc["user_id"] for doc in served) and any(doc["user_id"] is None for doc in served)
    assert {"/api/v1/cases", "/api/v1/invoices", "/api/v1/invoices/<number>", "unmatched"} <= {
        doc["route"] for doc in served
    }


def test_the_scan_finds_what_it_looks_for(tmp_path: Path):
    """The scanner itself: each encoding of each value is found, in a file and inside an XLSX."""
    (tmp_path / "utf16.txt").write_bytes(SECRETS["phone"].encode("utf-16-le"))
    (tmp_path / "gbk.txt").write_bytes(SECRETS["address"].encode("gbk"))
    (tmp_path / "json.txt").write_text(json.dumps({"bank": SECRETS["bank"]}))
    with zipfile.ZipFile(tmp_path / "book.xlsx", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", f"<t>{SECRETS['resident_id']}</t>")
    found = "\n".join(scan(tmp_path)[0])
    for name in ("phone", "address", "bank", "resident_id"):
        assert name in found
    assert BACKEND in {"sqlite", "postgres"} and PG_ADMIN_URL
