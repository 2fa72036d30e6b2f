"""An e-mail (``.eml``) that staff upload to a recovery case: sender, text and attachments.

:func:`read_eml` returns ``(message, problems)`` and never raises on bad input: an empty or
oversize file, bytes that are no mail at all, a damaged part or an unknown character set is a
:class:`MailProblem`, and every attachment that decodes cleanly is still returned.  Chinese
mail clients (Foxmail, QQ mail, Outlook on a Chinese Windows) label GBK text ``gb2312``, put
RFC 2047 words inside quoted filenames and send raw 8-bit headers, so headers and filenames are
decoded here rather than by the stdlib's header objects, with GB2312/GBK read as GB18030 (the
superset).  Nothing here touches the database.
"""

from __future__ import annotations

import binascii
import email
import email.errors
import email.message
import email.policy
import email.utils
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from fapiao.core.errors import _
from fapiao.formats.safezip import UnsafeZipError, ZipLimits, check_zip, looks_like_zip

MAX_DEPTH = 12  # nested multiparts and forwarded mails; deeper parts are skipped
MAX_NAME = 200
MAX_PARTS = 1000  # lines starting "--" (boundaries): the parser takes seconds per 10,000 parts
GB = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "euc-cn": "gb18030"}
MAIL_HEADERS = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type", "received"}
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
BASE64_DEFECTS = (
    email.errors.InvalidBase64PaddingDefect,
    email.errors.InvalidBase64CharactersDefect,
    email.errors.InvalidBase64LengthDefect,
)
UNDECODABLE = _("Some text in the e-mail cannot be decoded and may show wrongly.")
TOO_MANY_PARTS = _("The e-mail has too many parts to read.")
BAD_PART = _("A part of the e-mail cannot be read and was left out.")
UNSAFE_ATTACHMENT = "unsafe_attachment"
UNSAFE_MESSAGE = _("The attachment {name} is an unsafe archive (a zip bomb or damaged) and was left out.")
_TYPES = mimetypes.MimeTypes()  # the built-in table only, not the machine's /etc/mime.types


@dataclass(frozen=True)
class MailProblem:
    """Something wrong with the mail or one of its parts; ``message`` is an English msgid."""

    code: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, translate: Any = None) -> str:
        text = translate(self.message) if translate else self.message
        return text.format(**self.params) if self.params else text


@dataclass(frozen=True)
class MailAttachment:
    filename: str  # sanitised: no directories or control characters, never empty
    content_type: str
    data: bytes


@dataclass(frozen=True)
class MailMessage:
    sender_address: str  # lower-cased addr-spec, "" when the mail names none
    sender_name: str
    subject: str
    sent_at: datetime | None  # aware, UTC
    message_id: str
    body_text: str
    attachments: tuple[MailAttachment, ...]


def read_eml(
    data: bytes, *, max_bytes: int, max_attachments: int = 50, zip_limits: ZipLimits | None = None
) -> tuple[MailMessage | None, list[MailProblem]]:
    """Read one uploaded mail; ``None`` only when the file is not a readable mail at all.

    A file over ``max_bytes`` is not parsed; attachments past ``max_attachments`` are left out
    with a problem, and so is an attached archive that fails the upload guard under
    ``zip_limits`` (problem code :data:`UNSAFE_ATTACHMENT`; the defaults of :class:`ZipLimits`
    when not given).  Problems are returned once each, in the order they were met.
    """
    if not data.strip():
        return None, [MailProblem("empty", _("The file is empty."))]
    if len(data) > max_bytes:
        size = {"max": f"{max_bytes / 2**20:g}"}
        return None, [MailProblem("too_large", _("The file is larger than {max} MB."), size)]
    if data.count(b"\n--") > MAX_PARTS:
        return None, [MailProblem("too_many_parts", TOO_MANY_PARTS)]
    problems: list[MailProblem] = []
    try:
        root = email.message_from_bytes(data, policy=email.policy.default)
        headers = {name.lower(): value for name, value in reversed(list(root.raw_items()))}
        if not MAIL_HEADERS & headers.keys():
            return None, [MailProblem("not_email", _("The file is not an e-mail (.eml)."))]
        name, address = email.utils.parseaddr(_unfold(headers.get("from", "")))
        address = address.strip().lower() if "@" in address else ""
        if not address:
            message = _("The e-mail has no sender address; choose the merchant user yourself.")
            problems.append(MailProblem("no_sender", message))
        attachments: list[MailAttachment] = []
        _collect(root, 0, attachments, problems, (max_attachments, zip_limits or ZipLimits()))
        found = MailMessage(
            sender_address=address,
            sender_name=_header_text(name, problems),
            subject=_header_text(headers.get("subject", ""), problems),
            sent_at=_sent_at(headers.get("date", ""), problems),
            message_id=" ".join(_unfold(headers.get("message-id", "")).split()),
            body_text=_body_text(root, problems),
            attachments=tuple(attachments),
        )
    except Exception:  # the parser's own surprises are one problem, never a traceback
        return None, [MailProblem("unreadable", _("The e-mail cannot be read."))]
    unique = {(p.code, p.message, tuple(sorted(p.params.items()))): p for p in problems}
    return found, list(unique.values())


