"""Read an invoice from the text printed on its form: a PDF's text layer, an OFD's page text.

The 电子发票 form prints labelled fields (发票号码：, 开票日期：, the buyer's and then the seller's
名称： and 统一社会信用代码/纳税人识别号：, 合计, 价税合计（小写）, 备注) and a table of lines under a
header row starting with 项目名称 (货物或应税劳务、服务名称 on the older forms).  Each line row
is read from the right, where its columns are unambiguous: 税额, 税率/征收率, 金额, then 单价 and
数量 when they are numbers; the first word is the item's name and whatever is between is 规格型号
and 单位.  A row that is none of these continues the name above it (a long name wraps); a row
that cannot be read is a problem.  The lines are then added up against the totals like every
other reader's (:func:`fapiao.formats.records.check_record`).

Text positions are the extractor's business: this module reads text lines, each the words of one
printed row in reading order, separated by spaces.
"""

from __future__ import annotations

import dataclasses
import re

from fapiao.core.errors import FieldError, InvalidValueError, _
from fapiao.formats.amounts import fen_from_text
from fapiao.formats.einvoice_xml import blue_named_in, normalise_rate, parse_date
from fapiao.formats.records import InvoiceLine, InvoiceRecord, check_record

_NUMBER = re.compile(r"发\s*票\s*号\s*码\s*[:：]\s*(\d{8,20})")
_CODE = re.compile(r"发\s*票\s*代\s*码\s*[:：]\s*(\d{10,12})")
_DATE = re.compile(
    r"开\s*票\s*日\s*期\s*[:：]\s*(\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|\d{4}-\d{1,2}-\d{1,2})"
)
_CHECK = re.compile(r"校\s*验\s*码\s*[:：]\s*([\d ]{20,24})")
_NAME = re.compile(r"名\s*称\s*[:：]\s*(\S*)")
_TAX_ID = re.compile(r"纳税人识别号\s*[:：]\s*([0-9A-Za-z]{15,20})?")
_TOTALS = re.compile(r"^\s*合\s*计\s+[¥￥]?\s*(-?[\d.]+)\s+[¥￥]?\s*(-?[\d.]+|\*\*\*)", re.MULTILINE)
_NO_TAX = "***"  # the tax column of an exempt or untaxed line (免税, 不征税): no tax
_TOTAL_WITH_TAX = re.compile(r"[（(]\s*小\s*写\s*[）)]\s*[¥￥]?\s*(-?[\d.]+)")
_REMARK = re.compile(r"^\s*备\s*注\s*(.*)$", re.MULTILINE)
_TABLE_HEAD = re.compile(r"^\s*(项目名称|货物或应税劳务)")
_TABLE_END = re.compile(r"^\s*(合\s*计|价税合计)")
_MONEY_WORD = re.compile(r"-?\d+(\.\d+)?")
_RATE_WORD = re.compile(r"(-?\d+(\.\d+)?%|免税|不征税|\*\*\*)")
_MIN_LINE_WORDS = 4  # name, amount, rate, tax


