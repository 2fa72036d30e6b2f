"""The submission receipt PDF (spec/recovery.md): what a clerk extracts from it must be what was submitted.

Text is read back with pdfplumber, the same library the product ships, so a hash split across lines, a
font that does not map back to Unicode or a file name that breaks the markup shows up as a failure.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pdfplumber
import pytest
from pdfminer.cmapdb import CMapDB

from fapiao.recovery.receipt_pdf import (
    DEFAULT_LABELS,
    QR_SIZE,
    ReceiptEvidence,
    SubmissionReceipt,
    case_qr,
    paragraph_markup,
    render_submission_receipt,
)

CASE_URL = "https://fapiao.example.cn/recovery/cases/7d3c9a1e-1f2b-4c5d-9e8f-0a1b2c3d4e5f/"


def _evidence(count: int, *, name: str = "合同扫描件") -> list[ReceiptEvidence]:
    return [
        ReceiptEvidence(
            name=f"{name}-{i:02d}.pdf",
            type_label="合同" if i % 2 else "银行流水",
            size=1000 * i + 7,
            sha256=hashlib.sha256(f"file {i}".encode()).hexdigest(),
        )
        for i in range(count)
    ]


def _receipt(**changes: Any) -> SubmissionReceipt:
    values: dict[str, Any] = {
        "acceptance_no": "BJ-2026-000042",
        "merchant_name": "北京晨光信息技术有限公司",
        "merchant_uscc": "91110108MA01ABCD2X",
        "submitted_at": datetime(2026, 11, 28, 4, 3, 4, tzinfo=UTC),
        "submitted_by": "王芳",
        "claim_rows": [("发票号码", "26112000000012345678"), ("价税合计", "¥1,060.00")],
        "narrative": "系统升级后发票记录丢失。\n我们持有记账联复印件和银行回单。",
        "evidence": _evidence(3),
        "case_url": CASE_URL,
    }
    values.update(changes)
    return SubmissionReceipt(**values)


def _pages(pdf: bytes) -> list[str]:
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        return [page.extract_text() for page in document.pages]


def test_receipt_text_shows_number_merchant_claim_time_and_every_hash() -> None:
    receipt = _receipt()
    text = "\n".join(_pages(render_submission_receipt(receipt)))

    assert "补救申请受理回执" in text
    assert "受理编号 BJ-2026-000042" in text
    assert "北京晨光信息技术有限公司" in text
    assert "91110108MA01ABCD2X" in text
    assert "发票号码 26112000000012345678" in text
    assert "我们持有记账联复印件和银行回单。" in text
    assert "2026-11-28 12:03:04 (北京时间)" in text  # 04:03:04 UTC
    assert CASE_URL in "".join(text.split()), "a long address may wrap, but it is all there"
    lines = text.splitlines()
    for item in receipt.evidence:
        assert item.sha256 in lines, "each hash is a line of its own"
        assert item.name in text
    assert f"{receipt.evidence[2].size:,} B" in text


def test_time_is_beijing_whatever_the_offset_given() -> None:
    moment = datetime(2026, 12, 31, 17, 30, tzinfo=timezone(timedelta(hours=-5)))  # 22:30 UTC
    text = "\n".join(_pages(render_submission_receipt(_receipt(submitted_at=moment))))
    assert "2027-01-01 06:30:00 (北京时间)" in text


def test_thirty_files_flow_over_pages_with_every_hash_intact() -> None:
    receipt = _receipt(evidence=_evidence(30, name="银行回单-2026年11月-" + "很长的文件名" * 12))
    pages = _pages(render_submission_receipt(receipt))

    assert len(pages) > 1
    text = "\n".join(pages)
    for item in receipt.evidence:
        assert text.count(item.sha256) == 1
        assert item.sha256 in text.splitlines()
    tables_with_header = [page for page in pages if DEFAULT_LABELS["col_file"] in page]
    assert len(tables_with_header) > 1, "the table header repeats on the next page"
    assert f"BJ-2026-000042 第 {len(pages)} 页" in pages[-1]


def test_markup_like_file_names_are_printed_literally() -> None:
    names = ["<b>&.pdf", '<font name="Courier">x</font>.png', "a&amp;b<br/>.jpg", "]]><![CDATA[.eml"]
    evidence = [
        ReceiptEvidence(name=n, type_label="其他", size=1, sha256=hashlib.sha256(n.encode()).hexdigest())
        for n in names
    ]
    receipt = _receipt(evidence=evidence, merchant_name="A&B <商贸> 公司", narrative="<i>未闭合")
    text = "\n".join(_pages(render_submission_receipt(receipt)))

    for name in names:
        assert name in text
    assert "A&B <商贸> 公司" in text
    assert "<i>未闭合" in text


def test_characters_the_fonts_lack_are_shown_as_code_points_not_garbled() -> None:
    receipt = _receipt(
        evidence=_evidence(1, name="发票😀\u202efdp.exe"),
        narrative="Straße · Café € 한국 — 后面的文字不受影响\tx\x00y",
    )
    text = "\n".join(_pages(render_submission_receipt(receipt)))

    assert "发票[U+1F600][U+202E]fdp.exe-00.pdf" in text
    assert "Straße · Café € [U+D55C][U+AD6D] — 后面的文字不受影响" in text
    assert "[U+0000]y" in text


def test_every_character_drawn_in_the_cid_font_maps_back_to_itself() -> None:
    """Routing a character the CMap lacks to STSong-Light garbles the rest of the line on extraction."""
    cmap = CMapDB.get_cmap("UniGB-UCS2-H")
    to_unicode = CMapDB.get_unicode_map("Adobe-GB1", False)
    cid_chars = [chr(code) for code in range(0x10000) if paragraph_markup(chr(code)) == _escaped(chr(code))]

    assert len(cid_chars) > 20000, "the common CJK repertoire stays in the CID font"
    broken = []
    for char in cid_chars:
        cids = list(cmap.decode(char.encode("utf-16-be")))
        if len(cids) != 1 or to_unicode.get_unichr(cids[0]) != char:
            broken.append(char)
    assert broken == []


def _escaped(char: str) -> str:
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;"}.get(char, char)


def test_qr_code_holds_the_case_url_and_is_drawn_module_for_module() -> None:
    widget = case_qr(CASE_URL).contents[0]
    assert widget.value == CASE_URL
    widget.qr.make()
    expected = _dark_cells(widget.qr.modules)

    with pdfplumber.open(io.BytesIO(render_submission_receipt(_receipt()))) as document:
        drawn = _qr_cells_on_page(document.pages[0], len(widget.qr.modules))

    assert drawn == expected
    other = case_qr(CASE_URL.replace("7d3c", "7d3d")).contents[0]
    other.qr.make()
    assert _dark_cells(other.qr.modules) != drawn


def _dark_cells(modules: list[list[Any]]) -> set[tuple[int, int]]:
    return {(r, c) for r, row in enumerate(modules) for c, dark in enumerate(row) if dark}


def _qr_cells_on_page(page: Any, count: int) -> set[tuple[int, int]]:
    """Turn the QR's filled run rectangles back into (row, column) cells."""
    box = QR_SIZE / (count + 8)  # the widget's default 4-module quiet zone on each side
    runs = [r for r in page.rects if r["fill"] and abs(r["height"] - box) < 0.01]
    left, top = min(r["x0"] for r in runs), min(r["top"] for r in runs)
    cells = set()
    for run in runs:
        row, col = round((run["top"] - top) / box), round((run["x0"] - left) / box)
        cells |= {(row, col + i) for i in range(round(run["width"] / box))}
    return cells


