"""Records from the readers turned into import input: the checks, the party rule, the file's amounts kept."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

from fapiao.core.choices import Colour, Direction
from fapiao.formats.records import InvoiceLine, InvoiceRecord
from fapiao.invoices.import_records import import_input, record_sha256

US = "91110108MA01ABCD84"
THEM = "91110000MA01XKQ2TQ"
TODAY = date(2026, 12, 6)


def record(**overrides: object) -> InvoiceRecord:
    fields: dict[str, object] = {
        "number": "26110000000000000007",
        "issued_on": date(2026, 11, 28),
        "seller_tax_id": US,
        "seller_name": "北京示例科技有限公司",
        "buyer_tax_id": THEM,
        "buyer_name": "北京买方贸易有限公司",
        "total_amount_fen": 100_000,
        "total_tax_fen": 6_000,
        "total_with_tax_fen": 106_000,
        "lines": (InvoiceLine("*信息技术服务*软件开发", "3", None, 100_000, "0.06", 6_000),),
    }
    fields.update(overrides)
    return InvoiceRecord(**fields)  # type: ignore[arg-type]


def codes(found: object) -> set[str]:
    return {problem.code for problem in found[1]}  # type: ignore[index]


def test_a_good_record_keeps_the_files_amounts_and_derives_the_unit_price() -> None:
    found, problems = import_input(record(), merchant_uscc=US, direction=Direction.OUT, today=TODAY)
    assert problems == []
    assert found is not None
    (line,) = found.lines
    assert (line.amount, line.tax, line.quantity) == (100_000, 6_000, Decimal(3))
    assert line.unit_price == Decimal("333.33333333")
    assert found.colour is Colour.BLUE


def test_another_merchants_invoice_is_refused_as_issued_and_as_received() -> None:
    assert "not_this_merchant" in codes(
        import_input(record(seller_tax_id=THEM), merchant_uscc=US, direction=Direction.OUT, today=TODAY)
    )
    received = record(seller_tax_id=THEM, buyer_tax_id=THEM)
    assert "not_this_merchant" in codes(
        import_input(received, merchant_uscc=US, direction=Direction.IN, today=TODAY)
    )
    mine = record(seller_tax_id=THEM, buyer_tax_id=US)
    assert import_input(mine, merchant_uscc=US, direction=Direction.IN, today=TODAY)[1] == []


def test_every_problem_at_once() -> None:
    bad_line = InvoiceLine(None, "x", None, None, "0.99", None)
    found = import_input(
        record(number=None, issued_on=date(2027, 1, 1), buyer_name=" ", lines=(bad_line,)),
        merchant_uscc=US,
        direction=Direction.OUT,
        today=TODAY,
    )
    assert found[0] is None
    assert {"required", "future_date", "not_a_number", "unsupported_rate"} <= codes(found)


def test_a_red_record_must_name_its_original_and_the_hash_follows_the_content() -> None:
    red = record(colour="red", total_amount_fen=-100_000, total_tax_fen=-6_000, total_with_tax_fen=-106_000)
    assert "required" in codes(import_input(red, merchant_uscc=US, direction=Direction.OUT, today=TODAY))
    assert record_sha256(record()) == record_sha256(record())
    assert record_sha256(record()) != record_sha256(dataclasses.replace(record(), remark="x"))
