"""Content sniffing and the evidence upload check: the bytes decide, never the file name."""

from __future__ import annotations

import io
import json
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from PIL import Image
from reportlab.pdfgen import canvas

from fapiao.core.evidence import (
    MIB,
    EvidenceAttachmentUnsafeError,
    EvidenceEmptyError,
    EvidenceTooLargeError,
    EvidenceType,
    EvidenceTypeMismatchError,
    EvidenceTypeUnknownError,
)
from fapiao.formats.safezip import ZipBombError, ZipDamagedError, ZipLimits, ZipTooManyFilesError
from fapiao.formats.sniff import EVIDENCE_KINDS_ALLOWED, IMAGE_KINDS, KINDS, check_evidence, sniff
from tests.zipbombs import xlsx_bomb, zip_with

FIXTURES = Path(__file__).parent / "fixtures"
MAIL = (
    b"Received: from mail.example.cn by mx.example.com; Tue, 24 Nov 2026 10:15:02 +0800\r\n"
    b"\tfor <support@fapiao.example>\r\n"
    b"From: Zhang San <zhang.san@example.cn>\r\n"
    b"Subject: =?UTF-8?B?6KGl5byA?=\r\n"
    b"Date: Tue, 24 Nov 2026 10:15:00 +0800\r\n"
    b"MIME-Version: 1.0\r\n"
    b"\r\n"
    b"body\r\n"
)


def pdf() -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 72, "contract")
    page.save()
    return out.getvalue()


def picture(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, fmt)
    return out.getvalue()


def zipped(*names: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return out.getvalue()


def xlsx() -> bytes:
    out = io.BytesIO()
    book = Workbook()
    book.worksheets[0].append(["日期", "金额"])
    book.save(out)
    return out.getvalue()


# An ISO-BMFF "ftyp" box with the HEIC brand, as iPhones write it.
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param(pdf(), "pdf", id="pdf"),
        pytest.param(picture("PNG"), "png", id="png"),
        pytest.param(picture("JPEG"), "jpeg", id="jpeg"),
        pytest.param(picture("GIF"), "gif", id="gif"),
        pytest.param(picture("WEBP"), "webp", id="webp"),
        pytest.param(picture("TIFF"), "tiff", id="tiff"),
        pytest.param(HEIC, "heic", id="heic"),
        pytest.param(zipped("OFD.xml", "Doc_0/Document.xml"), "ofd", id="ofd"),
        pytest.param(zipped("Doc_0/OFD.xml"), "zip", id="ofd-xml-not-at-root"),
        pytest.param(xlsx(), "xlsx", id="xlsx"),
        pytest.param(zipped("readme.txt"), "zip", id="zip"),
        pytest.param(b"PK\x03\x04" + b"\x00" * 40, "zip", id="damaged-zip"),
        pytest.param(b'<?xml version="1.0"?><EInvoice/>', "xml", id="xml-declared"),
        pytest.param(b"\xef\xbb\xbf<?xml version='1.0'?><a/>", "xml", id="xml-bom"),
        pytest.param("\ufeff<a>x</a>".encode("utf-16"), "xml", id="xml-utf16"),
        pytest.param(b"\n  <EInvoice><Header/></EInvoice>", "xml", id="xml-undeclared"),
        pytest.param((FIXTURES / "einvoice" / "special_gbk.xml").read_bytes(), "xml", id="xml-gbk"),
        pytest.param(b"<html><body>hi</body></html>", "text", id="html"),
        pytest.param(b'{"format": "fapiao-receipt/1", "entry": {"index": 3}}', "json", id="json"),
        pytest.param(b"[1, 2]", "text", id="json-array"),
        pytest.param(b'{"cut": ', "text", id="json-broken"),
        pytest.param(MAIL, "eml", id="eml"),
        pytest.param(b"From sender@example.cn Tue Nov 24 10:15:00 2026\n" + MAIL, "eml", id="mbox-eml"),
        pytest.param(
            "日期,金额,对方户名\n2026-03-05,1399.00,北京买方\n2026-03-06,8720.00,北京买方\n".encode(),
            "csv",
            id="csv",
        ),
        pytest.param(
            "账号：0200001234567890123\n日期\t金额\t摘要\n2026-03-05\t1399.00\t货款\n2026-03-06\t8720.00\t运费\n".encode(
                "gb18030"
            ),
            "csv",
            id="csv-gb18030-tabs-with-title",
        ),
        pytest.param("付款说明：三月份货款已于三月五日支付。".encode(), "text", id="text"),
        pytest.param("付款说明：三月份货款已于三月五日支付。".encode("gbk"), "text", id="text-gbk"),
        pytest.param(b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)), "unknown", id="binary"),
        pytest.param(b"", "unknown", id="empty"),
    ],
)
def test_sniff_names_the_content(data: bytes, kind: str) -> None:
    assert sniff(data) == kind