def read_form_text(text: str) -> tuple[InvoiceRecord | None, list[FieldError]]:
    """The invoice the form's text shows (``None`` when it shows none) and every problem met."""
    number = _search(_NUMBER, text)
    if number is None and _search(_TOTAL_WITH_TAX, text) is None:
        message = _("The text of the file does not show an invoice (no 发票号码 and no 价税合计).")
        return None, [FieldError("", "not_invoice_text", message)]
    problems: list[FieldError] = []
    names = _NAME.findall(text)
    tax_ids = [found.upper() or None for found in _TAX_ID.findall(text)]
    totals = _TOTALS.search(text)
    issued = _search(_DATE, text)
    issued_on = parse_date(re.sub(r"\s", "", issued)) if issued else None
    for field, value in (("number", number), ("issued_on", issued_on)):
        if value is None:
            problems.append(
                FieldError(field, "missing", _("The form's text has no {field}."), {"field": field})
            )
    remark = (_search(_REMARK, text) or "").strip() or None
    original_code, original_number = blue_named_in(remark)
    record = InvoiceRecord(
        number=number,
        issued_on=issued_on,
        seller_tax_id=tax_ids[1] if len(tax_ids) > 1 else None,
        seller_name=names[1] or None if len(names) > 1 else None,
        buyer_tax_id=tax_ids[0] if tax_ids else None,
        buyer_name=names[0] or None if names else None,
        total_amount_fen=_money("total_amount_fen", totals.group(1) if totals else None, problems),
        total_tax_fen=_money("total_tax_fen", totals.group(2) if totals else None, problems),
        total_with_tax_fen=_money("total_with_tax_fen", _search(_TOTAL_WITH_TAX, text), problems),
        lines=tuple(_lines(text, problems)),
        kind="special" if "专用发票" in text else ("ordinary" if "普通发票" in text else None),
        colour="red" if ("红字发票" in text or "销项负数" in text) else None,
        remark=remark,
        original_number=original_number,
        original_code=original_code,
        code=_search(_CODE, text),
        check_code=(_search(_CHECK, text) or "").replace(" ", "") or None,
    )
    for field in ("seller_name", "seller_tax_id", "buyer_name", "total_amount_fen", "total_tax_fen"):
        if getattr(record, field) is None:
            problems.append(
                FieldError(field, "missing", _("The form's text has no {field}."), {"field": field})
            )
    problems.extend(check_record(record))
    return record, problems


def _lines(text: str, problems: list[FieldError]) -> list[InvoiceLine]:
    rows = text.splitlines()
    start = next((index for index, row in enumerate(rows) if _TABLE_HEAD.match(row)), None)
    if start is None:
        return []
    lines: list[InvoiceLine] = []
    for row in rows[start + 1 :]:
        if _TABLE_END.match(row):
            break
        words = row.split()
        if not words or _TABLE_HEAD.match(row):  # a long invoice repeats the header row on every page
            continue
        line = _line(words, len(lines), problems)
        if line is not None:
            lines.append(line)
        elif lines and not any(_MONEY_WORD.fullmatch(word) for word in words):
            last = lines[-1]
            lines[-1] = dataclasses.replace(last, name=(last.name or "") + "".join(words))
        else:
            message = _("A line of the invoice could not be read: {text}")
            problems.append(FieldError(f"lines.{len(lines)}", "line_unreadable", message, {"text": row[:80]}))
    return lines


def _line(words: list[str], position: int, problems: list[FieldError]) -> InvoiceLine | None:
    if len(words) < _MIN_LINE_WORDS or not _RATE_WORD.fullmatch(words[-2]):
        return None
    if not ((_MONEY_WORD.fullmatch(words[-1]) or words[-1] == _NO_TAX) and _MONEY_WORD.fullmatch(words[-3])):
        return None
    rest = words[:-3]
    numbers: list[str] = []
    while len(rest) > 1 and len(numbers) < 2 and _MONEY_WORD.fullmatch(rest[-1]):
        numbers.insert(0, rest.pop())
    quantity, unit_price = (numbers if len(numbers) == 2 else [None, *numbers]) if numbers else (None, None)
    name, *middle = rest
    spec, unit = (middle[0], middle[-1]) if len(middle) >= 2 else (None, middle[0] if middle else None)
    return InvoiceLine(
        name=name,
        quantity=quantity,
        unit_price=unit_price,
        amount_fen=_money(f"lines.{position}.amount_fen", words[-3], problems),
        tax_rate=normalise_rate(words[-2]),
        tax_fen=_money(f"lines.{position}.tax_fen", words[-1], problems),
        spec=spec,
        unit=unit,
    )


def _money(field: str, text: str | None, problems: list[FieldError]) -> int | None:
    if text is None:
        return None
    if text == _NO_TAX:
        return 0
    try:
        return fen_from_text(text, currency_sign=True)
    except InvalidValueError as error:
        problems.append(error.at(field))
        return None


def _search(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return found.group(1) if found else None
