"""What an uploaded file *is*, judged by its bytes and never by its name (docs/spec/recovery.md).

Evidence arrives with whatever name a phone or a mail client gave it: a PDF called
``scan.jpg`` is a PDF.  :func:`sniff` names the content kind from the magic bytes (the
``filetype`` library), from a zip's member names (OFD and XLSX are zips), and, for text,
from its first characters (XML, a JSON object, e-mail headers, CSV rows).
:func:`check_evidence` adds the size limit and the rule that the content must be a kind the
declared evidence type accepts.

Only the first 64 KiB is examined for text, and a zip's directory is read but nothing in it
is ever decompressed, so sniffing a hostile file costs little.  :func:`sniff` never raises.
:func:`check_evidence` then puts every archive — a zip, an XLSX, an OFD, or one attached to an
e-mail — through the upload guard (:mod:`fapiao.formats.safezip`): a zip bomb is never stored.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import filetype
from filetype.types import archive, image

from fapiao.core.errors import _
from fapiao.core.evidence import (
    EvidenceAttachmentUnsafeError,
    EvidenceEmptyError,
    EvidenceTooLargeError,
    EvidenceType,
    EvidenceTypeMismatchError,
    EvidenceTypeUnknownError,
    megabytes,
)
from fapiao.formats.eml import UNSAFE_ATTACHMENT, read_eml
from fapiao.formats.safezip import ZipLimits, check_zip, entry_names

IMAGE_KINDS: Final = frozenset({"jpeg", "png", "gif", "webp", "tiff", "heic"})
#: The kinds that are zip archives: each goes through the upload guard.
ZIP_KINDS: Final = frozenset({"zip", "xlsx", "ofd"})
#: Every kind :func:`sniff` can return.
KINDS: Final = (
    frozenset({"pdf", "ofd", "zip", "xml", "eml", "json", "xlsx", "csv", "text", "unknown"}) | IMAGE_KINDS
)

#: The content kinds each evidence type accepts.  "other" takes anything recognisable.
EVIDENCE_KINDS_ALLOWED: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        EvidenceType.CONTRACT: frozenset({"pdf", "ofd"}) | IMAGE_KINDS,
        EvidenceType.BANK_STATEMENT: frozenset({"pdf", "ofd", "xlsx", "csv"}) | IMAGE_KINDS,
        EvidenceType.STUB_COPY: frozenset({"pdf"}) | IMAGE_KINDS,
        EvidenceType.E_INVOICE: frozenset({"xml", "ofd", "pdf"}),
        EvidenceType.SYSTEM_RECEIPT: frozenset({"json"}),
        EvidenceType.EMAIL: frozenset({"eml"}),
        EvidenceType.OTHER: KINDS - {"unknown"},
    }
)

#: How a kind reads in a message; format names need no translation, the two phrases do.
KIND_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {kind: kind.upper() for kind in KINDS}
    | {"webp": "WebP", "eml": "EML (e-mail)", "text": _("plain text"), "unknown": _("an unrecognised format")}
)

_HEAD = 64 * 1024
_MAX_JSON_BYTES = 5 * 2**20  # a system receipt is a few KiB
_MAX_ZIP_MEMBERS = 10_000
_MAGIC = {
    "pdf": "pdf",
    "jpg": "jpeg",
    "png": "png",
    "apng": "png",
    "gif": "gif",
    "webp": "webp",
    "tif": "tiff",
    "heic": "heic",
}
_MATCHERS = (
    archive.Pdf(),
    image.Jpeg(),
    image.Apng(),
    image.Png(),
    image.Gif(),
    image.Webp(),
    image.Tiff(),
    image.Heic(),
)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # tab, newlines and form feed are text
_XML_START = re.compile(r"<(?:\?xml[\s?]|!--|[A-Za-z_][\w.:-]*[\s/>])")
_HEADER_LINE = re.compile(rb"([!-9;-~]+):")  # RFC 5322 field name: printable ASCII except ":"
_MAIL_HEADERS = frozenset(
    {b"from", b"date", b"subject", b"received", b"mime-version", b"to", b"message-id", b"return-path"}
)
_CSV_LINES = 30


def sniff(data: bytes) -> str:
    """The content kind of ``data``: one of :data:`KINDS`, ``"unknown"`` when nothing fits."""
    if not data:
        return "unknown"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(data)
    try:
        matched = filetype.match(data, matchers=_MATCHERS)
    except Exception:  # a third-party parser meeting hostile bytes; a guess is not worth a crash
        matched = None
    if matched is not None:
        return _MAGIC[matched.extension]
    if _looks_like_mail(data):
        return "eml"
    return _text_kind(data)


def check_evidence(
    *, declared_type: str, filename: str, data: bytes, max_bytes: int, zip_limits: ZipLimits | None = None
) -> str:
    """Check one uploaded evidence file and return its content kind.

    The file name is only quoted back (``filename`` param); the decision rests on the bytes.
    Raises :class:`EvidenceTypeUnknownError`, :class:`EvidenceEmptyError`,
    :class:`EvidenceTooLargeError` (above ``max_bytes``), :class:`EvidenceTypeMismatchError`, an
    :class:`fapiao.formats.safezip.UnsafeZipError` for an archive outside ``zip_limits`` (the
    defaults of :class:`ZipLimits` when not given) or :class:`EvidenceAttachmentUnsafeError` for
    an e-mail carrying one.
    """
    allowed = EVIDENCE_KINDS_ALLOWED.get(declared_type)
    if allowed is None:
        raise EvidenceTypeUnknownError(evidence_type=declared_type)
    if not data:
        raise EvidenceEmptyError(filename=filename)
    if len(data) > max_bytes:
        raise EvidenceTooLargeError(limit_mb=megabytes(max_bytes), filename=filename)
    kind = sniff(data)
    if kind not in allowed:
        raise EvidenceTypeMismatchError(
            found=KIND_NAMES[kind], declared=declared_type, kind=kind, filename=filename
        )
    limits = zip_limits or ZipLimits()
    if kind in ZIP_KINDS:
        check_zip(data, limits)
    elif kind == "eml":
        _check_attachments(data, max_bytes, limits)
    return kind


def _check_attachments(data: bytes, max_bytes: int, limits: ZipLimits) -> None:
    """An e-mail is kept whole, so an archive attached to it must pass the guard as well."""
    _mail, problems = read_eml(data, max_bytes=max_bytes, zip_limits=limits)
    for problem in problems:
        if problem.code == UNSAFE_ATTACHMENT:
            raise EvidenceAttachmentUnsafeError(attachment=problem.params["name"])


def _text_kind(data: bytes) -> str:
    """XML, a JSON object, CSV or plain text; ``"unknown"`` for bytes that are not text."""
    text = _text_head(data)
    if text is None:
        return "unknown"
    start = text.lstrip("\ufeff \t\r\n")
    if _XML_START.match(start) and start[:5].lower() != "<html":
        return "xml"
    if start.startswith("{") and _is_json_object(data):
        return "json"
    return "csv" if _looks_like_csv(text, complete=len(data) <= _HEAD) else "text"


def _zip_kind(data: bytes) -> str:
    """OFD (``OFD.xml`` at the root), XLSX (``xl/`` parts) or a plain zip, by member names only."""
    found = entry_names(data, _MAX_ZIP_MEMBERS)  # the directory's records are counted first
    if found is None:  # damaged, or too many members to look at; the magic still says zip
        return "zip"
    names = set(found)
    if "OFD.xml" in names:
        return "ofd"
    if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
        return "xlsx"
    return "zip"


def _looks_like_mail(data: bytes) -> bool:
    """RFC 822 headers at the start (an mbox ``From `` line may precede them), ending in a blank line."""
    names: set[bytes] = set()
    for index, line in enumerate(data[:_HEAD].splitlines()[:200]):
        if not line:
            break
        if b"\x00" in line:
            return False
        if index == 0 and line.startswith(b"From "):
            continue
        if line[:1] in (b" ", b"\t"):  # a folded continuation of the previous header
            if not names:
                return False
            continue
        match = _HEADER_LINE.match(line)
        if match is None:
            return False
        names.add(match.group(1).lower())
    return len(names & _MAIL_HEADERS) >= 2


def _text_head(data: bytes) -> str | None:
    """The first 64 KiB as text (UTF-8, else GB18030; UTF-16 only with a BOM), or None."""
    complete = len(data) <= _HEAD
    head = data[:_HEAD]
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return _decode(head[len(bom) :], encoding, final=complete)
    for encoding in ("utf-8", "gb18030"):
        text = _decode(head, encoding, final=complete)
        if text is not None:
            return text
    return None


def _decode(head: bytes, encoding: str, *, final: bool) -> str | None:
    """Decode, tolerating a character cut at the 64 KiB boundary; control characters mean binary."""
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=final)
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else text


def _is_json_object(data: bytes) -> bool:
    if len(data) > _MAX_JSON_BYTES:
        return False
    try:
        return isinstance(json.loads(data), dict)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return False


def _looks_like_csv(text: str, *, complete: bool) -> bool:
    """At least two rows, most of them with the same number (≥ 2) of fields for one delimiter.

    Most, not all: a bank's export often starts with an account line above the table.
    """
    lines = text.splitlines()
    if not complete:
        lines = lines[:-1]  # the last line may be cut at the 64 KiB boundary
    rows = [line for line in lines[:_CSV_LINES] if line.strip()]
    if len(rows) < 2:
        return False
    for delimiter in ",\t;|":
        try:
            widths = Counter(len(row) for row in csv.reader(rows, delimiter=delimiter))
        except csv.Error:
            continue
        width, count = widths.most_common(1)[0]
        if width >= 2 and count >= 2 and count * 10 >= len(rows) * 6:
            return True
    return False