@pytest.mark.parametrize("path", sorted((FIXTURES / "eml").glob("*.eml")), ids=lambda path: path.name)
def test_every_mail_fixture_is_eml(path: Path) -> None:
    assert sniff(path.read_bytes()) == "eml"


def test_text_longer_than_the_sniffed_head_with_a_character_cut_at_the_boundary() -> None:
    data = ("甲" * 40_000).encode()  # 120,000 bytes: 64 KiB ends inside a 3-byte character
    assert 64 * 1024 % 3 != 0
    assert sniff(data) == "text"
    assert sniff(data + b"\xff") == "text"  # only the head is judged


def test_a_big_csv_is_still_csv() -> None:
    rows = "".join(f"2026-03-{day % 28 + 1:02d},{day}.00,北京买方贸易有限公司\n" for day in range(5000))
    assert len(rows.encode()) > 64 * 1024
    assert sniff(("日期,金额,对方\n" + rows).encode()) == "csv"


def test_allowed_kinds_cover_every_evidence_type_and_only_real_kinds() -> None:
    assert set(EVIDENCE_KINDS_ALLOWED) == set(EvidenceType)
    for allowed in EVIDENCE_KINDS_ALLOWED.values():
        assert allowed <= KINDS - {"unknown"}
    assert EVIDENCE_KINDS_ALLOWED["other"] == KINDS - {"unknown"}
    assert EVIDENCE_KINDS_ALLOWED["stub_copy"] >= IMAGE_KINDS
    assert EVIDENCE_KINDS_ALLOWED["system_receipt"] == {"json"}


def test_a_pdf_named_jpg_is_judged_a_pdf_and_accepted_as_a_stub_copy() -> None:
    kind = check_evidence(declared_type="stub_copy", filename="存根联.jpg", data=pdf(), max_bytes=MIB)
    assert kind == "pdf"


def test_a_png_is_not_a_system_receipt_whatever_its_name() -> None:
    with pytest.raises(EvidenceTypeMismatchError) as caught:
        check_evidence(
            declared_type="system_receipt", filename="receipt.json", data=picture("PNG"), max_bytes=MIB
        )
    assert caught.value.code == "evidence_type_mismatch"
    assert caught.value.params["kind"] == "png"
    assert str(caught.value) == "The file's content is PNG, which is not accepted as system_receipt."


def test_unrecognised_bytes_are_refused_even_as_other() -> None:
    with pytest.raises(EvidenceTypeMismatchError) as caught:
        check_evidence(declared_type="other", filename="x.bin", data=b"\x00\x01\x02", max_bytes=MIB)
    assert caught.value.params["kind"] == "unknown"


@pytest.mark.parametrize(
    ("declared", "data", "kind"),
    [
        ("contract", picture("JPEG"), "jpeg"),
        ("bank_statement", xlsx(), "xlsx"),
        ("bank_statement", "日期,金额\n2026-03-05,1.00\n2026-03-06,2.00\n".encode("gb18030"), "csv"),
        ("e_invoice", (FIXTURES / "einvoice" / "ordinary_utf8.xml").read_bytes(), "xml"),
        ("e_invoice", zipped("OFD.xml"), "ofd"),
        ("system_receipt", json.dumps({"format": "receipt"}).encode(), "json"),
        ("email", MAIL, "eml"),
        ("other", zipped("a.txt"), "zip"),
    ],
)
def test_accepted_combinations(declared: str, data: bytes, kind: str) -> None:
    assert check_evidence(declared_type=declared, filename="f", data=data, max_bytes=MIB) == kind


@pytest.mark.parametrize(
    ("declared", "data"),
    [
        ("stub_copy", zipped("OFD.xml")),
        ("e_invoice", picture("PNG")),
        ("email", b"just a note\n"),
        ("contract", xlsx()),
        ("bank_statement", MAIL),
    ],
)
def test_refused_combinations(declared: str, data: bytes) -> None:
    with pytest.raises(EvidenceTypeMismatchError):
        check_evidence(declared_type=declared, filename="f", data=data, max_bytes=MIB)