def test_metadata_and_determinism() -> None:
    pdf = render_submission_receipt(_receipt())
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        assert document.metadata["Title"] == "补救申请受理回执"
        assert document.metadata["Subject"] == "BJ-2026-000042"
    assert render_submission_receipt(_receipt()) == pdf
    assert render_submission_receipt(_receipt(acceptance_no="BJ-2026-000043")) != pdf


def test_translated_labels_replace_the_chinese_defaults() -> None:
    labels = {"title": "Recovery case receipt", "acceptance_no": "Acceptance no.", "page": "Page {page}"}
    labels |= {"timezone": "Beijing time", "evidence": "Evidence ({count} files)"}
    text = "\n".join(_pages(render_submission_receipt(_receipt(labels=labels))))

    assert "Recovery case receipt" in text
    assert "Acceptance no. BJ-2026-000042" in text
    assert "2026-11-28 12:03:04 (Beijing time)" in text
    assert "Evidence (3 files)" in text
    assert "BJ-2026-000042 Page 1" in text
    assert DEFAULT_LABELS["title"] not in text
    assert DEFAULT_LABELS["col_file"] in text, "labels not overridden keep their default"


def test_no_evidence_and_no_claim_rows_still_render() -> None:
    text = "\n".join(_pages(render_submission_receipt(_receipt(evidence=[], claim_rows=[]))))
    assert DEFAULT_LABELS["no_evidence"] in text
    assert "BJ-2026-000042" in text


def test_a_huge_claim_value_splits_across_pages_instead_of_failing() -> None:
    value = "".join(f"第{i}行说明。" for i in range(1500))
    pages = _pages(render_submission_receipt(_receipt(claim_rows=[("备注", value)])))
    assert len(pages) > 1
    assert "第1499行说明。" in "".join(pages).replace("\n", "")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"submitted_at": datetime(2026, 11, 28, 4, 3, 4)}, "timezone-aware"),
        ({"labels": {"titel": "typo"}}, "unknown receipt labels: titel"),
    ],
)
def test_receipt_rejects_what_would_print_wrong(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _receipt(**changes)


@pytest.mark.parametrize("sha256", ["ABC", "A" * 64, "g" * 64, "a" * 63])
def test_evidence_rejects_anything_but_a_lowercase_sha256(sha256: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        ReceiptEvidence(name="x.pdf", type_label="其他", size=1, sha256=sha256)
