"""``fapiao read FILE... [--json] [--mapping MAPPING.json] [--lang zh|en]``: what the readers find.

It runs before Django is set up (:mod:`fapiao.cli` hands off to :func:`main`) and never opens the
database: each file goes through :func:`fapiao.formats.readers.read_invoice_file`, and its invoices
are printed in the API's invoice shape with its problems.  Problem messages are the readers' msgids
translated with the project's own catalogue (``locale/*/LC_MESSAGES/django.mo``, read by the
standard library's :mod:`gettext`), so the command needs no settings.

Exit status: 0 every file read without a problem, 1 a problem in some file, 2 a usage error
(a missing or unreadable file, a bad mapping file), in which case nothing is read.
"""

from __future__ import annotations

import argparse
import gettext
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from fapiao.core.errors import FieldError, _
from fapiao.formats.mapping import ColumnMapping
from fapiao.formats.readers import read_invoice_file
from fapiao.formats.records import file_result

#: The largest file read (a CSV/XLSX export's own limit); a larger one is a problem, not a read.
MAX_READ_BYTES = 64 * 2**20
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
LANGUAGES = {"zh": "zh_Hans", "en": "en"}

FORMAT_NAMES = {
    "einvoice_xml": "数电票 XML",
    "legacy_xml": "增值税电子发票 XML",
    "xbrl": "电子凭证会计数据 XBRL",
    "ofd": "OFD",
    "pdf": "PDF",
    "csv": "CSV",
    "xlsx": "XLSX",
    "xml": "XML",
}


class UsageError(Exception):
    """A file that cannot be read at all, or a bad option: exit status 2."""


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(prog="fapiao read", description="读取发票文件，不连接数据库。")
    parser.add_argument("files", nargs="+", metavar="FILE", help="发票文件：XML、OFD、PDF、CSV 或 XLSX")
    parser.add_argument("--json", action="store_true", help="以 JSON 输出")
    parser.add_argument("--mapping", metavar="MAPPING.json", help="CSV/XLSX 的列映射文件")
    parser.add_argument("--lang", choices=sorted(LANGUAGES), default="zh", help="问题说明的语言")
    try:
        args = parser.parse_intermixed_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        mapping = load_mapping(args.mapping) if args.mapping else None
        paths = [checked_path(name) for name in args.files]
    except UsageError as refused:
        print(f"fapiao read：{refused}", file=err)
        return 2
    translate = translator(args.lang)
    reports = [read_file(path, mapping=mapping, translate=translate) for path in paths]
    shown = (
        json.dumps({"files": reports}, ensure_ascii=False, indent=2)
        if args.json
        else "\n".join(summary(report) for report in reports)
    )
    try:
        print(shown, file=out)
    except BrokenPipeError:  # `fapiao read ... | head`: the reader of the output left early
        sys.stderr.close()
    return 1 if any(report["problems"] for report in reports) else 0


def checked_path(name: str) -> Path:
    path = Path(name)
    if not path.exists():
        raise UsageError(f"文件 {name} 不存在。")
    if not path.is_file():
        raise UsageError(f"{name} 不是普通文件（目录或设备不能读取）。")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UsageError(f"无法打开文件 {name}：{exc.strerror}。") from exc
    return path


def load_mapping(name: str) -> ColumnMapping:
    """A column mapping saved as JSON (``ColumnMapping.as_dict``); a bad one is a usage error."""
    try:
        data = json.loads(Path(name).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"无法读取列映射文件 {name}：{exc.strerror}。") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"列映射文件 {name} 不是 UTF-8 编码的 JSON。") from exc
    if not isinstance(data, dict):
        raise UsageError(f"列映射文件 {name} 应是一个 JSON 对象。")
    mapping, problems = ColumnMapping.from_dict(data)
    if mapping is None:
        shown = "；".join(problem.render(translator("zh")) for problem in problems)
        raise UsageError(f"列映射文件 {name} 有误：{shown}")
    return mapping


def translator(lang: str) -> Callable[[str], str]:
    catalogue = gettext.translation(
        "django", localedir=str(LOCALE_DIR), languages=[LANGUAGES[lang]], fallback=True
    )
    return catalogue.gettext


def read_file(
    path: Path, *, mapping: ColumnMapping | None, translate: Callable[[str], str]
) -> dict[str, Any]:
    """One file's report: its name, SHA-256, format, invoices (API shape) and problems."""
    size = path.stat().st_size
    if size > MAX_READ_BYTES:
        message = _("The file is larger than {max} MB.")
        too_large = FieldError("", "too_large", message, {"max": MAX_READ_BYTES // 2**20})
        data, result = b"", file_result("unknown", [too_large])
    else:
        data = path.read_bytes()
        result = read_invoice_file(data, mapping=mapping)
    report: dict[str, Any] = {"file": str(path), "sha256": hashlib.sha256(data).hexdigest() if data else None}
    report.update(result.as_json(translate))
    return report


def summary(report: dict[str, Any]) -> str:
    """A file's report as a few lines of Chinese for a person at a terminal."""
    invoices, problems = report["invoices"], report["problems"]
    shown_format = FORMAT_NAMES.get(report["format"], "无法识别的格式")
    verdict = f"{len(problems)} 个问题" if problems else "没有问题"
    lines = [f"{report['file']}：{shown_format}，{len(invoices)} 张发票，{verdict}"]
    for index, invoice in enumerate(invoices):
        lines.extend(_invoice_lines(index, invoice))
        lines.extend(_problem_lines([p for p in problems if p.get("record") == index]))
    lines.extend(_problem_lines([p for p in problems if p.get("record") is None], heading="  文件的问题："))
    return "\n".join(lines)


def _invoice_lines(index: int, invoice: dict[str, Any]) -> list[str]:
    colour = "红字" if invoice.get("colour") == "red" else "蓝字"
    seller, buyer = invoice["seller"], invoice["buyer"]
    shown = [
        f"  第 {index + 1} 张：{colour}发票 {_or_dash(invoice['number'])}，"
        f"开票日期 {_or_dash(invoice['issued_on'])}",
        f"    销售方：{_party(seller)}",
        f"    购买方：{_party(buyer)}",
        f"    金额 {_yuan(invoice['total_amount'])}，税额 {_yuan(invoice['total_tax'])}，"
        f"价税合计 {_yuan(invoice['total_with_tax'])}，{len(invoice['lines'])} 行明细",
    ]
    if invoice.get("original_number"):
        shown.append(f"    对应蓝字发票：{invoice['original_number']}")
    return shown


def _problem_lines(problems: list[dict[str, Any]], *, heading: str = "    问题：") -> list[str]:
    if not problems:
        return []
    shown = [heading]
    for problem in problems:
        where = f"（{problem['field']}）" if problem.get("field") else ""
        row = f"第 {problem['row']} 行：" if problem.get("row") is not None else ""
        shown.append(f"      - {row}{problem['message']}{where} [{problem['code']}]")
    return shown


def _party(party: dict[str, Any]) -> str:
    tax_id = f"（{party['tax_id']}）" if party.get("tax_id") else ""
    return f"{_or_dash(party.get('name'))}{tax_id}"


def _yuan(value: str | None) -> str:
    return f"¥{value}" if value is not None else "—"


def _or_dash(value: object) -> str:
    return str(value) if value not in (None, "") else "—"
