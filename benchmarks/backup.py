"""Backup benchmark (DESIGN.md §10 P6): `fapiao backup create` + `backup verify` at 1M invoices, SQLite.

    .venv/bin/python benchmarks/backup.py [--invoices 1000000] [--dir DIR --keep] [--reuse]

Builds one merchant's 1M invoices in a scratch SQLite database the way ``benchmarks/ledger.py``
builds its log (bulk inserts that store exactly what the services would: canonical entry bytes
made by ``invoice_document`` and ``entry_bytes``, leaf hashes, every Merkle node, a signed head
every 1,000 entries, the witness file) — and, unlike it, the invoice rows and lines those
entries describe and their number registrations, so ``fapiao ledger verify`` of the data is
clean, rows included.  Then, in the same run, as separate processes the way an operator runs
them:

* ours: ``fapiao backup create`` then ``fapiao backup verify ID`` (encrypted copy, manifest,
  read-back; scratch restore, ``migrate``, ``ledger verify``, ``audit verify``, the manifest
  comparison).  Target: ≤ 60 s together (P6).
* the baseline: ``sqlite3 DB ".backup COPY"`` (SQLite's own online backup) plus ``fapiao ledger
  verify`` of the copy — what "a backup, checked" costs at the least.  Target: ours ≤ 1.5 × it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ledger as ledger_bench

USCC = ledger_bench.USCC
FIRST_SERIAL = 100_000_000_000_001  # the demo merchant's first segment (fapiao.accounts.demo)
BATCH = 20_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--dir", help="scratch directory (default: a new temporary one, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--reuse", action="store_true", help="measure the data already in --dir")
    return parser.parse_args()


def build(count: int, rng: random.Random) -> None:
    """Entries, nodes, heads and witness (ledger.store_log), then the rows they describe."""
    from fapiao.core.canonical import entry_bytes
    from fapiao.core.choices import Colour, Direction, InvoiceKind
    from fapiao.core.identifiers import validate_tax_id
    from fapiao.core.invoice import Buyer, Line
    from fapiao.core.invoice_document import invoice_document
    from fapiao.core.tax import rate_by_code

    rate = rate_by_code("0.06")
    tax_id = validate_tax_id("91110000MA01XKQ2TQ")
    buyers = [Buyer(name=name, tax_id=tax_id) for name in ("北京买方贸易有限公司", "上海某某科技有限公司")]
    start = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    bodies: list[bytes] = []
    rows: list[tuple[int, str, date, datetime, Buyer, tuple[Line, ...]]] = []
    numbers: list[str] = []
    for seq in range(count):
        moment = start + timedelta(seconds=seq * 3)
        issued_on = (moment + timedelta(hours=8)).date()
        lines = []
        for no in range(1, rng.choice((1, 1, 1, 2, 2, 3)) + 1):
            cents = rng.randrange(100, 5_000_000)
            lines.append(
                Line(
                    no=no,
                    name="*信息技术服务*软件开发",
                    tax_code="3040201000000000000",
                    spec="",
                    unit="项",
                    quantity=Decimal(1),
                    unit_price=Decimal(cents) / 100,
                    rate=rate,
                    amount=cents,
                    tax=cents * 6 // 100,
                )
            )
        number = f"26110{FIRST_SERIAL + seq:015d}"
        buyer = buyers[seq % 2]
        document = invoice_document(
            number=number,
            kind=InvoiceKind.ORDINARY,
            colour=Colour.BLUE,
            direction=Direction.OUT,
            issued_on=issued_on,
            seller_name="北京示例科技有限公司",
            seller_tax_id=USCC,
            buyer=buyer,
            sealed=None,
            lines=lines,
            original_number=None,
            remark="",
        )
        bodies.append(entry_bytes(log=USCC, seq=seq, kind="issue", at=moment, invoice=document, ref=None))
        rows.append((seq, number, issued_on, moment, buyer, tuple(lines)))
        numbers.append(number)
    ledger_bench.store_log(bodies, ["issue"] * count, numbers)
    del bodies
    store_rows(rows)


def store_rows(rows: list[tuple[int, str, date, datetime, Any, tuple[Any, ...]]]) -> None:
    import uuid

    from django.db import connection, transaction

    from fapiao.accounts.models import Merchant, NumberSegment, User
    from fapiao.core.money import format_decimal
    from fapiao.invoices.models import Invoice, InvoiceLine, OutgoingNumber

    merchant = Merchant.objects.get(uscc=USCC)
    creator = User.objects.get(username="clerk")
    ops = connection.ops

    def sql(model: Any, values: dict[str, Any]) -> tuple[str, list[str]]:
        names = list(values)
        columns = ", ".join(ops.quote_name(model._meta.get_field(n).column) for n in names)
        marks = ", ".join(["%s"] * len(names))
        return f"INSERT INTO {ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({marks})", names  # noqa: S608

    invoices, lines, registrations = [], [], []
    invoice_sql = line_sql = number_sql = ""
    with transaction.atomic(), connection.cursor() as cursor:
        for pk, (seq, number, issued_on, moment, buyer, items) in enumerate(rows, 1):
            amount = sum(line.amount for line in items)
            tax = sum(line.tax for line in items)
            row = {
                "id": pk,
                "merchant": merchant.pk,
                "uid": uuid.UUID(int=pk).hex,
                "number": number,
                "kind": "ordinary",
                "colour": "blue",
                "direction": "out",
                "state": "normal",
                "origin": "issued",
                "origin_ref": "",
                "issued_on": issued_on.isoformat(),
                "issued_at": ops.adapt_datetimefield_value(moment),
                "seller_name": "北京示例科技有限公司",
                "seller_tax_id": USCC,
                "buyer_name": buyer.name,
                "buyer_tax_id": buyer.tax_id.value,
                "buyer_tax_id_kind": buyer.tax_id.kind.value,
                "buyer_tax_id_index": "",
                "buyer_masked": "{}",
                "buyer_sealed": "",
                "total_amount": amount,
                "total_tax": tax,
                "total_with_tax": amount + tax,
                "confirmation_no": "",
                "remark": "",
                "created_by": creator.pk,
                "ledger_seq": seq,
                "version": 1,
            }
            invoice_sql, invoice_names = sql(Invoice, row)
            invoices.append([row[n] for n in invoice_names])
            for line in items:
                values = {
                    "merchant": merchant.pk,
                    "invoice": pk,
                    "no": line.no,
                    "name": line.name,
                    "tax_code": line.tax_code,
                    "spec": line.spec,
                    "unit": line.unit,
                    "quantity": format_decimal(line.quantity),
                    "unit_price": format_decimal(line.unit_price),
                    "tax_rate": line.rate.code,
                    "amount": line.amount,
                    "tax": line.tax,
                }
                line_sql, line_names = sql(InvoiceLine, values)
                lines.append([values[n] for n in line_names])
            registration = {"number": number, "merchant": merchant.pk, "registered_at": row["issued_at"]}
            number_sql, number_names = sql(OutgoingNumber, registration)
            registrations.append([registration[n] for n in number_names])
            if len(invoices) >= BATCH:
                cursor.executemany(invoice_sql, invoices)
                cursor.executemany(line_sql, lines)
                cursor.executemany(number_sql, registrations)
                invoices, lines, registrations = [], [], []
        if invoices:
            cursor.executemany(invoice_sql, invoices)
            cursor.executemany(line_sql, lines)
            cursor.executemany(number_sql, registrations)
        NumberSegment.objects.filter(merchant=merchant, year=26, province="11", channel=0).update(
            next_serial=FIRST_SERIAL + len(rows)
        )


def run(env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return elapsed, done.stdout


def main() -> int:
    args = parse_args()
    scratch = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="fapiao-bench-backup-"))
    scratch.mkdir(parents=True, exist_ok=True)
    database = scratch / "fapiao.sqlite3"
    try:
        os.environ["FAPIAO_BACKUP_DIR"] = str(scratch / "backups")
        ledger_bench.setup_django(argparse.Namespace(database_url=None), scratch)
        print(f"scratch: {scratch}  database: {database}")
        if not args.reuse:
            started = time.perf_counter()
            build(args.invoices, random.Random(20261205))
            print(
                f"built {args.invoices:,} invoices with their ledger entries"
                f" in {time.perf_counter() - started:.0f} s"
            )
        from django.db import connection

        connection.close()
        size = database.stat().st_size
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(FAPIAO_LOG_LEVEL="WARNING")
        python = sys.executable
        shutil.rmtree(scratch / "backups", ignore_errors=True)

        create_s, out = run(env, python, "-m", "fapiao.cli", "backup", "create")
        listed = json.loads(run(env, python, "-m", "fapiao.cli", "backup", "list", "--json")[1])["backups"]
        backup_id = listed[0]["id"]
        verify_s, out = run(env, python, "-m", "fapiao.cli", "backup", "verify", backup_id, "--json")
        verified = json.loads(out)
        assert verified["ok"] and verified["invoices"] == args.invoices, verified

        copy = scratch / "baseline.sqlite3"
        copy.unlink(missing_ok=True)
        backup_s, _ = run(env, "sqlite3", str(database), f".backup '{copy}'")
        copy_env = {**env, "FAPIAO_DATABASE_URL": f"sqlite:///{copy}"}
        ledger_s, _ = run(copy_env, python, "-m", "fapiao.cli", "ledger", "verify")
        copy.unlink(missing_ok=True)

        ours, baseline = create_s + verify_s, backup_s + ledger_s
        print(
            f"database: {size / 1e6:,.0f} MB, {args.invoices:,} invoices,"
            f" {listed[0]['bytes'] / 1e6:,.0f} MB backup"
        )
        print(f"fapiao backup create:            {create_s:7.1f} s")
        print(f"fapiao backup verify:            {verify_s:7.1f} s")
        print(f"  together (P6 target <= 60 s):  {ours:7.1f} s  {'met' if ours <= 60 else 'NOT met'}")
        print(f"sqlite3 .backup:                 {backup_s:7.1f} s")
        print(f"fapiao ledger verify (the copy): {ledger_s:7.1f} s")
        print(f"  together (baseline):           {baseline:7.1f} s")
        ratio = ours / baseline
        print(f"ratio ours / baseline: {ratio:.2f}x (target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})")
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
