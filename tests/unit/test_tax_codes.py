"""The shipped selection of 税收分类编码 (issue 14): well-formed, searchable, its source named."""

from __future__ import annotations

from fapiao.core.identifiers import validate_tax_code
from fapiao.core.tax_codes import SOURCE, TAX_CODES, name_of, search


def test_every_shipped_code_passes_the_format_check_once():
    codes = [code for code, _name in TAX_CODES]
    assert len(codes) == len(set(codes))
    for code in codes:
        assert validate_tax_code(code) == code


def test_the_six_top_level_categories_are_there():
    assert [name_of(f"{digit}".ljust(19, "0")) for digit in "123456"] == [
        "货物",
        "劳务",
        "销售服务",
        "销售无形资产",
        "销售不动产",
        "未发生销售行为的不征税项目",
    ]


def test_search_by_name_and_by_code_prefix():
    assert ("3040201000000000000", "软件服务") in search("软件")
    assert [name for _c, name in search("３０４０２")] == [
        "信息技术服务",
        "软件服务",
        "电路设计及测试服务",
        "信息系统服务",
        "业务流程管理服务",
        "信息系统增值服务",
    ]
    assert search("没有这个名称") == []
    assert len(search("")) == len(TAX_CODES)


def test_a_code_outside_the_selection_has_no_name_but_is_still_valid():
    assert name_of("1090511010000000000") is None
    assert validate_tax_code("1090511010000000000") == "1090511010000000000"


def test_the_source_is_named():
    assert SOURCE == "国家税务总局《商品和服务税收分类编码表》"
