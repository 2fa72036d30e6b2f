"""Import benchmark (DESIGN.md §10 P1): `fapiao import` through the full path vs a raw executemany.

    .venv/bin/python benchmarks/import.py [--records 20000] [--backend sqlite|postgres|both] [--batch 500]

In a scratch var dir (SQLite) or a throwaway PostgreSQL database on 127.0.0.1:5432: migrate, load
the demo, write a CSV export of ``--records`` invoices (one line each) with a column mapping, then
in the same process:

* ours: read the file, plan (validate, duplicates), commit in batches — each invoice with its
  lines, its ``import`` ledger entry, its Merkle nodes, its signed heads and its imported-record row —
  and sign the manifest (``fapiao.invoices.importing.commit_import``, what ``fapiao import --commit``
  runs);
* the baseline: every row the import wrote to ``invoices_invoice``, ``invoices_invoiceline``,
  ``ledger_logentry`` and ``ledger_lognode``, already serialised, inserted again with one
  ``executemany`` per table into empty copies of those tables, in one transaction.

Prints both times, records/s and the ratio (baseline time ÷ ours; target ≥ 0.25 on SQLite).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TABLES = ("invoices_invoice", "invoices_invoiceline", "ledger_logentry", "ledger_lognode")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    return parser.parse_args()


def measure(records: int, batch: int) -> dict[str, float]:
    from django.core.management import call_command
    from django.db import connection, transaction
    from tests.integration.import_helpers import COLUMNS, MERCHANT, csv_bytes, csv_rows

    from fapiao.accounts.models import Merchant, User
    from fapiao.core.choices import Direction
    from fapiao.formats.mapping import ColumnMapping
    from fapiao.invoices.import_plan import SourceFile
    from fapiao.invoices.importing import ImportOptions, commit_import

    call_command("migrate", verbosity=0)
    call_command("demo", verbosity=0)
    data = csv_bytes(csv_rows(records))
    mapping, _problems = ColumnMapping.from_dict({"name": "bench", "columns": COLUMNS})
    user = User.objects.get(username="madmin")
    merchant = Merchant.objects.get(uscc=MERCHANT)
    options = ImportOptions(merchant, Direction.OUT, mapping, batch)

    started = time.perf_counter()
    run = commit_import(user=user, options=options, sources=[SourceFile.of("bench.csv", "bench.csv", data)])
    ours = time.perf_counter() - started
    assert run.counts["accepted"] == records, run.counts

    quote = connection.ops.quote_name
    rows: dict[str, list[tuple[object, ...]]] = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {quote(table)}")  # noqa: S608  our table names
            rows[table] = [tuple(row) for row in cursor.fetchall()]
            copy = f"CREATE TABLE {quote('copy_' + table)} AS SELECT * FROM {quote(table)} WHERE 1 = 0"  # noqa: S608
            cursor.execute(copy)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for table, values in rows.items():
            if values:
                marks = ", ".join(["%s"] * len(values[0]))
                cursor.executemany(f"INSERT INTO {quote('copy_' + table)} VALUES ({marks})", values)  # noqa: S608
    baseline = time.perf_counter() - started
    return {
        "records": records,
        "rows": sum(len(v) for v in rows.values()),
        "ours_s": ours,
        "baseline_s": baseline,
        "ratio": baseline / ours,
    }


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, float] | None:
    scratch = Path(tempfile.mkdtemp(prefix=f"fapiao-import-bench-{backend}-"))
    os.environ["FAPIAO_VAR_DIR"] = str(scratch)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fapiao.settings")
    if backend == "postgres":
        from tests.faults.server import postgres_reachable, throwaway_postgres

        if postgres_reachable() is not None:
            print("PostgreSQL unreachable: skipped")
            return None
        with throwaway_postgres("fapiao_import_bench") as url:
            os.environ["FAPIAO_DATABASE_URL"] = url
            return _in_django(args)
    return _in_django(args)


def _in_django(args: argparse.Namespace) -> dict[str, float]:
    import django

    django.setup()
    return measure(args.records, args.batch)


def main() -> None:
    args = parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if len(backends) > 1:  # Django is set up once per process: run each backend in its own
        import subprocess

        for backend in backends:
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--backend",
                    backend,
                    "--records",
                    str(args.records),
                    "--batch",
                    str(args.batch),
                ],
                check=False,
            )
        return
    result = run_backend(backends[0], args)
    if result is None:
        return
    print(f"backend {backends[0]}: {result['records']:,} records, {result['rows']:,} rows written")
    for label, key in (
        ("fapiao import (full path) ", "ours_s"),
        ("raw executemany (baseline)", "baseline_s"),
    ):
        seconds = result[key]
        print(f"  {label} {seconds:8.2f} s  {result['records'] / seconds:10,.0f} records/s")
    print(f"  ratio baseline/ours        {result['ratio']:8.3f}   (target ≥ 0.25 on SQLite)")


if __name__ == "__main__":
    main()
