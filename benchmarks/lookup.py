"""P3 (benchmarks/README.md): look up one invoice by number among 1M, masked fields, over HTTP.

    .venv/bin/python benchmarks/lookup.py [--backend sqlite|postgres|both] [--invoices 1000000]
                                          [--requests 3000] [--runs 3]

For each backend a real server is started the way `make run` starts it
(``tests/faults/server.LiveServer``: migrate, demo, gunicorn) over a throwaway var dir or a
throwaway PostgreSQL database.  A few invoices are issued through the API; the server is
stopped and those rows are multiplied with SQL to ``--invoices`` invoices of the demo merchant
(copies under new numbers and uids, each with its lines).  A copy's ciphertexts stay bound to
its template's uid, so copies cannot be revealed: P3 is the masked lookup, which decrypts
nothing.  Then, with the server running again, one keep-alive client sends sequential requests:

* ``GET /api/v1/invoices/{number}`` for numbers drawn at random from all of them (what P3 is
  about: token check, tenant-scoped selector, lines, masked representation);
* ``GET /healthz``: the same server, HTTP stack and middleware without the database, the
  baseline measured in the same run.

p50 and p99 of each, median of ``--runs``.  Target: lookup p99 ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(REPO_ROOT)]

from _load import percentile  # noqa: E402
from issue_http import INVOICE, db_connection, post_invoice, prepared_server  # noqa: E402
from tests.faults.server import LiveServer  # noqa: E402

TARGET_P99_MS = 5.0
SERIAL_BASE = 500_000_000_000_000  # copies' serials: far from any segment the demo hands out
TEMPLATES = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=3000, help="lookups per run (and as many baselines)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    return parser.parse_args()


# --- building the table --------------------------------------------------------------------------


def _columns(connection: Any, table: str, postgres: bool) -> list[str]:
    if postgres:
        rows = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    else:
        rows = [(row[1],) for row in connection.execute(f"PRAGMA table_info({table})").fetchall()]
    return [row[0] for row in rows]


def multiply(server: LiveServer, count: int) -> int:
    """Copy the issued invoices (and their lines) until the merchant has ``count``; return how many exist."""
    postgres = bool(server.database_url)
    with db_connection(server) as connection:
        templates = [
            row[0] for row in connection.execute("SELECT id FROM invoices_invoice ORDER BY id").fetchall()
        ]
        have = len(templates)
        per_template = max(0, (count - have) // len(templates))
        invoice_columns = [c for c in _columns(connection, "invoices_invoice", postgres) if c != "id"]
        line_columns = [c for c in _columns(connection, "invoices_invoiceline", postgres) if c != "id"]
        if postgres:
            numbers = "generate_series(1, %s) AS s(i)"
            new_number = "substr(t.number, 1, 5) || lpad(({base} + {k} * %s + s.i)::text, 15, '0')"
            new_uid = "gen_random_uuid()"
            mark = "%s"
        else:
            numbers = (
                "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)"
                " SELECT i FROM s) AS s"
            )
            new_number = "substr(t.number, 1, 5) || printf('%015d', {base} + {k} * ? + s.i)"
            new_uid = "lower(hex(randomblob(16)))"
            mark = "?"
        started = time.perf_counter()
        for k, template in enumerate(templates):
            top = connection.execute("SELECT MAX(id) FROM invoices_invoice").fetchone()[0]
            select = {
                "number": new_number.format(base=SERIAL_BASE, k=k),
                "uid": new_uid,
                "ledger_seq": "NULL",
            }
            columns = ", ".join(invoice_columns)
            values = ", ".join(select.get(column, f"t.{column}") for column in invoice_columns)
            sql = (
                f"INSERT INTO invoices_invoice ({columns}) SELECT {values} "  # noqa: S608  our own table
                f"FROM invoices_invoice t, {numbers} WHERE t.id = {mark}"
            )
            connection.execute(sql, (per_template, per_template, template))
            line_values = ", ".join(
                "i.id" if column == "invoice_id" else f"l.{column}" for column in line_columns
            )
            connection.execute(  # the rows just made are this template's copies
                f"INSERT INTO invoices_invoiceline ({', '.join(line_columns)}) SELECT {line_values} "  # noqa: S608
                f"FROM invoices_invoice i JOIN invoices_invoiceline l ON l.invoice_id = {mark}"
                f" WHERE i.id > {mark}",
                (template, top),
            )
            print(f"  copies of invoice {k + 1}/{len(templates)} stored", file=sys.stderr)
        total = connection.execute("SELECT COUNT(*) FROM invoices_invoice").fetchone()[0]
        if not postgres:
            connection.execute("ANALYZE")
        else:
            connection.execute("ANALYZE invoices_invoice")
            connection.execute("ANALYZE invoices_invoiceline")
        print(f"  {total:,} invoices in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return int(total)


def sample_numbers(server: LiveServer, count: int, rng: random.Random) -> list[str]:
    with db_connection(server) as connection:
        top = connection.execute("SELECT MAX(id) FROM invoices_invoice").fetchone()[0]
        mark = "%s" if server.database_url else "?"
        picked = []
        while len(picked) < count:
            ids = [rng.randint(1, top) for _ in range(min(500, count - len(picked)))]
            marks = ", ".join([mark] * len(ids))
            rows = connection.execute(
                f"SELECT number FROM invoices_invoice WHERE id IN ({marks})",  # noqa: S608
                ids,
            ).fetchall()
            picked.extend(row[0] for row in rows)
    rng.shuffle(picked)
    return picked[:count]


# --- measuring -----------------------------------------------------------------------------------


def timed_gets(port: int, paths: list[str], token: str) -> list[float]:
    """Sequential GETs on one keep-alive connection; milliseconds each (status checked)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    latencies = []
    try:
        for path in paths:
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}: {body[:200]!r}")
    finally:
        connection.close()
    return latencies


