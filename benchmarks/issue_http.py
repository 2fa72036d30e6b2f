"""P2 (benchmarks/README.md): durable single-invoice POSTs over HTTP, 32 clients, against gunicorn.

For each backend (SQLite, PostgreSQL) one real server is started the way `make run` starts
it (migrate, demo, gunicorn gthread with group commit) on a throwaway var dir / database,
and three things are measured in the same run, on the same database:

* **write**: ``POST /api/v1/invoices`` (a unique ``Idempotency-Key`` each), answered 201 only
  after the durable commit: the figure P2 is about;
* **read baseline**: ``GET /api/v1/invoices/{number}`` with a read token, same load shape;
* **raw commit baseline**: one thread inserting one row per commit into a scratch table on the
  same database (SQLite WAL + synchronous=FULL; PostgreSQL synchronous_commit=on);
* **bulk** (``--bulk``, default on): ``POST /api/v1/invoice-batches`` with ``--batch-size``
  invoices each (500), sent by ``--bulk-clients`` clients at once (2): invoices per second.

In the same run the **ceiling app** (``benchmarks/ceiling.py``: Django + django-ninja, no
middleware, no apps, no database) is served with the same gunicorn shape and loaded the same
way; every figure is also printed as a ratio to its request rate (the ``×ceiling`` column).

The load comes from other processes (``--clients`` keep-alive connections spread over
``--processes`` processes); each figure is the median over ``--runs`` runs.  Beside each HTTP
figure the server's own CPU time per answered request is printed (all its processes, from
/proc): on a shared machine it moves far less than the rates do, so it is the figure to
compare two versions by.  See benchmarks/README.md for what the figures mean.

    .venv/bin/python benchmarks/issue_http.py --backend both --seconds 10 --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(REPO_ROOT)]

from _load import LoadResult, Workload, percentile, run_load  # noqa: E402
from tests.faults.server import (  # noqa: E402
    LiveServer,
    _group_members,
    free_port,
    postgres_reachable,
    throwaway_postgres,
)

TARGET_RATE = 1000.0
TARGET_P99_MS = 50.0
TARGET_WRITE_RATIO = {"sqlite": 0.35, "postgres": 0.25}  # issue 19: single POST ÷ ceiling
TARGET_READ_RATIO = 0.5
TARGET_BULK_RATIO = 1.5  # invoices/s of the bulk API ÷ the ceiling's requests/s
INVOICE: dict[str, Any] = {  # the body of tests/conftest.py VALID_INVOICE
    "kind": "ordinary",
    "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
    "lines": [
        {
            "name": "*信息技术服务*软件开发",
            "tax_code": "3040201000000000000",
            "unit": "项",
            "quantity": "1",
            "unit_price": "1000.00",
            "tax_rate": "0.06",
        }
    ],
}


@dataclass
class Figure:
    """One measurement over several runs: requests (or commits) per second and latencies."""

    label: str
    rates: list[float] = field(default_factory=list)
    p50s: list[float] = field(default_factory=list)  # ms
    p99s: list[float] = field(default_factory=list)  # ms
    cpus: list[float] = field(default_factory=list)  # server CPU ms per request
    notes: list[str] = field(default_factory=list)

    def add(self, rate: float, latencies_s: list[float], cpu_ms: float = float("nan")) -> None:
        self.rates.append(rate)
        self.p50s.append(percentile(latencies_s, 50) * 1000)
        self.p99s.append(percentile(latencies_s, 99) * 1000)
        self.cpus.append(cpu_ms)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus) if self.cpus else float("nan")

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")

    @property
    def p50(self) -> float:
        return statistics.median(self.p50s) if self.p50s else float("nan")

    @property
    def p99(self) -> float:
        return statistics.median(self.p99s) if self.p99s else float("nan")


@dataclass
class BackendReport:
    backend: str
    figures: dict[str, Figure] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def figure(self, key: str, label: str) -> Figure:
        return self.figures.setdefault(key, Figure(label))


# --- the database behind the server ----------------------------------------------------------


@contextlib.contextmanager
def db_connection(server: LiveServer) -> Iterator[Any]:
    if server.database_url:
        import psycopg

        with psycopg.connect(server.database_url, autocommit=True) as connection:
            yield connection
    else:
        connection = sqlite3.connect(server.sqlite_path, isolation_level=None, timeout=30)
        try:
            yield connection
        finally:
            connection.close()


def counts(server: LiveServer) -> tuple[int, int]:
    """(invoices, signed heads): heads are commits, so their ratio is the group-commit batch size."""
    with db_connection(server) as connection:
        invoices = connection.execute("SELECT COUNT(*) FROM invoices_invoice").fetchone()[0]
        heads = connection.execute("SELECT COUNT(*) FROM ledger_treehead").fetchone()[0]
    return int(invoices), int(heads)


def raw_commit_loop(server: LiveServer, seconds: float) -> tuple[float, list[float]]:
    """One row per durable commit, one connection, for ``seconds``: (commits/s, latencies)."""
    latencies: list[float] = []
    payload = "x" * 200
    if server.database_url:
        import psycopg

        with psycopg.connect(server.database_url, autocommit=True) as connection:
            connection.execute("SET synchronous_commit = on")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS bench_raw_commit (id BIGSERIAL PRIMARY KEY, payload TEXT)"
            )
            try:
                began = time.perf_counter()
                while (now := time.perf_counter()) - began < seconds:
                    connection.execute("INSERT INTO bench_raw_commit (payload) VALUES (%s)", (payload,))
                    latencies.append(time.perf_counter() - now)
                elapsed = time.perf_counter() - began
            finally:
                connection.execute("DROP TABLE bench_raw_commit")
    else:
        connection = sqlite3.connect(server.sqlite_path, isolation_level=None, timeout=30)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS bench_raw_commit (id INTEGER PRIMARY KEY, payload TEXT)"
            )
            try:
                began = time.perf_counter()
                while (now := time.perf_counter()) - began < seconds:
                    connection.execute("BEGIN IMMEDIATE")
                    connection.execute("INSERT INTO bench_raw_commit (payload) VALUES (?)", (payload,))
                    connection.execute("COMMIT")
                    latencies.append(time.perf_counter() - now)
                elapsed = time.perf_counter() - began
            finally:
                connection.execute("DROP TABLE bench_raw_commit")
        finally:
            connection.close()
    return len(latencies) / elapsed, latencies


def server_cpu_seconds(server: LiveServer) -> float:
    """CPU time (user + system) used so far by the server's processes (master and workers)."""
    if server.process is None:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _group_members(server.process.pid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured_load(
    server: LiveServer, workload: Workload, args: argparse.Namespace
) -> tuple[LoadResult, float, float]:
    """Run one load; also the CPU milliseconds per answered request (warm-up included) of the
    server's processes and of the load generator's (finished child processes)."""
    before, clients_before = server_cpu_seconds(server), children_cpu_seconds()
    result = run_load(
        server.port, workload, clients=args.clients, seconds=args.seconds,
        warmup=args.warmup, processes=args.processes,
    )  # fmt: skip
    used, clients_used = server_cpu_seconds(server) - before, children_cpu_seconds() - clients_before
    answered = sum(result.statuses.values()) * (args.seconds + args.warmup) / args.seconds
    if not answered:
        return result, float("nan"), float("nan")
    return result, used * 1000 / answered, clients_used * 1000 / answered


# --- the ceiling app ---------------------------------------------------------------------------


@contextlib.contextmanager
def ceiling_server(workers: int, threads: int) -> Iterator[int]:
    """``benchmarks/ceiling.py`` under gunicorn (gthread, ``workers`` × ``threads``): its port."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "--chdir", str(HERE), "--worker-class", "gthread",
                "--workers", str(workers), "--threads", str(threads), "--bind", f"127.0.0.1:{port}",
                "--no-control-socket", "--log-level", "warning", "ceiling:application",
            ],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not _answers(port, "/api/v1/invoices/probe"):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the ceiling app did not start:\n{log.read()[-2000:].decode()}")
                time.sleep(0.05)
            yield port
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _answers(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def measure_ceiling(port: int, args: argparse.Namespace) -> tuple[float, list[float]]:
    load = Workload("GET", "/api/v1/invoices/{item}", "none", items=[f"{i:08d}" for i in range(200)])
    result = run_load(
        port, load, clients=args.clients, seconds=args.seconds, warmup=args.warmup, processes=args.processes
    )
    return result.rate, result.latencies


# --- talking to the server ---------------------------------------------------------------------


def post_invoice(server: LiveServer, token: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/api/v1/invoices",
            body=json.dumps(body, ensure_ascii=False).encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            },
        )
        response = connection.getresponse()
        payload = json.loads(response.read())
    finally:
        connection.close()
    if response.status != 201:
        raise RuntimeError(f"seeding POST answered {response.status}: {payload}")
    return payload


def seed_numbers(server: LiveServer, token: str, count: int) -> list[str]:
    return [post_invoice(server, token, INVOICE, f"seed-{i}")["number"] for i in range(count)]


def describe(result: LoadResult) -> str:
    other = {status: n for status, n in result.statuses.items()} if result.statuses else {}
    return f"statuses {other}, connection errors {result.errors}"


# --- one backend -------------------------------------------------------------------------------


def prepared_server(
    stack: contextlib.ExitStack, backend: str, pg_admin_url: str, name: str, **options: Any
) -> LiveServer | str:
    """A server for ``backend`` over a throwaway var dir (and PostgreSQL database), migrated and
    with the demo data, not yet started; ``stack`` stops it and removes both.  A string says why
    there is none (PostgreSQL unreachable)."""
    database_url = None
    if backend == "postgres":
        reason = postgres_reachable(pg_admin_url)
        if reason is not None:
            return f"postgres: skipped, PostgreSQL is unreachable ({reason})"
        database_url = stack.enter_context(throwaway_postgres(name, pg_admin_url))
    var_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{name}-{backend}-")))
    server = LiveServer(var_dir / "var", database_url=database_url, **options)
    stack.callback(server.stop)
    print(f"[{backend}] preparing {server.var_dir} …", file=sys.stderr)
    server.prepare()
    return server


def measure_backend(backend: str, args: argparse.Namespace) -> BackendReport | str:
    report = BackendReport(backend)
    with contextlib.ExitStack() as stack:
        server = prepared_server(
            stack,
            backend,
            args.pg_admin_url,
            "fapiao_bench",
            workers=args.workers,
            threads=args.threads,
            env=dict(item.split("=", 1) for item in args.server_env),
        )
        if isinstance(server, str):
            return server
        write_token = server.token("clerk", "write")
        read_token = server.token("clerk", "read")
        ceiling_port = stack.enter_context(ceiling_server(args.workers, args.threads))
        server.start()
        numbers = seed_numbers(server, write_token, args.seed_invoices)

        ceiling = report.figure("ceiling", "ceiling app: GET /api/v1/invoices/{number}")
        write = report.figure("write", "POST /api/v1/invoices (durable, 201 after commit)")
        read = report.figure("read", "GET /api/v1/invoices/{number} (read baseline)")
        raw = report.figure("raw", "raw INSERT, one row per commit, 1 connection")
        write_load = Workload(
            "POST", "/api/v1/invoices", write_token, body=INVOICE, idempotency=True, expect=201
        )
        read_load = Workload("GET", "/api/v1/invoices/{item}", read_token, items=numbers, expect=200)
        if args.bulk:
            bulk = report.figure("bulk", f"POST /api/v1/invoice-batches ×{args.batch_size}, invoices/s")
            bulk_load = Workload(
                "POST", "/api/v1/invoice-batches", write_token, body=INVOICE, idempotency=True,
                expect=200, batch=args.batch_size,
            )  # fmt: skip
        for run in range(1, args.runs + 1):
            rate, latencies = measure_ceiling(ceiling_port, args)
            ceiling.add(rate, latencies)
            print(f"[{backend}] run {run} ceiling {rate:8.1f}/s", file=sys.stderr)

            invoices_before, heads_before = counts(server)
            result, cpu, client_cpu = measured_load(server, write_load, args)
            invoices_after, heads_after = counts(server)
            write.add(result.rate, result.latencies, cpu)
            batch = (invoices_after - invoices_before) / max(1, heads_after - heads_before)
            write.notes.append(
                f"run {run}: {describe(result)}; {batch:.1f} invoices per group commit; "
                f"the load generator used {client_cpu:.2f} ms CPU per request"
            )
            print(f"[{backend}] run {run} write {result.rate:8.1f}/s  {describe(result)}", file=sys.stderr)

            result, cpu, _client_cpu = measured_load(server, read_load, args)
            read.add(result.rate, result.latencies, cpu)
            read.notes.append(f"run {run}: {describe(result)}")
            print(f"[{backend}] run {run} read  {result.rate:8.1f}/s  {describe(result)}", file=sys.stderr)

            if args.bulk:
                invoices_before, heads_before = counts(server)
                bulk_args = argparse.Namespace(
                    **{
                        **vars(args),
                        "clients": args.bulk_clients,
                        "processes": args.bulk_clients,
                        "seconds": args.bulk_seconds,
                    }
                )
                result, cpu, _client_cpu = measured_load(server, bulk_load, bulk_args)
                invoices_after, heads_after = counts(server)
                cpu_per_invoice = cpu / args.batch_size
                bulk.add(result.rate * args.batch_size, result.latencies, cpu_per_invoice)
                bulk.notes.append(
                    f"run {run}: {describe(result)}; {result.rate:.2f} batches/s; "
                    f"{invoices_after - invoices_before} invoices stored under "
                    f"{heads_after - heads_before} signed heads"
                )
                print(
                    f"[{backend}] run {run} bulk  {result.rate * args.batch_size:8.1f} invoices/s  "
                    f"{describe(result)}",
                    file=sys.stderr,
                )

            rate, latencies = raw_commit_loop(server, args.seconds)
            raw.add(rate, latencies)
            print(f"[{backend}] run {run} raw   {rate:8.1f}/s", file=sys.stderr)

        if args.ledger in {"off", "both"}:
            server.stop()
            measure_without_ledger(report, server, args)
        server.stop()
        report.lines.extend(server_warnings(server))
    return report


def server_warnings(server: LiveServer) -> list[str]:
    """Warnings and errors the server logged (a 503 under load shows up here with its reason)."""
    found: dict[str, int] = {}
    for line in server.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and ('"WARNING"' in line or '"ERROR"' in line):
            try:
                message = json.loads(line).get("message", line)
            except ValueError:
                message = line
            found[message[:140]] = found.get(message[:140], 0) + 1
    return [f"server log: {count} × {message}" for message, count in found.items()]


def measure_without_ledger(report: BackendReport, server: LiveServer, args: argparse.Namespace) -> None:
    """The same write load with FAPIAO_LEDGER_ENABLED=0, if the server honours it."""
    server.extra_env["FAPIAO_LEDGER_ENABLED"] = "0"
    try:
        server.start()
        token = server.token("clerk", "write")
        probe = post_invoice(server, token, INVOICE, "ledger-off-probe")
        if probe.get("receipt"):
            report.lines.append(
                "--ledger off: unavailable: the server ignores FAPIAO_LEDGER_ENABLED=0 "
                "(an invoice issued with it still got a ledger receipt)"
            )
            return
        figure = report.figure("write-noledger", "POST /api/v1/invoices, FAPIAO_LEDGER_ENABLED=0")
        load = Workload("POST", "/api/v1/invoices", token, body=INVOICE, idempotency=True, expect=201)
        for run in range(1, args.runs + 1):
            result, cpu, _client_cpu = measured_load(server, load, args)
            figure.add(result.rate, result.latencies, cpu)
            figure.notes.append(f"run {run}: {describe(result)}")
            print(f"[{report.backend}] run {run} write, no ledger {result.rate:8.1f}/s", file=sys.stderr)
    finally:
        server.stop()
        server.extra_env.pop("FAPIAO_LEDGER_ENABLED", None)


# --- report ------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def source_revision() -> str:
    """The commit measured, and whether the working tree differs from it."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False
            )
        except OSError:
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"commit {commit}" + (" plus uncommitted changes" if dirty else "")


