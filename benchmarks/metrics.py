"""What monitoring costs (issue 18): the metrics middleware per request, and a scrape at 1M invoices.

    .venv/bin/python benchmarks/metrics.py middleware [--calls 200000]
    .venv/bin/python benchmarks/metrics.py scrape [--backend sqlite|postgres|both] [--invoices 1000000]
                                                  [--cases 100000] [--scrapes 200]

``middleware``: ``RequestMetricsMiddleware`` around a view that returns at once, called in a loop
in this process, beside the same view without it (the baseline, same run).  Four ways: the
process's own registry or prometheus_client's multiprocess files (as under gunicorn), each with
the request's JSON log line written (``FAPIAO_LOG_LEVEL=INFO``, to /dev/null) and without it
(``WARNING``).  Each way runs in a fresh interpreter, because prometheus_client chooses between
memory and files when it is first imported.  Figures: microseconds added per request.

``scrape``: a real server (``tests/faults/server.LiveServer``: gunicorn, 2 workers) over a database
grown with SQL to ``--invoices`` invoices (``benchmarks/lookup.py``'s copies) and ``--cases``
recovery cases (9 in 14 closed, the rest spread over five open states — far more open cases than an
installation keeps — and a tenth of them past due), plus
verify runs and resolved incidents; then ``GET /metrics`` with the token ``--scrapes`` times, beside
``GET /healthz`` on the same server.  Reported: p50/p99 of the whole scrape over HTTP, and of the
readiness gauges' own database time (``fapiao_metrics_scrape_duration_seconds``), and the server's
CPU time per scrape (from /proc: on a shared machine it moves far less than the wall clock).
Target: well under 100 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(REPO_ROOT)]

from _load import percentile  # noqa: E402
from issue_http import INVOICE, db_connection, post_invoice, prepared_server, server_cpu_seconds  # noqa: E402
from lookup import TEMPLATES, multiply  # noqa: E402
from tests.faults.server import LiveServer  # noqa: E402

TOKEN = "benchmark-metrics-token-0c5a1e9b"  # noqa: S105  a throwaway server's
TARGET_MS = 100.0


# --- the middleware --------------------------------------------------------------------------------


def middleware_once(calls: int) -> dict[str, float]:
    """In this interpreter: µs per call with and without the middleware (median of 5 rounds)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fapiao.settings")
    import django

    django.setup()
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from fapiao.platform.middleware import RequestMetricsMiddleware

    response = HttpResponse(b"ok")
    match = resolve("/api/v1/invoices/26110000000000000001")

    def view(request: Any) -> HttpResponse:
        request.resolver_match = match
        return response

    request = RequestFactory().get("/api/v1/invoices/26110000000000000001")
    request.request_id = "0123456789abcdef0123456789abcdef"
    wrapped = RequestMetricsMiddleware(view)

    def per_call(handler: Any) -> float:  # CPU time: on a shared machine the wall clock waits for others
        started = time.process_time()
        for _ in range(calls):
            handler(request)
        return (time.process_time() - started) / calls * 1e6

    for handler in (view, wrapped):  # warm-up: the label children and the files exist after this
        per_call(handler)
    rounds = [(per_call(view), per_call(wrapped)) for _ in range(5)]
    return {
        "bare_us": statistics.median(bare for bare, _with in rounds),
        "with_us": statistics.median(with_ for _bare, with_ in rounds),
    }