def measure(backend: str, args: argparse.Namespace) -> dict[str, Any] | str:
    rng = random.Random(20261128)
    with contextlib.ExitStack() as stack:
        server = prepared_server(stack, backend, args.pg_admin_url, "fapiao_lookup")
        if isinstance(server, str):
            return server
        write_token, read_token = server.token("clerk", "write"), server.token("clerk", "read")
        server.start()
        for n in range(TEMPLATES):
            body = json.loads(json.dumps(INVOICE))
            body["lines"][0]["unit_price"] = f"{1000 + n * 37}.00"
            post_invoice(server, write_token, body, f"lookup-template-{n}")
        server.stop()
        total = multiply(server, args.invoices)
        server.start()
        lookups, baselines = [], []
        for run in range(args.runs):
            numbers = sample_numbers(server, args.requests, rng)
            timed_gets(server.port, [f"/api/v1/invoices/{n}" for n in numbers[:200]], read_token)  # warm-up
            lookup = timed_gets(server.port, [f"/api/v1/invoices/{n}" for n in numbers], read_token)
            baseline = timed_gets(server.port, ["/healthz"] * args.requests, read_token)
            lookups.append(lookup)
            baselines.append(baseline)
            print(
                f"[{backend}] run {run + 1}: lookup p50 {percentile(lookup, 50):.2f} ms"
                f" p99 {percentile(lookup, 99):.2f} ms; /healthz p50 {percentile(baseline, 50):.2f} ms"
                f" p99 {percentile(baseline, 99):.2f} ms",
                file=sys.stderr,
            )
        server.stop()
    return {
        "backend": backend,
        "invoices": total,
        "lookup_p50": statistics.median(percentile(run, 50) for run in lookups),
        "lookup_p99": statistics.median(percentile(run, 99) for run in lookups),
        "base_p50": statistics.median(percentile(run, 50) for run in baselines),
        "base_p99": statistics.median(percentile(run, 99) for run in baselines),
    }


def main() -> int:
    args = parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"P3 lookup by number, {args.requests:,} sequential requests per run, median of {args.runs} runs")
    for backend in backends:
        result = measure(backend, args)
        if isinstance(result, str):
            print(result)
            continue
        met = "met" if result["lookup_p99"] <= TARGET_P99_MS else "NOT met"
        print(
            f"{backend:8s} {result['invoices']:,} invoices: GET /api/v1/invoices/{{number}}"
            f" p50 {result['lookup_p50']:.2f} ms,"
            f" p99 {result['lookup_p99']:.2f} ms (target p99 <= {TARGET_P99_MS:g} ms: {met});"
            f" baseline GET /healthz p50 {result['base_p50']:.2f} ms, p99 {result['base_p99']:.2f} ms;"
            f" lookup/baseline p50 {result['lookup_p50'] / result['base_p50']:.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
