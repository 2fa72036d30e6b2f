"""Files and a column mapping for the import tests, made by the tests themselves."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

from tests.unit.test_invoice_readers_table import COLUMNS  # the reader tests' export layout

MERCHANT = "91110108MA01ABCD84"  # madmin's merchant (the demo's first)
OTHER = "91110105MA01EFGH56"
BUYER = ("北京买方贸易有限公司", "91110000MA01XKQ2TQ")


def save_mapping(directory: Path, name: str = "old-erp", **extra: object) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(
        json.dumps({"name": name, "columns": COLUMNS, **extra}, ensure_ascii=False), encoding="utf-8"
    )
    return name


def number(serial: int) -> str:
    return f"25110000{serial:012d}"


def csv_rows(
    count: int, *, start: int = 1, seller: str = MERCHANT, buyer_tax_id: str = BUYER[1]
) -> list[list[str]]:
    rows = []
    first = date(2025, 1, 1)
    for i in range(start, start + count):
        amount = 100 + (i % 50)  # yuan
        rate, tax = ("6%", amount * 6) if i % 2 else ("13%", amount * 13)  # tax in fen
        on = first + timedelta(days=i % 300)
        rows.append(
            [
                number(i),
                on.isoformat(),
                seller,
                "北京示例科技有限公司",
                BUYER[0],
                buyer_tax_id,
                f"{amount + tax / 100:.2f}",
                "*信息技术服务*软件开发",
                "1",
                f"{amount:.2f}",
                rate,
                f"{tax / 100:.2f}",
            ]
        )
    return rows


def csv_bytes(rows: list[list[str]], *, encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(list(COLUMNS.values()))
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8") -> Path:
    path.write_bytes(csv_bytes(rows, encoding=encoding))
    return path