def targets(report: BackendReport) -> str:
    """Issue 19's targets, as ratios to the ceiling of the same run."""
    figures = report.figures
    top = figures["ceiling"].rate
    wanted = [("write", TARGET_WRITE_RATIO[report.backend]), ("read", TARGET_READ_RATIO)]
    if "bulk" in figures:
        wanted.append(("bulk", TARGET_BULK_RATIO))
    said = []
    for key, target in wanted:
        got = figures[key].rate / top if top else float("nan")
        said.append(f"{key} {got:.2f}× (target ≥ {target:g}×: {'MET' if got >= target else 'NOT MET'})")
    return "targets: " + "; ".join(said)


def render(reports: list[BackendReport | str], args: argparse.Namespace) -> str:
    processes = args.processes or max(1, min(args.clients, 4))
    revision = args.revision
    out = [
        "P2: durable single-invoice POST over HTTP (benchmarks/README.md)",
        f"machine: {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; {revision}",
        f"1-minute load average before the run: {args.load_before:.1f} (other work skews the figures)",
        f"server: gunicorn gthread, {args.workers} workers × {args.threads} threads, FAPIAO_WRITE_BATCHING=1"
        + "".join(f", {item}" for item in args.server_env),
        f"load: {args.clients} closed-loop keep-alive clients in {processes} processes, "
        f"{args.seconds:g} s measured after {args.warmup:g} s warm-up, median of {args.runs} run(s)",
        "CPU ms: CPU time of all the server's processes per answered request (not the clients'); "
        "bulk: per invoice",
        f"bulk: batches of {args.batch_size} sent by {args.bulk_clients} clients at once; its rate is "
        "invoices/s, its latencies per batch"
        if args.bulk
        else "bulk: not measured (--no-bulk)",
        "×ceiling: the rate divided by the ceiling app's requests/s in the same run",
        "",
        f"{'backend':<9} {'measurement':<52} {'req/s':>9} {'×ceiling':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms':>7}",
        "-" * 107,
    ]
    for report in reports:
        if isinstance(report, str):
            out.append(report)
            continue
        top = report.figures["ceiling"].rate
        for figure in report.figures.values():
            out.append(
                f"{report.backend:<9} {figure.label:<52} "
                f"{figure.rate:9.1f} {ratio(figure.rate, top):>8} {figure.p50:8.1f} {figure.p99:8.1f} "
                + (f"{figure.cpu:7.2f}" if figure.cpu == figure.cpu else f"{'-':>7}")  # NaN: not measured
            )
        figures = report.figures
        write, read, raw = figures["write"], figures["read"], figures["raw"]
        out.append(
            f"{report.backend:<9} ratios: write/read {ratio(write.rate, read.rate)}, "
            f"write/raw-commit {ratio(write.rate, raw.rate)}"
            + (
                f", no-ledger/ledger {ratio(figures['write-noledger'].rate, write.rate)}"
                if "write-noledger" in figures
                else ""
            )
        )
        if report.backend == "sqlite":
            met = write.rate >= TARGET_RATE and write.p99 <= TARGET_P99_MS
            out.append(
                f"{report.backend:<9} target ≥ {TARGET_RATE:,.0f}/s and p99 ≤ {TARGET_P99_MS:g} ms: "
                f"{'MET' if met else 'NOT MET'} ({write.rate:,.0f}/s, p99 {write.p99:.0f} ms)"
            )
        out.append(f"{report.backend:<9} " + targets(report))
        for note in write.notes:
            out.append(f"{'':<9} write {note}")
        for note in figures["bulk"].notes if "bulk" in figures else []:
            out.append(f"{'':<9} bulk {note}")
        out.extend(f"{'':<9} {line}" for line in report.lines)
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per load (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each load")
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive clients (default 32)")
    parser.add_argument("--processes", type=int, default=0, help="client processes (default min(clients, 4))")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads per worker (default 16)")
    parser.add_argument("--runs", type=int, default=1, help="repeat each measurement; report the median")
    parser.add_argument(
        "--ledger", choices=["on", "off", "both"], default="on",
        help="off/both: also measure issuance with FAPIAO_LEDGER_ENABLED=0, if the server supports it",
    )  # fmt: skip
    parser.add_argument(
        "--bulk",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure POST /api/v1/invoice-batches (default on)",
    )
    parser.add_argument("--batch-size", type=int, default=500, help="invoices per bulk request (500)")
    parser.add_argument(
        "--bulk-seconds", type=float, default=30.0,
        help="measured seconds of the bulk load (30: a batch takes seconds; a short window counts few)",
    )  # fmt: skip
    parser.add_argument("--bulk-clients", type=int, default=2, help="bulk requests sent at once (2)")
    parser.add_argument("--seed-invoices", type=int, default=200, help="invoices issued first, for the reads")
    parser.add_argument(
        "--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="where throwaway PostgreSQL databases are created and dropped",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE",
        help="an environment variable for the server (repeatable), e.g. FAPIAO_WRITE_BATCH_MAX=32",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.ledger == "off":
        args.ledger = "both"  # the ledger-on figures are the baseline the off figures compare to

    args.load_before = os.getloadavg()[0]
    args.revision = source_revision()  # before the run: the code measured, not what was committed since
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    reports = [measure_backend(backend, args) for backend in backends]
    print(render(reports, args))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    report.backend: {
                        key: {
                            "label": f.label,
                            "rates": f.rates,
                            "p50_ms": f.p50s,
                            "p99_ms": f.p99s,
                            "server_cpu_ms": f.cpus,
                        }
                        for key, f in report.figures.items()
                    }
                    for report in reports
                    if not isinstance(report, str)
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