def middleware(args: argparse.Namespace) -> None:
    print(f"RequestMetricsMiddleware, {args.calls:,} calls per round, median of 5 rounds, one process")
    print(f"{'registry':26s} {'log line':9s} {'bare µs':>8s} {'with µs':>8s} {'added µs':>9s}")
    for multiprocess in (False, True):
        for level in ("WARNING", "INFO"):
            with tempfile.TemporaryDirectory(prefix="fapiao-metrics-bench-") as var:
                env = {
                    **os.environ,
                    "FAPIAO_VAR_DIR": var,
                    "FAPIAO_LOG_LEVEL": level,
                    "DJANGO_SETTINGS_MODULE": "fapiao.settings",
                }
                env.pop("PROMETHEUS_MULTIPROC_DIR", None)
                if multiprocess:
                    Path(var, "metrics").mkdir()
                    env["PROMETHEUS_MULTIPROC_DIR"] = str(Path(var, "metrics"))
                done = subprocess.run(
                    [sys.executable, __file__, "_middleware_once", "--calls", str(args.calls)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,  # where the log lines go
                    text=True,
                    check=True,
                )
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            registry = "multiprocess files" if multiprocess else "in-process"
            line = "written" if level == "INFO" else "off"
            added = figures["with_us"] - figures["bare_us"]
            print(
                f"{registry:26s} {line:9s} {figures['bare_us']:8.2f} {figures['with_us']:8.2f} {added:9.2f}"
            )


# --- a scrape at 1M invoices ------------------------------------------------------------------------


def grow_cases(server: LiveServer, token: str, count: int) -> int:
    """One case through the API, then copies in SQL: 9 in 14 closed, the rest open, a tenth past due."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    claim = {
        "number": "26111000000000000001",
        "issued_on": "2026-11-02",
        "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
        "total_with_tax": "1060.00",
        "narrative": "上传中断，我的发票里查不到这张发票。",
    }
    connection.request(
        "POST",
        "/api/v1/cases",
        body=json.dumps(claim).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    answer = connection.getresponse()
    assert answer.status == 201, answer.read()[:300]
    answer.read()
    connection.close()
    postgres = bool(server.database_url)
    states = ["confirmed"] * 8 + ["withdrawn", "submitted", "in_review", "needs_info", "approved", "draft"]
    with db_connection(server) as db:
        columns = [c for c in _columns(db, "recovery_case", postgres) if c != "id"]
        if postgres:
            series = "generate_series(1, %s) AS s(i)"
            uid, mark = "gen_random_uuid()", "%s"
            state = "(ARRAY[" + ",".join(f"'{s}'" for s in states) + f"])[1 + mod(s.i, {len(states)})]"
            changed = "now() - CASE WHEN mod(s.i, 10) = 0 THEN interval '30 days' ELSE interval '1 hour' END"
            number = "lpad((30000000000000000000::numeric + s.i)::text, 20, '0')"
        else:
            series = (
                "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)"
                " SELECT i FROM s) AS s"
            )
            uid, mark = "lower(hex(randomblob(16)))", "?"
            cases = " ".join(f"WHEN {n} THEN '{s}'" for n, s in enumerate(states))
            state = f"CASE s.i % {len(states)} {cases} END"
            changed = "datetime('now', CASE WHEN s.i % 10 = 0 THEN '-30 days' ELSE '-1 hours' END)"
            number = "printf('3%019d', s.i)"
        select = {
            "uid": uid,
            "state": state,
            "state_changed_at": changed,
            "claimed_number": number,
            "acceptance_no": "''",
        }
        values = ", ".join(select.get(column, f"t.{column}") for column in columns)
        db.execute(
            f"INSERT INTO recovery_case ({', '.join(columns)}) SELECT {values} "  # noqa: S608  our own table
            f"FROM recovery_case t, {series} WHERE t.id = (SELECT MIN(id) FROM recovery_case) AND {mark} > 0",
            (count, 1),
        )
        # What autovacuum does within minutes of a bulk insert; without the visibility map, PostgreSQL
        # cannot count from the index alone.
        db.execute("ANALYZE" if not postgres else "VACUUM ANALYZE recovery_case")
        return int(db.execute("SELECT COUNT(*) FROM recovery_case").fetchone()[0])


def ten_years_of_runs(server: LiveServer, copies: int = 3650) -> int:
    """Nightly ledger and audit verify runs for ten years: copies of the runs just recorded."""
    postgres = bool(server.database_url)
    with db_connection(server) as db:
        for table in ("ledger_verifyrun", "audit_auditverifyrun"):
            columns = [c for c in _columns(db, table, postgres) if c != "id"]
            values = ", ".join(
                (
                    "t.finished_at - s.i * interval '1 day'"
                    if postgres
                    else "datetime(t.finished_at, '-' || s.i || ' days')"
                )
                if column == "finished_at"
                else f"t.{column}"
                for column in columns
            )
            series = (
                "generate_series(1, %s) AS s(i)"
                if postgres
                else "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)"
                " SELECT i FROM s) AS s"
            )
            db.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} "  # noqa: S608  our own table
                f"FROM {table} t, {series} WHERE t.id = (SELECT MAX(id) FROM {table})",
                (copies,),
            )
        return int(db.execute("SELECT COUNT(*) FROM ledger_verifyrun").fetchone()[0])


def _columns(db: Any, table: str, postgres: bool) -> list[str]:
    if postgres:
        rows = db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [row[0] for row in rows]
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()]


def timed(port: int, path: str, token: str, count: int) -> tuple[list[float], list[float]]:
    """Sequential GETs on one keep-alive connection: (milliseconds each, scrape_duration ms each)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, inner = [], []
    try:
        for _ in range(count):
            started = time.perf_counter()
            connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            body = response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
            for line in body.decode().splitlines():
                if line.startswith("fapiao_metrics_scrape_duration_seconds "):
                    inner.append(float(line.split()[1]) * 1000)
    finally:
        connection.close()
    return latencies, inner


def scrape_backend(backend: str, args: argparse.Namespace) -> str:
    with contextlib.ExitStack() as stack:
        server = prepared_server(
            stack, backend, args.pg_admin_url, "fapiao_metrics", env={"FAPIAO_METRICS_TOKEN": TOKEN}
        )
        if isinstance(server, str):
            return server
        token = server.token("clerk", "write")
        server.start()
        for n in range(TEMPLATES):
            body = json.loads(json.dumps(INVOICE))
            body["lines"][0]["unit_price"] = f"{1000 + n * 37}.00"
            post_invoice(server, token, body, f"metrics-template-{n}")
        cases = grow_cases(server, token, args.cases)
        server.stop()
        server.manage("ledger", "verify")  # before the copies: they have no ledger entries
        server.manage("audit", "verify")
        runs = ten_years_of_runs(server)
        invoices = multiply(server, args.invoices)
        server.start()
        timed(server.port, "/metrics", TOKEN, 20)  # warm-up
        cpu = server_cpu_seconds(server)
        scrape, inner = timed(server.port, "/metrics", TOKEN, args.scrapes)
        scrape_cpu = (server_cpu_seconds(server) - cpu) / args.scrapes * 1000
        cpu = server_cpu_seconds(server)
        health, _none = timed(server.port, "/healthz", TOKEN, args.scrapes)
        health_cpu = (server_cpu_seconds(server) - cpu) / args.scrapes * 1000
        server.stop()
    p99 = percentile(scrape, 99)
    met = "met" if p99 < TARGET_MS else "NOT met"
    return (
        f"{backend:8s} {invoices:,} invoices, {cases:,} cases, {runs:,} verify runs:"
        f" GET /metrics p50 {percentile(scrape, 50):.1f} ms"
        f" p99 {p99:.1f} ms (target < {TARGET_MS:g} ms: {met}); readiness gauges' database time"
        f" p50 {percentile(inner, 50):.2f} ms p99 {percentile(inner, 99):.2f} ms;"
        f" server CPU {scrape_cpu:.2f} ms per scrape;"
        f" baseline GET /healthz p50 {percentile(health, 50):.2f} ms p99 {percentile(health, 99):.2f} ms,"
        f" server CPU {health_cpu:.2f} ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


def scrape_all(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"GET /metrics at scale, {args.scrapes} sequential scrapes, one keep-alive client, 2 workers")
    for backend in backends:
        print(scrape_backend(backend, args), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("middleware", "_middleware_once"):
        one = sub.add_parser(name)
        one.add_argument("--calls", type=int, default=200_000)
    scrape = sub.add_parser("scrape")
    scrape.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    scrape.add_argument("--invoices", type=int, default=1_000_000)
    scrape.add_argument("--cases", type=int, default=100_000)
    scrape.add_argument("--scrapes", type=int, default=200)
    scrape.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if args.what == "_middleware_once":
        print(json.dumps(middleware_once(args.calls)))
    elif args.what == "middleware":
        middleware(args)
    else:
        scrape_all(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
