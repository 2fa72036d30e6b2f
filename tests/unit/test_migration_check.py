"""The comparison behind `fapiao migrate`'s data check, and its Chinese message (no database)."""

from __future__ import annotations

from fapiao.ops.migration_check import MAX_LISTED, compare, describe

USCC = "91110108MA01ABCD84"
BEFORE = {
    USCC: {"明细 2026-11 税率 0.06 金额": 100000, "账本 长度": 5},
    "staff": {"审计日志 长度": 9},
}


def test_the_same_figures_are_no_change():
    assert compare(BEFORE, {owner: dict(figures) for owner, figures in BEFORE.items()}) == []


def test_changed_missing_and_new_figures_are_changes():
    after = {USCC: {"明细 2026-11 税率 0.06 金额": 1000, "明细 2026-11 税率 0.13 金额": 5}}
    changes = {(c.owner, c.measure): (c.before, c.after) for c in compare(BEFORE, after)}
    assert changes == {
        (USCC, "明细 2026-11 税率 0.06 金额"): (100000, 1000),
        (USCC, "明细 2026-11 税率 0.13 金额"): (None, 5),
        (USCC, "账本 长度"): (5, None),
        ("staff", "审计日志 长度"): (9, None),
    }


def test_the_message_names_the_merchant_the_migrations_and_each_figure():
    after = {USCC: {"明细 2026-11 税率 0.06 金额": 1000, "账本 长度": 5}, "staff": {"审计日志 长度": 9}}
    message = describe(
        compare(BEFORE, after), names={USCC: "北京示例科技有限公司"}, migrations=["invoices.0006_x"]
    )
    assert "商户 北京示例科技有限公司（91110108MA01ABCD84）：1 项不一致" in message
    assert "明细 2026-11 税率 0.06 金额：迁移前 100000，迁移后 1000" in message
    assert "invoices.0006_x" in message and "备份恢复" in message
    assert "运营人员审计日志" not in message  # unchanged


def test_a_long_list_is_cut_with_a_count():
    before = {USCC: {f"明细 2026-{month:02d} 税率 0.06 行数": 1 for month in range(1, 13)}}
    before[USCC].update({f"明细 2025-{month:02d} 税率 0.13 行数": 1 for month in range(1, 13)})
    changes = compare(before, {USCC: {}})
    assert len(changes) == 24
    message = describe(changes, names={}, migrations=[])
    assert message.count("迁移后 （无）") == MAX_LISTED
    assert f"另有 {24 - MAX_LISTED} 项" in message
