"""红冲原因 (issue 14): the four reasons of the 数电票 red-letter form, checked and written on the remark."""

from __future__ import annotations

import pytest

from fapiao.core.errors import ValidationFailed
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
