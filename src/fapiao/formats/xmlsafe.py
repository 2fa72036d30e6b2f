"""Parsing an XML file from outside: bounded in size, depth and element count, no DTD, any encoding.

Every XML reader here (数电票, the legacy XML inside an OFD, XBRL, the OFD's own parts) parses
through :func:`parse_xml`, which returns the root element or one problem, never raising:

* at most ``max_bytes`` (5 MB by default: an invoice is a few KiB);
* decoded here by BOM, else the declared encoding (GBK and GB2312 read as their superset
  GB18030), else UTF-8 — expat itself reads no multi-byte Chinese encoding;
* counted by a streaming expat pass first: more than ``max_depth`` nested elements or
  ``max_elements`` in all, or any DTD (so no entity expansion, "billion laughs", and no external
  entity), stops the pass before a tree is built;
* then built by defusedxml with DTDs forbidden.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from fapiao.core.errors import FieldError, _


@dataclass(frozen=True)
class XmlLimits:
    max_bytes: int = 5 * 2**20
    max_depth: int = 64
    max_elements: int = 200_000


_DECLARED = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z][\w.:-]*)["']""")
_CHINESE = frozenset({"gbk", "gb2312", "gb18030", "cp936"})  # read all as GB18030, their superset


class _Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def parse_xml(data: bytes, limits: XmlLimits | None = None) -> tuple[Element | None, FieldError | None]:
    """The root element of ``data``, or None and the one problem that stopped it."""
    limits = limits or XmlLimits()
    if len(data) > limits.max_bytes:
        return None, FieldError(
            "", "too_large", _("The XML file is larger than {max} MB."), {"max": _mb(limits.max_bytes)}
        )
    text, problem = decode_xml(data)
    if text is None:
        return None, problem
    try:
        _count(text, limits)
        return SafeET.fromstring(text, forbid_dtd=True), None
    except (DefusedXmlException, _Refused) as error:
        return None, _refusal(error.code if isinstance(error, _Refused) else "forbidden_markup", limits)
    except (ParseError, expat.ExpatError) as error:
        line = getattr(error, "lineno", None) or getattr(error, "position", (0, 0))[0]
        column = getattr(error, "offset", None) or getattr(error, "position", (0, 0))[1]
        return None, _not_xml(line, column)
    except (ValueError, RecursionError):  # e.g. characters XML cannot hold
        return None, _not_xml(0, 0)


def _refusal(code: str, limits: XmlLimits) -> FieldError:
    if code == "too_deep":
        message = _("The XML file nests more than {max} elements deep; an invoice never does.")
        return FieldError("", "too_deep", message, {"max": limits.max_depth})
    if code == "too_many_elements":
        message = _("The XML file has more than {max} elements; it was not read.")
        return FieldError("", "too_many_elements", message, {"max": limits.max_elements})
    message = _("The XML file declares a DTD or entities, which an e-invoice never does; it was not read.")
    return FieldError("", "forbidden_markup", message)


def _not_xml(line: int, column: int) -> FieldError:
    message = _("The file is not well-formed XML (line {line}, column {column}).")
    return FieldError("", "not_xml", message, {"line": line, "column": column})


def decode_xml(data: bytes) -> tuple[str | None, FieldError | None]:
    """Text by BOM, else by the declared encoding, else UTF-8."""
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        declared = _DECLARED.match(data[:200])
        encoding = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        message = _("The XML file declares an unknown encoding, {encoding}.")
        return None, FieldError("", "unknown_encoding", message, {"encoding": encoding})
    try:
        return data.decode("gb18030" if codec in _CHINESE else codec), None
    except UnicodeDecodeError:
        message = _("The XML file is not valid {encoding} text.")
        return None, FieldError("", "bad_encoding", message, {"encoding": encoding})


def _count(text: str, limits: XmlLimits) -> None:
    """A streaming pass that refuses depth, size and DTDs before any tree is built."""
    depth = elements = 0

    def start(_name: str, _attributes: object) -> None:
        nonlocal depth, elements
        depth += 1
        elements += 1
        if depth > limits.max_depth:
            raise _Refused("too_deep")
        if elements > limits.max_elements:
            raise _Refused("too_many_elements")

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    def doctype(*_args: object) -> None:
        raise _Refused("forbidden_markup")

    parser = expat.ParserCreate(encoding="utf-8")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    parser.Parse(text.encode("utf-8", "surrogatepass"), True)


def local_key(name: str) -> str:
    """The comparable form of an element name: local part, no ``-``/``_``, case-folded."""
    local = name.rpartition("}")[2].rpartition(":")[2]
    return local.replace("-", "").replace("_", "").casefold()


def _mb(limit: int) -> int | float:
    whole, rest = divmod(limit, 2**20)
    return whole if rest == 0 else round(limit / 2**20, 1)
