"""One entry point for every invoice file: :func:`read_invoice_file` picks the reader by the bytes.

=============  ====================================================  ===========================
format         what it is                                            reader
=============  ====================================================  ===========================
einvoice_xml   数电票 XML (``EInvoice``)                               :mod:`.einvoice_xml`
legacy_xml     增值税电子发票 XML (发票代码 + 8-digit 号码)              :mod:`.einvoice_xml`
xbrl           财政部 电子凭证会计数据 XBRL instance                   :mod:`.xbrl`
ofd            OFD (zip): attachment, custom tags, page text          :mod:`.ofd`
pdf            PDF: text layer and QR code, cross-checked             :mod:`.pdf_invoice`
csv / xlsx     another system's export, with a named column mapping   :mod:`.table_invoices`
=============  ====================================================  ===========================

The file name is never trusted (a PDF called ``x.xml`` is a PDF), see :mod:`.sniff`.  Every reader
returns a :class:`~fapiao.formats.records.ReadResult` and none raises on bad input; this function
adds a last guard so that even a reader's own bug becomes a problem, not a traceback.
"""

from __future__ import annotations

from collections.abc import Callable

from fapiao.core.errors import FieldError, _
from fapiao.formats.einvoice_xml import fields_of, xml_format
from fapiao.formats.mapping import ColumnMapping
from fapiao.formats.ofd import read_ofd
from fapiao.formats.pdf_invoice import read_pdf
from fapiao.formats.records import ReadResult, file_result, single_result
from fapiao.formats.sniff import sniff
from fapiao.formats.table_invoices import read_table
from fapiao.formats.xbrl import is_xbrl, read_xbrl_tree
from fapiao.formats.xmlsafe import parse_xml

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read_invoice_file(data: bytes, *, mapping: ColumnMapping | None = None) -> ReadResult:
    """What the readers find in ``data``: its invoices and its problems; never raises."""
    try:
        return _read(data, mapping)
    except Exception:  # a reader's bug must not become a traceback for the user
        message = _("The file could not be read because of an internal error in the reader.")
        return file_result("unknown", [FieldError("", "reader_failed", message)])


def read_xml(data: bytes) -> ReadResult:
    """An XML file: 数电票, legacy or XBRL, decided by its root element."""
    root, problem = parse_xml(data)
    if root is None:
        return file_result("xml", [problem] if problem else [])
    if is_xbrl(root):
        return read_xbrl_tree(root)
    record, problems = fields_of(root)
    return single_result(xml_format(record), record, problems)


_READERS: dict[str, Callable[[bytes], ReadResult]] = {"pdf": read_pdf, "ofd": read_ofd, "xml": read_xml}


def _refusal(data: bytes) -> FieldError | None:
    if not data:
        return FieldError("", "empty", _("The file is empty."))
    if data.startswith(_OLE2):
        message = _("The file is password-protected or in an old Office format; save it as a plain .xlsx.")
        return FieldError("", "password_protected", message)
    return None


def _read(data: bytes, mapping: ColumnMapping | None) -> ReadResult:
    refusal = _refusal(data)
    if refusal is not None:
        return file_result("unknown", [refusal])
    kind = sniff(data)
    reader = _READERS.get(kind)
    if reader is not None:
        return reader(data)
    if kind in ("csv", "xlsx", "text", "zip") and mapping is not None:
        return read_table(data, mapping)
    if kind in ("csv", "xlsx"):
        message = _("A CSV or XLSX export is read with a column mapping; name one.")
        return file_result(kind, [FieldError("", "mapping_needed", message)])
    if kind == "zip":  # a damaged OFD or XLSX, or another archive: the OFD reader says which
        return read_ofd(data)
    message = _("The file is not an invoice format we read (数电票 XML, OFD, PDF, CSV or XLSX).")
    return file_result(kind, [FieldError("", "unsupported_format", message)])