def test_empty_file() -> None:
    with pytest.raises(EvidenceEmptyError) as caught:
        check_evidence(declared_type="contract", filename="a.pdf", data=b"", max_bytes=MIB)
    assert caught.value.code == "evidence_empty"


def test_size_limit_is_inclusive_and_reported_in_mb() -> None:
    data = pdf()
    assert check_evidence(declared_type="contract", filename="a.pdf", data=data, max_bytes=len(data)) == "pdf"
    with pytest.raises(EvidenceTooLargeError) as caught:
        check_evidence(declared_type="contract", filename="a.pdf", data=data + b"\n", max_bytes=len(data))
    assert caught.value.code == "evidence_too_large"
    with pytest.raises(EvidenceTooLargeError) as caught:
        check_evidence(
            declared_type="contract", filename="a.pdf", data=b"x" * (2 * MIB + 1), max_bytes=2 * MIB
        )
    assert str(caught.value) == "The file is larger than 2 MB."


def test_unknown_evidence_type() -> None:
    with pytest.raises(EvidenceTypeUnknownError) as caught:
        check_evidence(declared_type="invoice_photo", filename="a.pdf", data=pdf(), max_bytes=MIB)
    assert caught.value.code == "evidence_type_unknown"


MAGIC_PREFIXES = st.sampled_from(
    [
        b"",
        b"PK\x03\x04",
        b"PK\x05\x06",
        b"%PDF-",
        b"\xff\xd8\xff",
        b"<?xml ",
        b"{",
        b"From: a\r\n",
        b"\xef\xbb\xbf",
    ]
)


@settings(max_examples=400, deadline=None)
@given(prefix=MAGIC_PREFIXES, body=st.binary(max_size=2048))
def test_sniff_never_raises_on_arbitrary_bytes(prefix: bytes, body: bytes) -> None:
    assert sniff(prefix + body) in KINDS


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=500))
def test_sniff_never_raises_on_arbitrary_text(text: str) -> None:
    assert sniff(text.encode("utf-8", "surrogatepass")) in KINDS


@pytest.mark.parametrize(
    ("declared", "data", "refusal"),
    [
        pytest.param("bank_statement", xlsx_bomb(1390 * MIB), ZipBombError, id="xlsx-bomb"),
        pytest.param("other", zip_with("scan.pdf", 300 * MIB), ZipBombError, id="zip-bomb"),
        pytest.param("other", zip_with("a.pdf", 64 * MIB, declared=10_000), ZipDamagedError, id="lying-zip"),
        pytest.param("other", b"PK\x03\x04" + b"\x00" * 40, ZipDamagedError, id="damaged-zip"),
        pytest.param("e_invoice", zipped("OFD.xml", *(f"{i}.xml" for i in range(20))), ZipTooManyFilesError,
                     id="ofd-too-many-files"),
    ],
)  # fmt: skip
def test_every_archive_goes_through_the_upload_guard(declared: str, data: bytes, refusal: type) -> None:
    """Issue 13 finding 4: evidence that is a zip (XLSX, OFD, DOCX, a plain zip) is checked, quickly."""
    started = time.perf_counter()
    with pytest.raises(refusal):
        check_evidence(
            declared_type=declared,
            filename="f",
            data=data,
            max_bytes=20 * MIB,
            zip_limits=ZipLimits(max_entries=20),
        )
    assert time.perf_counter() - started < 2


def test_an_email_carrying_a_zip_bomb_is_refused_whole() -> None:
    """A mail is kept whole as evidence: a bomb attached to it would be stored with it."""
    message = EmailMessage()
    message["From"], message["Subject"], message["Date"] = (
        "a@example.cn",
        "x",
        "Tue, 24 Nov 2026 10:15:00 +0800",
    )
    message.set_content("see attachment")
    message.add_attachment(xlsx_bomb(1390 * MIB), maintype="application", subtype="zip", filename="流水.xlsx")
    with pytest.raises(EvidenceAttachmentUnsafeError) as refused:
        check_evidence(declared_type="email", filename="m.eml", data=message.as_bytes(), max_bytes=20 * MIB)
    assert refused.value.params == {"attachment": "流水.xlsx"}
    assert check_evidence(declared_type="email", filename="m.eml", data=MAIL, max_bytes=MIB) == "eml"
