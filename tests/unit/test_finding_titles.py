"""Every finding code has one name for people (issue 14): the CLI, the pages and the mails use it."""

from __future__ import annotations

import re

from fapiao.core.ledger_findings import TITLES, FindingCode, title_zh

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_finding_code_is_named_in_chinese_and_english() -> None:
    assert set(TITLES) == {str(code) for code in FindingCode}
    for code, (english, chinese) in TITLES.items():
        assert english and not CJK.search(english), code
        assert CJK.search(chinese), code
    assert len({chinese for _english, chinese in TITLES.values()}) == len(TITLES)  # no two alike


def test_the_names_the_issue_asks_for() -> None:
    assert title_zh("entry_without_invoice") == "账本有记录但发票缺失"
    assert title_zh("invoice_mismatch") == "发票与账本不一致"
    assert title_zh("no_such_code") == "no_such_code"
