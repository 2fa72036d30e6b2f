"""税收分类编码: the codes the issue form and the product catalogue offer to pick from, with search.

No package ships the table, so this module ships a selection of it as data: the top-level
categories and the codes common services use, from the public table of the State Taxation
Administration, 国家税务总局《商品和服务税收分类编码表》.  A code is the table's hierarchical code padded
with zeros to 19 digits.  Any other 19-digit code is accepted too: it is checked for its format
only (:func:`fapiao.core.identifiers.validate_tax_code`), since the full table is not shipped.

Checked on 2026-12-06 against the codes independent public invoicing integrations send for the same
services (软件服务 3040201, 经纪代理服务 3040802, 企业管理服务 3040801, 咨询服务 3040603, 餐饮服务
3070401, 住宿服务 3070402): they agree.  The rest follow the table's published hierarchy.
"""

from __future__ import annotations

import unicodedata
from typing import Final

SOURCE: Final = "国家税务总局《商品和服务税收分类编码表》"


def _code(prefix: str) -> str:
    return prefix.ljust(19, "0")


_TABLE: Final = (
    ("1", "货物"),
    ("101", "农、林、牧、渔业类产品"),
    ("2", "劳务"),
    ("201", "加工劳务"),
    ("202", "修理修配劳务"),
    ("3", "销售服务"),
    ("301", "交通运输服务"),
    ("302", "邮政服务"),
    ("303", "电信服务"),
    ("304", "现代服务"),
    ("30401", "研发和技术服务"),
    ("30402", "信息技术服务"),
    ("3040201", "软件服务"),
    ("3040202", "电路设计及测试服务"),
    ("3040203", "信息系统服务"),
    ("3040204", "业务流程管理服务"),
    ("3040205", "信息系统增值服务"),
    ("30403", "文化创意服务"),
    ("3040301", "设计服务"),
    ("3040303", "广告服务"),
    ("3040304", "会议展览服务"),
    ("30404", "物流辅助服务"),
    ("30405", "租赁服务"),
    ("30406", "鉴证咨询服务"),
    ("3040603", "咨询服务"),
    ("30407", "广播影视服务"),
    ("30408", "商务辅助服务"),
    ("3040801", "企业管理服务"),
    ("3040802", "经纪代理服务"),
    ("3040803", "人力资源服务"),
    ("3040804", "安全保护服务"),
    ("305", "建筑服务"),
    ("306", "金融服务"),
    ("307", "生活服务"),
    ("30701", "文化体育服务"),
    ("30702", "教育医疗服务"),
    ("30703", "旅游娱乐服务"),
    ("30704", "餐饮住宿服务"),
    ("3070401", "餐饮服务"),
    ("3070402", "住宿服务"),
    ("30705", "居民日常服务"),
    ("4", "销售无形资产"),
    ("5", "销售不动产"),
    ("6", "未发生销售行为的不征税项目"),
)

#: (19-digit code, name), in the table's order.
TAX_CODES: Final[tuple[tuple[str, str], ...]] = tuple((_code(prefix), name) for prefix, name in _TABLE)
_NAMES: Final = dict(TAX_CODES)


def name_of(code: str) -> str | None:
    """The shipped name of ``code``, or None for a code outside the selection."""
    return _NAMES.get(code)


def search(text: str, *, limit: int = 50) -> list[tuple[str, str]]:
    """Codes whose name contains ``text`` or whose code starts with its digits (full-width digits
    read alike); everything for an empty text."""
    query = "".join(unicodedata.normalize("NFKC", text).split())
    if not query:
        return list(TAX_CODES[:limit])
    if query.isascii() and query.isdigit():
        return [(c, n) for c, n in TAX_CODES if c.startswith(query)][:limit]
    return [(c, n) for c, n in TAX_CODES if query in n][:limit]