def _collect(
    part: email.message.Message,
    depth: int,
    out: list[MailAttachment],
    problems: list[MailProblem],
    limits: tuple[int, ZipLimits],
) -> None:
    """Attachments of ``part`` in mail order, descending into multiparts and forwarded mails."""
    if depth > MAX_DEPTH:
        message = _("The e-mail nests parts or forwarded mails too deeply; the innermost were skipped.")
        problems.append(MailProblem("too_deep", message))
        return
    try:
        children = _children(part, problems)
        if children is not None:
            for child in children:
                _collect(child, depth + 1, out, problems, limits)
            return
        filename = _filename(part, problems)
        content_type = part.get_content_type()
        if part.get_content_disposition() != "attachment" and (
            not filename or content_type in ("text/plain", "text/html")
        ):
            return  # the body, or an inline picture with no name (a signature logo)
        if len(out) >= limits[0]:
            message = _("The e-mail has more than {max} attachments; only the first {max} were taken.")
            problems.append(MailProblem("too_many_attachments", message, {"max": limits[0]}))
            return
        data = _payload(part)
        fallback = f"attachment-{len(out) + 1}{_TYPES.guess_extension(content_type) or '.bin'}"
        name = _safe_name(filename) or fallback
        if any(isinstance(defect, BASE64_DEFECTS) for defect in part.defects):
            message = _("The attachment {name} is damaged and was left out.")
            problems.append(MailProblem("damaged_attachment", message, {"name": name}))
        elif not _safe_archive(data, limits[1]):
            problems.append(MailProblem(UNSAFE_ATTACHMENT, UNSAFE_MESSAGE, {"name": name}))
        else:
            out.append(MailAttachment(name, content_type, data))
    except Exception:  # one unreadable part never hides the others
        problems.append(MailProblem("bad_part", BAD_PART))


def _safe_archive(data: bytes, limits: ZipLimits) -> bool:
    """True unless ``data`` is a zip (an XLSX, DOCX, OFD…) that fails the upload guard."""
    if not looks_like_zip(data):
        return True
    try:
        check_zip(data, limits)
    except UnsafeZipError:
        return False
    return True


def _children(part: email.message.Message, problems: list[MailProblem]) -> list[email.message.Message] | None:
    """The parts inside a multipart or a forwarded mail; ``None`` for a leaf."""
    if part.get_content_type() == "message/rfc822" and not part.is_multipart():
        raw = _payload(part)  # a forward wrongly base64-encoded: parse its bytes
        if raw.count(b"\n--") > MAX_PARTS:
            problems.append(MailProblem("too_many_parts", TOO_MANY_PARTS))
            return []
        return [email.message_from_bytes(raw, policy=email.policy.default)]
    if part.is_multipart():  # a multipart, or a parsed message/rfc822 holding one message
        return [child for child in part.get_payload() if isinstance(child, email.message.Message)]
    return None


def _payload(part: email.message.Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _filename(part: email.message.Message, problems: list[MailProblem]) -> str:
    """The part's filename from Content-Disposition or else Content-Type ``name``, decoded.

    The raw headers go through a compat32 message, whose parameter parser returns RFC 2231
    values undecoded, so their charset (and RFC 2047 words in quoted names) is decoded here.
    """
    holder = email.message.Message()
    for name, raw in part.raw_items():
        if name.lower() in ("content-disposition", "content-type"):
            holder[name] = _unfold(str(raw))
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = holder.get_param(param, None, header=header)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded as latin-1)
            return _decode(str(value[2]).encode("latin-1", "replace"), value[0] or "utf-8", problems)
        if value:
            return _header_text(str(value), problems)
    return ""


