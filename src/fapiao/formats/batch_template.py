"""The downloadable batch-issuing template (XLSX with an example sheet, or CSV): see
:mod:`fapiao.formats.batch` for the columns and the reader."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from fapiao.formats.batch import COLUMNS, EXAMPLE, HEADER

NOTES = [
    "每行开具一张发票（一行项目）。第一个工作表的第 1 行是表头，请勿修改。",
    "必填：购买方名称、项目名称、数量、单价、税率。",
    "发票种类：普通发票 或 专用发票（留空为普通发票）。专用发票必须填写购买方纳税人识别号。",
    "金额可写 1,000.00、1000 或 １０００；税率可写 6%、0.06、免税、不征税。",
    "单价含税：是 / 否（留空为否）。含税单价按 单价 ÷（1 + 税率）换算，四舍五入保留 8 位小数。",
    "纳税人识别号和税收分类编码请按文本填写，以免表格软件丢失位数。",
]


def write_template(kind: str) -> bytes:
    """The downloadable template: the header row (and, in XLSX, a second sheet with an example)."""
    if kind == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerow(HEADER)
        return buffer.getvalue().encode("utf-8-sig")

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "发票 invoices"
    sheet.append(HEADER)
    for index, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = 22
        if column.text:  # a column style: cells typed later are text, and none is created now
            sheet.column_dimensions[letter].number_format = "@"
    example = workbook.create_sheet("示例 example")
    example.append(HEADER)
    example.append(EXAMPLE)
    example.append([])
    for note in NOTES:
        example.append([note])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
