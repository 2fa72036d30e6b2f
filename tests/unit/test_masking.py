"""Masking for display and audit snapshots: sensitive keys masked, secrets redacted, text scrubbed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum

from fapiao.core.masking import REDACTED, mask, masked_snapshot, scrub_text


def test_mask():
    assert mask("13812345678") == "138****5678"
    assert mask("11010519491231037X") == "110***********037X"
    assert mask("12345") == "1***5"
    assert mask("1234") == "****"
    assert mask("") == ""


def test_scrub_text_masks_ids_phones_and_card_numbers_in_free_text():
    text = "身份证11010519491231037X，电话13812345678，卡号6222021234567890128。"
    scrubbed = scrub_text(text)
    assert "11010519491231037X" not in scrubbed and "110***********037X" in scrubbed
    assert "13812345678" not in scrubbed and "138****5678" in scrubbed
    assert "6222021234567890128" not in scrubbed


def test_scrub_text_leaves_invoice_numbers_and_company_ids_alone():
    text = "发票 26110100000000000001 购买方 91110000MA01XKQ2TQ 金额 1060.00"
    assert scrub_text(text) == text
    assert scrub_text("110105194912310371") == "110105194912310371"  # bad check digit: not an ID
    assert scrub_text("a\x00b") == "a\ufffdb"


class Colour(Enum):
    RED = "red"


def test_masked_snapshot():
    snapshot = masked_snapshot(
        {
            "buyer": {
                "name": "张三",
                "phone": "13812345678",
                "address": "北京市朝阳区建国路88号",
                "tax_id": "x",
            },
            "password": "hunter2-hunter2",
            "token": "",
            "amount": Decimal("1.50"),
            "on": date(2026, 1, 5),
            "colour": Colour.RED,
            "big": 2**60,
            "ratio": 0.5,
            "raw": b"\x00\x01",
            "tags": {"b", "a"},
            3: "three",
            "note": "call 13812345678",
        }
    )
    assert snapshot == {
        "buyer": {"name": "张三", "phone": "138****5678", "address": "北京市*****路88号", "tax_id": "x"},
        "password": REDACTED,
        "token": "",
        "amount": "1.50",
        "on": "2026-01-05",
        "colour": "red",
        "big": str(2**60),
        "ratio": "0.5",
        "raw": "<2 bytes>",
        "tags": ["a", "b"],
        "3": "three",
        "note": "call 138****5678",
    }
