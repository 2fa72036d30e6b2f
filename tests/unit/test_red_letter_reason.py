"""红冲原因 (issue 14): the four reasons of the 数电票 red-letter form, checked and written on the remark."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fapiao.core.choices import InvoiceState
from fapiao.core.errors import ValidationFailed
from fapiao.core.invoice import Line
from fapiao.core.red_letter import RED_LETTER_REASONS, parse_red_letter_request, red_remark


def test_the_four_reasons():
    assert list(RED_LETTER_REASONS.values()) == ["开票有误", "销货退回", "服务中止", "销售折让"]


@pytest.mark.parametrize("code", sorted(RED_LETTER_REASONS))
def test_a_reason_is_accepted(code):
    assert parse_red_letter_request({"full": True, "reason": code}).reason == code


def test_no_reason_is_still_accepted_from_the_api():
    assert parse_red_letter_request({"full": True}).reason is None


@pytest.mark.parametrize("bad", ["作废", 1, ["error"], "ERROR"])
def test_any_other_reason_is_refused_at_its_field(bad):
    with pytest.raises(ValidationFailed) as caught:
        parse_red_letter_request({"full": True, "reason": bad})
    [error] = caught.value.errors
    assert (error.field, error.code) == ("reason", "invalid_choice")


def test_the_remark_says_the_reason_first_and_keeps_the_blue_remark_where_it_fits():
    assert red_remark(None, "合同 A-1", 500) == "合同 A-1"
    assert red_remark("return", "", 500) == "红冲原因：销货退回"
    assert red_remark("allowance", "合同 A-1", 500) == "红冲原因：销售折让\n合同 A-1"
    assert red_remark("error", "长" * 495, 500) == "红冲原因：开票有误"


# --- Red invoices read from a file: which blue line each reverses ---------------------------------


def _line(no: int, name: str, quantity: str, amount: int, tax: int, *, rate: str = "0.06") -> Line:
    from datetime import date

    from fapiao.core.tax import resolve_rate

    found = resolve_rate(rate, date(2026, 11, 27))
    return Line(no, name, "", "", "", Decimal(quantity), Decimal(1), found, amount, tax)


def test_red_lines_from_a_file_are_matched_to_the_blue_lines_by_name_and_rate():
    from fapiao.core.red_letter import match_red_lines, state_after, take

    blue = [
        _line(1, "甲", "1", 1000, 60),
        _line(2, "乙", "2", 2000, 260, rate="0.13"),
        _line(3, "甲", "1", 500, 30),
    ]
    red = [_line(1, "乙", "-2", -2000, -260, rate="0.13"), _line(2, "甲", "-1", -1000, -60)]
    matched = match_red_lines(blue, red, {})
    assert [m.original_no for m in matched] == [2, 1]
    taken = take({}, matched)
    assert state_after(blue, taken) is InvoiceState.PARTLY_RED
    again = match_red_lines(blue, [_line(1, "甲", "-1", -500, -30)], taken)
    assert [m.original_no for m in again] == [3]  # line 1 is all taken: the next of that name
    assert state_after(blue, take(taken, again)) is InvoiceState.FULLY_RED
    other = match_red_lines(blue, [_line(1, "丙", "-1", -1, 0)], {})
    assert [m.original_no for m in other] == [None]  # no such name and rate, counts are unequal
    same_count = match_red_lines(blue[:1], [_line(1, "丙", "-1", -1, 0)], {})
    assert [m.original_no for m in same_count] == [1]  # as many lines: by position
