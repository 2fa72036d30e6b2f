"""The .eml reader: (message, problems), never an exception, on real-world mail shapes.

The fixtures are written by ``fixtures/eml/make_fixtures.py`` in the shapes Chinese and other
clients really send; each attachment is compared by SHA-256 with the original bytes in
``fixtures/eml/originals``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
import unicodedata
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.formats.eml import UNSAFE_ATTACHMENT, MailMessage, MailProblem, read_eml
from tests.zipbombs import MIB, xlsx_bomb, zip_with

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "eml"
LIMIT = 10 * 2**20
MAILS = sorted(path.name for path in FIXTURES.glob("*.eml"))


def read(name: str) -> tuple[MailMessage, list[MailProblem]]:
    message, problems = read_eml((FIXTURES / name).read_bytes(), max_bytes=LIMIT)
    assert message is not None, problems
    return message, problems


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def original(name: str) -> str:
    return sha((FIXTURES / "originals" / name).read_bytes())


def attachments(message: MailMessage) -> list[tuple[str, str, str]]:
    return [(a.filename, a.content_type, sha(a.data)) for a in message.attachments]


def codes(problems: list[MailProblem]) -> set[str]:
    return {problem.code for problem in problems}


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_eml_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fixtures_are_up_to_date() -> None:
    built = load_generator().build()
    on_disk = {
        str(path.relative_to(FIXTURES))
        for path in FIXTURES.rglob("*")
        if path.is_file() and path.name != "make_fixtures.py" and "__pycache__" not in path.parts
    }
    assert set(built) == on_disk
    for name, data in built.items():
        assert (FIXTURES / name).read_bytes() == data, f"{name} is stale: run make_fixtures.py"


def test_foxmail_gbk_mail_labelled_gb2312() -> None:
    message, problems = read("gbk_foxmail.eml")
    assert problems == []
    assert message.sender_address == "zhang.san@example.cn"
    assert message.sender_name == "张三"
    # Two GB2312-labelled words that split 丢 between them, and 镕 which only GBK has.
    assert message.subject == "关于发票丢失的补救申请（朱镕基路店）"
    assert message.sent_at == datetime(2026, 11, 24, 2, 15, tzinfo=UTC)
    assert message.message_id == "<202611241015000123456@example.cn>"
    assert message.body_text == "您好：\n\n朱镕基路店的发票丢失，合同见附件。\n\n张三"
    assert attachments(message) == [("合同.pdf", "application/pdf", original("contract.pdf"))]


def test_utf8_quoted_printable_alternative_and_rfc2231_names() -> None:
    message, problems = read("utf8_alternative.eml")
    assert problems == []
    assert (message.sender_address, message.sender_name) == ("li.si@example.com", "李四")
    assert message.subject == "补开 申请"
    assert message.sent_at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # "-0000": UTC
    # The plain alternative wins over HTML; soft line breaks are joined again.
    assert (
        message.body_text == "李四的补开申请：\n原发票号码 12345678，金额 1,060.00 元。" + "这一行很长" * 12
    )
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert attachments(message) == [
        ("合同.pdf", "application/pdf", original("contract.pdf")),
        ("银行流水.xlsx", xlsx, original("statement.xlsx")),  # RFC 2231 continuation
    ]


def test_html_only_mail_with_inline_picture() -> None:
    message, problems = read("html_inline_image.eml")
    assert problems == []
    assert (message.sender_address, message.sender_name) == ("10001@qq.com", "王经理")
    assert message.subject == "盖章回执"
    lines = message.body_text.splitlines()
    assert "您好，" in lines
    assert "附件是盖章的回执&合同。" in lines
    assert "王 经理" in lines  # &nbsp; is a space
    assert not any(word in message.body_text for word in ("<", "alert", "color"))
    # The named inline picture is evidence; the nameless logo is not.
    assert attachments(message) == [("印章.png", "image/png", original("seal.png"))]


def test_forwarded_mail_gives_its_attachments() -> None:
    message, problems = read("forwarded.eml")
    assert problems == []
    assert message.sender_address == "wang.wu@example.org"
    assert message.subject == "FW: 回单"
    assert message.body_text == "请见转发的邮件。"  # the outer mail's own text only
    assert attachments(message) == [("receipt.jpg", "image/jpeg", original("receipt.jpg"))]


def test_broken_mail_keeps_what_is_good() -> None:
    message, problems = read("broken.eml")
    assert (message.sender_address, message.sender_name) == ("zhao.liu@example.com", "赵六")
    assert message.subject == "对账单"  # raw GBK bytes in the header
    assert message.sent_at is None
    assert message.body_text == "金额：1,060.00元"  # charset x-unknown, read as GB18030
    assert attachments(message) == [("good.pdf", "application/pdf", original("contract.pdf"))]
    assert codes(problems) == {"unknown_charset", "bad_date", "damaged_attachment"}
    by_code = {problem.code: problem for problem in problems}
    assert by_code["unknown_charset"].params == {"charset": "x-unknown"}
    assert by_code["damaged_attachment"].render() == "The attachment scan.jpg is damaged and was left out."


@pytest.mark.parametrize("data", [b"", b"  \r\n\r\n"])
def test_empty_file(data: bytes) -> None:
    assert read_eml(data, max_bytes=LIMIT) == (None, [MailProblem("empty", "The file is empty.")])


@pytest.mark.parametrize("name", ["contract.pdf", "seal.png", "statement.xlsx"])
def test_other_files_are_not_mail(name: str) -> None:
    message, problems = read_eml((FIXTURES / "originals" / name).read_bytes(), max_bytes=LIMIT)
    assert message is None
    assert codes(problems) == {"not_email"}


def test_oversize_file_is_not_parsed() -> None:
    data = (FIXTURES / "gbk_foxmail.eml").read_bytes()
    assert read_eml(data, max_bytes=len(data))[0] is not None
    message, problems = read_eml(data, max_bytes=len(data) - 1)
    assert message is None
    assert codes(problems) == {"too_large"}
    assert read_eml(data, max_bytes=2**20)[0] is not None
    assert read_eml(data * 400, max_bytes=2**19)[1][0].render() == "The file is larger than 0.5 MB."


def mail(sender: str | None = "x@example.com") -> EmailMessage:
    message = EmailMessage()
    if sender:
        message["From"] = sender
    message["Subject"] = "test"
    message.set_content("text")
    return message


def test_filenames_are_sanitised_or_given_a_fallback() -> None:
    message = mail()
    named = {
        "../../etc/passwd": b"1",
        "C:\\fakepath\\发票\u202egpj.exe": b"2",
        "..hidden.pdf": b"3",
    }
    for filename, data in named.items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    message.add_attachment(b"4", maintype="application", subtype="octet-stream")
    message.add_attachment(b"5", maintype="application", subtype="pdf")
    found, problems = read_eml(message.as_bytes(), max_bytes=LIMIT)
    assert found is not None and problems == []
    names = [attachment.filename for attachment in found.attachments]
    assert names == ["passwd", "发票gpj.exe", "hidden.pdf", "attachment-4.bin", "attachment-5.pdf"]
    assert [attachment.data for attachment in found.attachments] == [b"1", b"2", b"3", b"4", b"5"]


def test_attachment_count_is_bounded() -> None:
    message = mail()
    for number in range(3):
        message.add_attachment(bytes([number]), maintype="image", subtype="png", filename=f"{number}.png")
    found, problems = read_eml(message.as_bytes(), max_bytes=LIMIT, max_attachments=2)
    assert found is not None
    assert [a.filename for a in found.attachments] == ["0.png", "1.png"]
    assert [(p.code, p.params) for p in problems] == [("too_many_attachments", {"max": 2})]


def forwarded_chain(depth: int) -> bytes:
    inner = mail()
    inner.add_attachment(b"deep", maintype="image", subtype="png", filename="deep.png")
    for _level in range(depth):
        outer = mail()
        outer.add_attachment(inner)  # message/rfc822
        inner = outer
    return inner.as_bytes()


def test_forwarded_mails_are_followed_to_a_bounded_depth() -> None:
    found, problems = read_eml(forwarded_chain(2), max_bytes=LIMIT)
    assert found is not None and problems == []
    assert [a.data for a in found.attachments] == [b"deep"]
    found, problems = read_eml(forwarded_chain(12), max_bytes=LIMIT)
    assert found is not None and found.attachments == ()
    assert codes(problems) == {"too_deep"}


def test_mail_without_sender_asks_staff_to_choose() -> None:
    found, problems = read_eml(mail(sender=None).as_bytes(), max_bytes=LIMIT)
    assert found is not None and found.sender_address == ""
    assert codes(problems) == {"no_sender"}


@pytest.mark.parametrize(
    "disposition",
    [
        "attachment; filename*",  # the stdlib header parser raises IndexError
        "attachment; filename*0=a; filename*=b",  # the stdlib's decode_params raises TypeError
    ],
)
def test_a_part_the_stdlib_cannot_parse_does_not_hide_the_others(disposition: str) -> None:
    data = (
        "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        "--x\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=good.pdf\r\n"
        "\r\ngood\r\n"
        f"--x\r\nContent-Type: application/pdf\r\nContent-Disposition: {disposition}\r\n\r\nbad\r\n--x--\r\n"
    )
    found, problems = read_eml(data.encode(), max_bytes=LIMIT)
    assert found is not None
    assert [(a.filename, a.data) for a in found.attachments] == [("good.pdf", b"good")]
    assert codes(problems) == {"bad_part"}


def test_too_many_parts_are_refused_before_parsing() -> None:
    part = b"--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=a.png\r\n\r\nx\r\n"
    head = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    found, problems = read_eml(head + part * 900 + b"--b--\r\n", max_bytes=LIMIT, max_attachments=1000)
    assert found is not None and len(found.attachments) == 900
    found, problems = read_eml(head + part * 1001 + b"--b--\r\n", max_bytes=LIMIT)
    assert found is None
    assert codes(problems) == {"too_many_parts"}


def check(data: bytes) -> None:
    """What must hold for any input: a result, never an exception, and safe filenames."""
    message, problems = read_eml(data, max_bytes=LIMIT, max_attachments=5)
    assert message is not None or problems
    for problem in problems:
        assert problem.render()
    if message is not None:
        assert message.sent_at is None or message.sent_at.tzinfo == UTC
        assert len(message.attachments) <= 5
        for attachment in message.attachments:
            name = attachment.filename
            assert name and "/" not in name and "\\" not in name and not name.startswith(".")
            assert not any(unicodedata.category(char).startswith("C") for char in name)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    check(data)


TOKENS = [
    b"=?",
    b"?=",
    b"=?gbk?B?",
    b"=?utf-8?Q?",
    b"\r\n",
    b"\r\n ",
    b";",
    b'"',
    b"*=",
    b"*0*=",
    b"''",
    b"%",
]
TOKENS += [
    b"--",
    b"boundary=",
    b"message/rfc822",
    b"multipart/mixed",
    b"charset=",
    b"<",
    b"\\",
    b"\x00",
    b"\xff",
]
HEADERS = ["From", "Subject", "Date", "Content-Type", "Content-Disposition", "Content-Transfer-Encoding"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(HEADERS), st.text(max_size=80)), max_size=8),
    st.binary(max_size=500),
)
def test_never_raises_on_arbitrary_headers(headers: list[tuple[str, str]], body: bytes) -> None:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    check(head.encode("utf-8") + b"\r\n" + body)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(MAILS), st.data())
def test_never_raises_on_mutated_mails(name: str, data: st.DataObject) -> None:
    mail_bytes = bytearray((FIXTURES / name).read_bytes())
    for _edit in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(mail_bytes)))
        kind = data.draw(st.sampled_from(["flip", "insert", "token", "delete", "truncate"]))
        if kind == "flip" and at < len(mail_bytes):
            mail_bytes[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            mail_bytes[at:at] = data.draw(st.binary(min_size=1, max_size=40))
        elif kind == "token":
            mail_bytes[at:at] = data.draw(st.sampled_from(TOKENS))
        elif kind == "delete":
            del mail_bytes[at : at + data.draw(st.integers(1, 200))]
        elif kind == "truncate":
            del mail_bytes[at:]
    check(bytes(mail_bytes))


def test_an_attached_zip_bomb_is_left_out_without_unpacking_it() -> None:
    """Issue 13 finding 4: an archive attached to a mail goes through the same upload guard."""
    message = mail()
    message.add_attachment(b"%PDF-1.4 contract", maintype="application", subtype="pdf", filename="合同.pdf")
    message.add_attachment(xlsx_bomb(1390 * MIB), maintype="application", subtype="zip", filename="流水.xlsx")
    started = time.perf_counter()
    found, problems = read_eml(message.as_bytes(), max_bytes=LIMIT)
    assert time.perf_counter() - started < 2
    assert found is not None
    assert [attachment.filename for attachment in found.attachments] == ["合同.pdf"]
    assert [(p.code, p.params) for p in problems] == [(UNSAFE_ATTACHMENT, {"name": "流水.xlsx"})]
    assert problems[0].render() == (
        "The attachment 流水.xlsx is an unsafe archive (a zip bomb or damaged) and was left out."
    )
    lying = mail()
    lying.add_attachment(zip_with("a.xml", 64 * MIB, declared=1000), maintype="application", subtype="zip")
    found, problems = read_eml(lying.as_bytes(), max_bytes=LIMIT)
    assert found is not None and found.attachments == ()
    assert [p.code for p in problems] == [UNSAFE_ATTACHMENT]