def _safe_name(name: str) -> str:
    """Only the last path segment, without control or bidi characters; Chinese is kept."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if not unicodedata.category(char).startswith("C"))
    name = name.strip().lstrip(".").strip()
    if len(name) > MAX_NAME:
        stem, dot, suffix = name.rpartition(".")
        name = (
            stem[: MAX_NAME - len(suffix) - 1] + dot + suffix if dot and len(suffix) < 16 else name[:MAX_NAME]
        )
    return name


def _unfold(raw: str) -> str:
    """A header value on one line, its raw 8-bit bytes (kept as surrogates) decoded as text."""
    text = "".join(str(raw).splitlines())
    if any("\udc80" <= char <= "\udcff" for char in text):
        text = _decode(text.encode("utf-8", "surrogateescape"), None, [])
    return text


def _header_text(raw: str, problems: list[MailProblem]) -> str:
    """Decode RFC 2047 words; adjacent words of one charset are joined first (some mailers
    split a character's bytes between two words) and the space between them dropped."""
    text = _unfold(raw)
    out: list[str] = []
    run, run_charset, last = b"", "", 0
    for match in ENCODED_WORD.finditer(text):
        gap = text[last : match.start()]
        charset = match[1].split("*")[0].lower()  # RFC 2231 adds *language
        if gap and not (gap.isspace() and run_charset):
            out.append(_decode(run, run_charset, problems) + gap if run_charset else gap)
            run, run_charset = b"", ""
        elif run_charset and charset != run_charset:
            out.append(_decode(run, run_charset, problems))
            run = b""
        run, run_charset, last = run + _word_bytes(match[2], match[3]), charset, match.end()
    out.append((_decode(run, run_charset, problems) if run_charset else "") + text[last:])
    return "".join(out).strip()


def _word_bytes(encoding: str, encoded: str) -> bytes:
    raw = encoded.encode("ascii", "replace")
    try:
        if encoding in "bB":
            return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
        return binascii.a2b_qp(raw, header=True)
    except binascii.Error:
        return raw


def _decode(raw: bytes, charset: str | None, problems: list[MailProblem]) -> str:
    """Text in the declared charset, else UTF-8, else GB18030; latin-1 or U+FFFD as a last resort."""
    declared = (charset or "ascii").strip().strip("\"'").lower()
    declared = GB.get(declared, declared)
    try:
        return raw.decode(declared)
    except UnicodeDecodeError:
        usable = "gb18030" if declared == "ascii" else declared
    except (LookupError, ValueError):  # unknown, or not a text codec ("base64", "undefined")
        usable = "latin-1"
        message = _("The e-mail uses an unknown character set {charset}; some text may show wrongly.")
        problems.append(MailProblem("unknown_charset", message, {"charset": declared[:40]}))
    for fallback in ("utf-8", "gb18030"):
        try:
            return raw.decode(fallback)
        except UnicodeDecodeError:
            continue
    problems.append(MailProblem("undecodable_text", UNDECODABLE))
    try:
        return raw.decode(usable, "replace")
    except (LookupError, ValueError):
        return raw.decode("latin-1")


def _sent_at(raw: str, problems: list[MailProblem]) -> datetime | None:
    if not raw.strip():
        return None
    try:
        when = email.utils.parsedate_to_datetime(_unfold(raw).strip())
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        problems.append(MailProblem("bad_date", _("The e-mail's date cannot be read.")))
        return None


def _body_text(root: email.message.Message, problems: list[MailProblem]) -> str:
    """The plain text of the mail's own body (not of forwarded mails); HTML only if no plain."""
    try:
        part = root.get_body(("plain", "html")) if isinstance(root, email.message.EmailMessage) else None
        if part is None:
            return ""
        text = _decode(_payload(part), part.get_content_charset(), problems)
        if any(isinstance(defect, BASE64_DEFECTS) for defect in part.defects):
            problems.append(MailProblem("undecodable_text", UNDECODABLE))
        if part.get_content_type() != "text/html":
            return text.replace("\r\n", "\n").strip()
        reader = _HtmlText()
        reader.feed(text)
        reader.close()
    except Exception:  # as for an attachment: the rest of the mail is still read
        problems.append(MailProblem("bad_part", BAD_PART))
        return ""
    lines = (" ".join(line.split()) for line in "".join(reader.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _HtmlText(HTMLParser):
    """Crude HTML to text: a line break at block tags, no script or style."""

    BLOCKS = frozenset({"br", "p", "div", "tr", "li", "table", "blockquote", "h1", "h2", "h3", "h4"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)
